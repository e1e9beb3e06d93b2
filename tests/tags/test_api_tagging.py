"""Putting tags on one member and taking them off: timeline, idempotence, kinds, guides."""

import pytest

from members.models import TimelineEvent
from scrm.tenancy import tenant_scope
from tags.models import MemberTag
from tests.tags.conftest import MEMBERS, TAGS, body, make_group, make_tag, post, signed_in


def member_tags_url(member: dict, tag_id: int | None = None) -> str:
    url = f"{MEMBERS}{member['id']}/tags/"
    return f"{url}{tag_id}/" if tag_id is not None else url


def rows(tenant) -> list[tuple]:
    with tenant_scope(tenant):
        return list(MemberTag.objects.order_by("id").values_list(
            "member_id", "tag_id", "source", "tagged_by"))


def tag_events(tenant) -> list[tuple]:
    with tenant_scope(tenant):
        return [(e.member_id, e.kind, e.actor, e.data) for e in TimelineEvent.objects.filter(
            kind__startswith="tag.").order_by("id")]


def member_count(client, tag_id: int) -> int:
    return body(client.get(f"{TAGS}{tag_id}/"))["member_count"]


def test_add_tag_records_source_actor_and_timeline(api_client, tenant, tag, people):
    wang = people["wang"]
    response = post(api_client, member_tags_url(wang), {"tag_id": tag["id"]})
    listed = body(response, 201)
    assert [{k: v for k, v in row.items() if k != "created_at"} for row in listed] == [
        {"tag": tag["id"], "name": "高净值", "group": "偏好", "source": "manual",
         "tagged_by": listed[0]["tagged_by"]}]
    assert listed[0]["tagged_by"].startswith("api_key:")
    assert body(api_client.get(member_tags_url(wang))) == listed
    assert rows(tenant) == [(wang["id"], tag["id"], "manual", listed[0]["tagged_by"])]
    assert tag_events(tenant) == [(wang["id"], "tag.added", listed[0]["tagged_by"], {
        "tag_id": tag["id"], "tag": "高净值", "source": "manual"})]
    timeline = body(api_client.get(f"{MEMBERS}{wang['id']}/timeline/"))["results"]
    assert timeline[0]["kind"] == "tag.added"
    assert timeline[0]["data"] == {"tag_id": tag["id"], "tag": "高净值", "source": "manual"}
    assert member_count(api_client, tag["id"]) == 1


def test_adding_again_is_200_and_changes_nothing(api_client, tenant, tag, people):
    wang = people["wang"]
    first = body(post(api_client, member_tags_url(wang), {"tag_id": tag["id"]}), 201)
    again = body(post(api_client, member_tags_url(wang), {"tag_id": tag["id"]}), 200)
    assert again == first
    assert len(rows(tenant)) == 1
    assert len(tag_events(tenant)) == 1
    assert member_count(api_client, tag["id"]) == 1


def test_remove_tag_records_timeline_and_then_404(api_client, tenant, tag, people):
    wang = people["wang"]
    body(post(api_client, member_tags_url(wang), {"tag_id": tag["id"]}), 201)
    label = rows(tenant)[0][3]

    response = api_client.delete(member_tags_url(wang, tag["id"]))
    assert response.status_code == 204
    assert rows(tenant) == []
    assert [event[:2] for event in tag_events(tenant)] == [(wang["id"], "tag.added"),
                                                           (wang["id"], "tag.removed")]
    assert tag_events(tenant)[1] == (wang["id"], "tag.removed", label, {
        "tag_id": tag["id"], "tag": "高净值", "source": "manual"})
    assert member_count(api_client, tag["id"]) == 0

    again = api_client.delete(member_tags_url(wang, tag["id"]))
    assert again.status_code == 404
    assert again.json()["code"] == "not_found"
    assert len(tag_events(tenant)) == 2


def test_unknown_tag_or_member_is_404_and_writes_nothing(api_client, tenant, tag, people):
    for url, data in ((member_tags_url(people["wang"]), {"tag_id": 999999}),
                      (f"{MEMBERS}999999/tags/", {"tag_id": tag["id"]})):
        response = post(api_client, url, data)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    bad = post(api_client, member_tags_url(people["wang"]), {"tag_id": "高净值"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "validation_error"
    assert api_client.delete(member_tags_url(people["wang"], 999999)).status_code == 404
    assert rows(tenant) == []
    assert tag_events(tenant) == []


@pytest.mark.parametrize("kind", ["rule", "system"])
def test_rule_and_system_tags_cannot_be_applied_by_hand(api_client, tenant, group, people,
                                                        kind):
    extra = {"rule": {"field": "city", "op": "eq", "value": "上海"}} if kind == "rule" else {}
    auto = make_tag(api_client, group["id"], "自动", kind=kind, **extra)
    before = rows(tenant)

    response = post(api_client, member_tags_url(people["li"]), {"tag_id": auto["id"]})
    assert response.status_code == 400
    assert response.json()["code"] == "tag_not_manual"
    removal = api_client.delete(member_tags_url(people["wang"], auto["id"]))
    assert removal.status_code == 400
    assert removal.json()["code"] == "tag_not_manual"
    bulk = post(api_client, f"{TAGS}{auto['id']}/bulk/", {
        "action": "add", "member_ids": [people["li"]["id"]]})
    assert bulk.status_code == 400
    assert bulk.json()["code"] == "tag_not_manual"
    assert rows(tenant) == before


def test_product_only_tag_cannot_go_on_a_member(api_client, tenant, group, people):
    product_tag = make_tag(api_client, group["id"], "爆款", target="product")
    response = post(api_client, member_tags_url(people["wang"]), {"tag_id": product_tag["id"]})
    assert response.status_code == 400
    assert response.json()["code"] == "tag_not_for_members"
    assert rows(tenant) == []


def test_guide_tags_own_customers_only(api_client, tenant, tag, people, guide):
    client = signed_in(guide)
    mine = post(client, member_tags_url(people["wang"]), {"tag_id": tag["id"]})
    assert body(mine, 201)[0]["tagged_by"] == f"staff:{guide.pk}"
    assert body(client.get(member_tags_url(people["wang"])))[0]["tag"] == tag["id"]

    for other in ("li", "han"):
        response = post(client, member_tags_url(people[other]), {"tag_id": tag["id"]})
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert client.get(member_tags_url(people[other])).status_code == 404
    body(post(api_client, member_tags_url(people["li"]), {"tag_id": tag["id"]}), 201)
    refused = client.delete(member_tags_url(people["li"], tag["id"]))
    assert refused.status_code == 404
    assert {(member_id, tag_id) for member_id, tag_id, *_ in rows(tenant)} == {
        (people["wang"]["id"], tag["id"]), (people["li"]["id"], tag["id"])}

    assert client.delete(member_tags_url(people["wang"], tag["id"])).status_code == 204
    assert [member_id for member_id, *_ in rows(tenant)] == [people["li"]["id"]]


def test_other_tenant_cannot_touch_our_member_tags(api_client, other_api_client, tenant,
                                                   other_tenant, tag, people):
    wang = people["wang"]
    body(post(api_client, member_tags_url(wang), {"tag_id": tag["id"]}), 201)
    their_group = make_group(other_api_client, "偏好")
    their_tag = make_tag(other_api_client, their_group["id"], "对手的标签")
    before = rows(tenant)

    for response in (
        other_api_client.get(member_tags_url(wang)),
        post(other_api_client, member_tags_url(wang), {"tag_id": their_tag["id"]}),
        post(other_api_client, member_tags_url(wang), {"tag_id": tag["id"]}),
        other_api_client.delete(member_tags_url(wang, tag["id"])),
        # Our member with their tag, through our own key.
        post(api_client, member_tags_url(people["li"]), {"tag_id": their_tag["id"]}),
        post(api_client, f"{TAGS}{their_tag['id']}/bulk/", {
            "action": "add", "member_ids": [wang["id"]]}),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert rows(tenant) == before
    with tenant_scope(other_tenant):
        assert not MemberTag.objects.exists()


def test_merge_moves_tags_to_the_survivor_and_keeps_counts(api_client, tenant, group, tag,
                                                           people):
    other = make_tag(api_client, group["id"], "新客")
    wang, zhao = people["wang"], people["zhao"]
    for member, tags in ((wang, [tag]), (zhao, [tag, other])):
        for each in tags:
            body(post(api_client, member_tags_url(member), {"tag_id": each["id"]}), 201)

    body(post(api_client, f"{MEMBERS}{wang['id']}/merge/", {"member_id": zhao["id"]}))
    assert sorted(t["tag"] for t in body(api_client.get(member_tags_url(wang)))) == sorted(
        [tag["id"], other["id"]])
    assert {(member_id, tag_id) for member_id, tag_id, *_ in rows(tenant)} == {
        (wang["id"], tag["id"]), (wang["id"], other["id"])}
    assert member_count(api_client, tag["id"]) == 1
    assert member_count(api_client, other["id"]) == 1
    for tag_id in (tag["id"], other["id"]):
        assert body(post(api_client, "/api/v1/segments/count/",
                         {"expression": {"tag": tag_id}})) == {"count": 1}

"""Tag groups and tags: create, rename, names unique within a group, safe deletes."""

import pytest

from scrm.models import AuditEntry
from scrm.tenancy import tenant_scope
from tags.models import AudienceBitmap, MemberTag, Segment, Tag, TagGroup
from tests.tags.conftest import GROUPS, SEGMENTS, TAGS, body, make_group, make_tag, patch, post


def tag_rows(tenant) -> list[tuple]:
    with tenant_scope(tenant):
        return list(Tag.objects.order_by("id").values_list("id", "group_id", "name", "kind"))


def group_rows(tenant) -> list[tuple]:
    with tenant_scope(tenant):
        return list(TagGroup.objects.order_by("id").values_list("id", "name", "color",
                                                                "sort_order"))


def test_group_create_list_and_rename(api_client, tenant):
    created = make_group(api_client, "偏好", color="#ff5500", sort_order=2,
                         description="兴趣偏好")
    assert {k: v for k, v in created.items() if k != "id"} == {
        "name": "偏好", "description": "兴趣偏好", "color": "#ff5500", "sort_order": 2}
    first = make_group(api_client, "生命周期", sort_order=1)
    assert first["color"] == "#1677ff"

    listed = body(api_client.get(GROUPS))
    assert [g["name"] for g in listed] == ["生命周期", "偏好"]

    renamed = body(patch(api_client, f"{GROUPS}{created['id']}/", {"name": "兴趣"}))
    assert (renamed["id"], renamed["name"], renamed["color"]) == (created["id"], "兴趣",
                                                                  "#ff5500")
    assert group_rows(tenant) == [(created["id"], "兴趣", "#ff5500", 2),
                                  (first["id"], "生命周期", "#1677ff", 1)]


def test_duplicate_group_name_is_409_and_changes_nothing(api_client, tenant, group):
    other = make_group(api_client, "渠道")
    before = group_rows(tenant)

    again = post(api_client, GROUPS, {"name": "偏好"})
    assert again.status_code == 409
    assert again.json()["code"] == "name_taken"
    rename = patch(api_client, f"{GROUPS}{other['id']}/", {"name": "偏好"})
    assert rename.status_code == 409
    assert rename.json()["code"] == "name_taken"
    assert group_rows(tenant) == before


def test_bad_group_colour_is_400(api_client, tenant):
    response = post(api_client, GROUPS, {"name": "偏好", "color": "red"})
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert set(response.json()["errors"]) == {"color"}
    assert group_rows(tenant) == []


def test_tag_create_and_rename(api_client, tenant, group):
    created = make_tag(api_client, group["id"], "高净值", description="年消费过万")
    assert {k: v for k, v in created.items() if k not in ("id", "created_at", "updated_at")} == {
        "group": group["id"], "group_name": "偏好", "name": "高净值",
        "description": "年消费过万", "kind": "manual", "target": "member", "rule": None,
        "external_source": "", "external_id": "", "member_count": 0}

    renamed = body(patch(api_client, f"{TAGS}{created['id']}/", {"name": "高价值"}))
    assert (renamed["id"], renamed["name"], renamed["description"]) == (
        created["id"], "高价值", "年消费过万")
    assert body(api_client.get(f"{TAGS}{created['id']}/"))["name"] == "高价值"
    assert tag_rows(tenant) == [(created["id"], group["id"], "高价值", "manual")]


def test_synced_tag_keeps_its_external_id(api_client, group):
    created = make_tag(api_client, group["id"], "企微-VIP", kind="synced",
                       external_source="wecom", external_id="et123")
    assert (created["kind"], created["external_source"], created["external_id"]) == (
        "synced", "wecom", "et123")


def test_tag_names_are_unique_within_a_group_only(api_client, tenant, group, tag):
    other_group = make_group(api_client, "渠道")
    same_name_elsewhere = make_tag(api_client, other_group["id"], "高净值")
    assert same_name_elsewhere["group"] == other_group["id"]
    second = make_tag(api_client, group["id"], "新客")
    before = tag_rows(tenant)

    duplicate = post(api_client, TAGS, {"group": group["id"], "name": "高净值"})
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "name_taken"
    rename = patch(api_client, f"{TAGS}{second['id']}/", {"name": "高净值"})
    assert rename.status_code == 409
    assert rename.json()["code"] == "name_taken"
    move = patch(api_client, f"{TAGS}{same_name_elsewhere['id']}/", {"group": group["id"]})
    assert move.status_code == 409
    assert move.json()["code"] == "name_taken"
    assert tag_rows(tenant) == before


def test_tag_in_unknown_group_is_404(api_client, tenant, other_api_client):
    their_group = make_group(other_api_client, "偏好")
    for group_id in (999999, their_group["id"]):
        response = post(api_client, TAGS, {"group": group_id, "name": "x"})
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert tag_rows(tenant) == []


def test_list_tags_filters_by_group_kind_and_name(api_client, group, tag):
    other_group = make_group(api_client, "渠道")
    channel = make_tag(api_client, other_group["id"], "抖音来源")
    listed = body(api_client.get(TAGS))
    assert [t["id"] for t in listed["results"]] == [channel["id"], tag["id"]]
    assert [t["id"] for t in body(api_client.get(TAGS, {"group": group["id"]}))["results"]] == [
        tag["id"]]
    assert [t["id"] for t in body(api_client.get(TAGS, {"q": "抖音"}))["results"]] == [
        channel["id"]]
    assert body(api_client.get(TAGS, {"kind": "rule"}))["results"] == []


@pytest.mark.parametrize("count", [1, 6])
def test_list_tags_query_count_does_not_grow(api_client, group, django_assert_num_queries,
                                             count):
    for i in range(count):
        make_tag(api_client, group["id"], f"t{i}")
    # The request's savepoint and its release, and one query for the page with its groups
    # (the key's lookup and last-used stamp were done by the requests before).
    with django_assert_num_queries(3):
        response = api_client.get(TAGS)
    assert [t["group_name"] for t in body(response)["results"]] == ["偏好"] * count


def test_group_with_tags_cannot_be_deleted(api_client, tenant, group, tag):
    before = group_rows(tenant)
    response = api_client.delete(f"{GROUPS}{group['id']}/")
    assert response.status_code == 409
    assert response.json()["code"] == "group_not_empty"
    assert group_rows(tenant) == before

    assert api_client.delete(f"{TAGS}{tag['id']}/").status_code == 200
    assert api_client.delete(f"{GROUPS}{group['id']}/").status_code == 204
    assert group_rows(tenant) == []


def test_unused_tag_deletes_without_confirmation(api_client, tenant, tag):
    response = api_client.delete(f"{TAGS}{tag['id']}/")
    assert body(response) == {"members": 0, "products": 0, "segments": [], "rules": []}
    assert tag_rows(tenant) == []
    assert api_client.get(f"{TAGS}{tag['id']}/").status_code == 404


def test_tag_in_use_needs_confirmation_then_is_deleted_and_audited(api_client, tenant, group,
                                                                    tag, people):
    for who in ("wang", "li"):
        body(post(api_client, f"/api/v1/members/{people[who]['id']}/tags/",
                  {"tag_id": tag["id"]}), 201)
    body(post(api_client, SEGMENTS, {"name": "高净值女性", "expression": {"all": [
        {"tag": tag["id"]}, {"field": "gender", "op": "eq", "value": "female"}]}}), 201)

    refused = api_client.delete(f"{TAGS}{tag['id']}/")
    assert refused.status_code == 409
    assert refused.json()["code"] == "tag_in_use"
    assert refused.json()["errors"] == {"members": 2, "products": 0, "segments": ["高净值女性"],
                                        "rules": []}
    with tenant_scope(tenant):
        assert MemberTag.objects.filter(tag_id=tag["id"]).count() == 2
        assert Tag.objects.filter(pk=tag["id"]).exists()
        assert not AuditEntry.objects.filter(action="tag.deleted").exists()

    deleted = api_client.delete(f"{TAGS}{tag['id']}/?confirm=true")
    assert body(deleted) == {"members": 2, "products": 0, "segments": ["高净值女性"],
                             "rules": []}
    with tenant_scope(tenant):
        assert not Tag.objects.filter(pk=tag["id"]).exists()
        assert not MemberTag.objects.exists()
        assert not AudienceBitmap.objects.filter(field="tag", value=str(tag["id"])).exists()
        entry = AuditEntry.objects.get(action="tag.deleted")
        assert Segment.objects.count() == 1
    assert (entry.action, entry.target_type, entry.target_id) == ("tag.deleted", "tag",
                                                                  tag["id"])
    assert entry.data == {"name": "高净值", "group": "偏好", "members": 2, "products": 0,
                          "segments": ["高净值女性"], "rules": []}
    assert entry.actor.startswith("api_key:")
    assert body(api_client.get(f"/api/v1/members/{people['wang']['id']}/tags/")) == []


def test_tag_used_only_by_a_rule_tag_needs_confirmation(api_client, tenant, group, tag):
    rule_tag = make_tag(api_client, group["id"], "高净值上海", kind="rule", rule={
        "all": [{"tag": tag["id"]}, {"field": "city", "op": "eq", "value": "上海"}]})
    refused = api_client.delete(f"{TAGS}{tag['id']}/")
    assert refused.status_code == 409
    assert refused.json()["code"] == "tag_in_use"
    assert refused.json()["errors"] == {"members": 0, "products": 0, "segments": [],
                                        "rules": [rule_tag["name"]]}
    assert len(tag_rows(tenant)) == 2


def test_other_tenant_cannot_see_or_change_our_taxonomy(api_client, other_api_client, tenant,
                                                        group, tag):
    before_groups, before_tags = group_rows(tenant), tag_rows(tenant)
    assert body(other_api_client.get(GROUPS)) == []
    assert body(other_api_client.get(TAGS))["results"] == []
    for response in (
        other_api_client.get(f"{TAGS}{tag['id']}/"),
        patch(other_api_client, f"{TAGS}{tag['id']}/", {"name": "x"}),
        other_api_client.delete(f"{TAGS}{tag['id']}/?confirm=true"),
        patch(other_api_client, f"{GROUPS}{group['id']}/", {"name": "x"}),
        other_api_client.delete(f"{GROUPS}{group['id']}/"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert (group_rows(tenant), tag_rows(tenant)) == (before_groups, before_tags)


def test_reading_needs_only_members_read_but_writing_needs_tags_manage(tenant, group):
    from tests.conftest import client_for

    reader = client_for(tenant, scopes=["members:read"])
    assert [g["id"] for g in body(reader.get(GROUPS))] == [group["id"]]
    response = post(reader, TAGS, {"group": group["id"], "name": "x"})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert tag_rows(tenant) == []

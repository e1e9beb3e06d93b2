"""Segments: saved audiences, validated expressions, counts, paged members, snapshots and CSV
exports."""

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from scrm.tenancy import tenant_scope
from tags.audience.index import audience_fold
from tags.models import Segment, SegmentSnapshot
from tests.tags.conftest import (
    JOBS,
    MEMBERS,
    SEGMENTS,
    body,
    make_group,
    make_tag,
    patch,
    post,
    signed_in,
)

COUNT = f"{SEGMENTS}count/"


def segment_rows(tenant) -> list[tuple]:
    with tenant_scope(tenant):
        return list(Segment.objects.order_by("id").values_list("id", "name", "expression"))


def tag_member(client, member: dict, tag: dict) -> None:
    body(post(client, f"{MEMBERS}{member['id']}/tags/", {"tag_id": tag["id"]}), 201)


def count(client, expression) -> int:
    return body(post(client, COUNT, {"expression": expression}))["count"]


def all_members(client, segment_id: int, page_size: int) -> tuple[list[int], int]:
    """Every member of the segment, following next_after; and how many pages it took."""
    ids, after, pages = [], None, 0
    while True:
        params = {"page_size": page_size, **({"after": after} if after is not None else {})}
        page = body(client.get(f"{SEGMENTS}{segment_id}/members/", params))
        pages += 1
        ids += [member["id"] for member in page["results"]]
        after = page["next_after"]
        if after is None:
            return ids, pages
        assert pages < 50


def age_on(birthday: dt.date, today: dt.date) -> int:
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month,
                                                                     birthday.day))


def test_create_segment_with_its_count(api_client, tenant, tag, people):
    tag_member(api_client, people["wang"], tag)
    tag_member(api_client, people["han"], tag)
    expression = {"all": [{"tag": tag["id"]}, {"field": "city", "op": "eq", "value": "上海"}]}
    created = body(post(api_client, SEGMENTS, {"name": "上海高净值", "description": "测试",
                                               "expression": expression}), 201)
    assert {k: created[k] for k in ("name", "description", "expression", "last_count")} == {
        "name": "上海高净值", "description": "测试", "expression": expression, "last_count": 1}
    assert created["created_by"].startswith("api_key:")
    assert created["last_counted_at"] is not None
    assert [s["id"] for s in body(api_client.get(SEGMENTS))["results"]] == [created["id"]]
    assert body(api_client.get(f"{SEGMENTS}{created['id']}/"))["last_count"] == 1


def test_changing_the_expression_recounts(api_client, tag, people):
    created = body(post(api_client, SEGMENTS, {"name": "上海", "expression": {
        "field": "city", "op": "eq", "value": "上海"}}), 201)
    assert created["last_count"] == 2
    changed = body(patch(api_client, f"{SEGMENTS}{created['id']}/", {"expression": {
        "field": "city", "op": "in", "value": ["上海", "北京"]}}))
    assert changed["last_count"] == 3
    renamed = body(patch(api_client, f"{SEGMENTS}{created['id']}/", {"name": "沪京"}))
    assert (renamed["name"], renamed["last_count"]) == ("沪京", 3)


def _bad_expressions(tag_id: int, their_tag_id: int) -> list[tuple[object, str]]:
    deep: dict = {"tag": tag_id}
    for _ in range(10):
        deep = {"not": deep}
    city = {"field": "city", "op": "eq", "value": "上海"}
    return [
        ({"all": [city, {"tag": 999999}]}, "$.all[1].tag"),
        ({"all": [city, {"tag": their_tag_id}]}, "$.all[1].tag"),
        ({"all": [city, {"tag": "高净值"}]}, "$.all[1].tag"),
        ({"any": [{"field": "shoe_size", "op": "eq", "value": 42}]}, "$.any[0].field"),
        ({"field": "city", "op": "gt", "value": "上海"}, "$.op"),
        ({"field": "total_spent_fen", "op": "like", "value": 1}, "$.op"),
        ({"field": "total_spent_fen", "op": "gte", "value": "很多"}, "$.value"),
        ({"field": "order_count", "op": "gte", "value": True}, "$.value"),
        ({"field": "age", "op": "between", "value": [30]}, "$.value"),
        ({"field": "age", "op": "between", "value": [40, 30]}, "$.value"),
        ({"field": "city", "op": "in", "value": []}, "$.value"),
        (deep, "$" + ".not" * 10),
        ({"all": []}, "$.all"),
        ({"all": [city, {"any": []}]}, "$.all[1].any"),
        ({"any": [{"tag": tag_id}, {"tier": "gold"}]}, "$.any[1].tier"),
        ({"any": [{"tag": tag_id}, {"rfm": "没有这个分群"}]}, "$.any[1].rfm"),
        ({"tag": tag_id, "store": "SH001"}, "$"),
        ({"not": {}}, "$.not"),
        ([{"tag": tag_id}], "$"),
        ("上海", "$"),
        ({"store": "NOPE"}, "$.value"),
    ]


def test_invalid_expressions_are_refused_naming_the_clause(api_client, other_api_client,
                                                           tenant, tag, people):
    their_group = make_group(other_api_client, "偏好")
    their_tag = make_tag(other_api_client, their_group["id"], "对手")
    for expression, path in _bad_expressions(tag["id"], their_tag["id"]):
        for url in (SEGMENTS, COUNT):
            data = {"expression": expression, **({"name": "坏"} if url == SEGMENTS else {})}
            response = post(api_client, url, data)
            assert response.status_code == 400, (expression, response.json())
            assert response.json()["code"] == "invalid_expression", expression
            message = response.json()["message"]
            assert message.startswith(f"{path}: "), (expression, message)
            assert response.json()["errors"] == {"expression": [message]}
    assert segment_rows(tenant) == []


def test_expression_of_depth_ten_is_fine(api_client, tag, people):
    tag_member(api_client, people["li"], tag)
    deep: dict = {"tag": tag["id"]}
    for _ in range(9):
        deep = {"all": [deep]}
    assert count(api_client, deep) == 1


def test_other_tenant_cannot_count_with_our_tags(api_client, other_api_client, tag, people):
    tag_member(api_client, people["wang"], tag)
    response = post(other_api_client, COUNT, {"expression": {"tag": tag["id"]}})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_expression"
    assert response.json()["message"].startswith("$.tag: ")
    assert body(post(other_api_client, COUNT, {"expression": {
        "field": "city", "op": "eq", "value": "上海"}})) == {"count": 0}


@pytest.mark.parametrize("folded", [False, True], ids=["dirty", "folded"])
def test_counts_over_every_dimension_equal_the_members_listed(api_client, tenant, tag, people,
                                                              guide, folded):
    tag_member(api_client, people["wang"], tag)
    tag_member(api_client, people["li"], tag)
    body(post(api_client, "/api/v1/orders/", {
        "order_no": "T1", "channel": "tmall", "paid_at": timezone.now().isoformat(),
        "amount_fen": 12000, "buyer": {"identities": [{"kind": "phone",
                                                       "value": "13900139000"}]},
        "lines": [{"sku": "S1", "product": "精华", "quantity": 1, "price_fen": 12000}]}), 201)
    if folded:
        with tenant_scope(tenant):
            audience_fold()
    today = timezone.localdate()
    wang_age = age_on(dt.date(1992, 5, 1), today)
    names = {member["id"]: who for who, member in people.items()}
    cases = [
        ({"tag": tag["id"]}, {"wang", "li"}),
        ({"not": {"tag": tag["id"]}}, {"zhao", "han"}),
        ({"store": "SH001"}, {"wang", "zhao", "li"}),
        ({"guide": guide.pk}, {"wang", "zhao"}),
        ({"field": "gender", "op": "eq", "value": "female"}, {"wang", "zhao", "han"}),
        ({"field": "province", "op": "in", "value": ["浙江", "北京"]}, {"li", "han"}),
        ({"field": "city", "op": "not_in", "value": ["上海"]}, {"li", "han"}),
        ({"field": "birth_month", "op": "eq", "value": 5}, {"wang", "li"}),
        ({"field": "marketing_consent", "op": "eq", "value": True}, {"wang", "han"}),
        ({"field": "age", "op": "between", "value": [wang_age, wang_age]}, {"wang"}),
        ({"field": "total_spent_fen", "op": "gte", "value": 12000}, {"li"}),
        ({"field": "order_count", "op": "lt", "value": 1}, {"wang", "zhao", "han"}),
        ({"field": "last_order_days", "op": "lte", "value": 7}, {"li"}),
        ({"any": [{"all": [{"tag": tag["id"]}, {"field": "gender", "op": "eq",
                                                "value": "male"}]},
                  {"store": "BJ001"}]}, {"li", "han"}),
    ]
    for expression, expected in cases:
        assert count(api_client, expression) == len(expected), expression
        segment = body(post(api_client, SEGMENTS, {"name": "x", "expression": expression}),
                       201)
        assert segment["last_count"] == len(expected)
        ids, _pages = all_members(api_client, segment["id"], page_size=50)
        assert {names[i] for i in ids} == expected, expression


def test_members_pages_cover_everyone_exactly_once(api_client, people):
    segment = body(post(api_client, SEGMENTS, {"name": "全部", "expression": {
        "field": "gender", "op": "in", "value": ["male", "female"]}}), 201)
    everyone = sorted(member["id"] for member in people.values())
    for page_size, pages in ((1, 4), (3, 2), (4, 1), (500, 1)):
        ids, taken = all_members(api_client, segment["id"], page_size)
        assert sorted(ids) == everyone
        assert len(ids) == len(set(ids))
        assert taken == pages, page_size

    first = body(api_client.get(f"{SEGMENTS}{segment['id']}/members/", {"page_size": 2}))
    assert first["count"] == 4
    assert [m["member_no"] for m in first["results"]] == [1, 2]
    assert first["next_after"] == 2
    rest = body(api_client.get(f"{SEGMENTS}{segment['id']}/members/",
                               {"page_size": 2, "after": 2}))
    assert ([m["member_no"] for m in rest["results"]], rest["next_after"]) == ([3, 4], None)
    fallback = body(api_client.get(f"{SEGMENTS}{segment['id']}/members/",
                                   {"page_size": "lots"}))
    assert (len(fallback["results"]), fallback["next_after"]) == (4, None)


@pytest.mark.parametrize("size", [1, 4])
def test_members_page_queries_do_not_grow(api_client, people, size,
                                          django_assert_num_queries):
    segment = body(post(api_client, SEGMENTS, {"name": "全部", "expression": {
        "field": "gender", "op": "in", "value": ["male", "female"]}}), 201)
    # The request's savepoint and its release, the segment, the index (dirty members, bitmap
    # rows, the dirty members' exact answer) and the page with its identities and stats (3);
    # the key's lookup and last-used stamp were done by the request before.
    with django_assert_num_queries(9):
        response = api_client.get(f"{SEGMENTS}{segment['id']}/members/", {"page_size": size})
    assert len(body(response)["results"]) == size
    assert all(member["identities"][0]["kind"] == "phone" for member in body(response)["results"])


def test_guide_sees_only_own_customers_in_a_segment(api_client, tag, people, guide):
    segment = body(post(api_client, SEGMENTS, {"name": "女性", "expression": {
        "field": "gender", "op": "eq", "value": "female"}}), 201)
    assert segment["last_count"] == 3
    client = signed_in(guide)
    page = body(client.get(f"{SEGMENTS}{segment['id']}/members/"))
    assert page["count"] == 2
    assert sorted(m["id"] for m in page["results"]) == sorted(
        [people["wang"]["id"], people["zhao"]["id"]])
    assert body(post(client, COUNT, {"expression": {
        "field": "gender", "op": "eq", "value": "female"}})) == {"count": 2}
    refused = post(client, SEGMENTS, {"name": "x", "expression": {"tag": tag["id"]}})
    assert refused.status_code == 403
    assert post(client, f"{SEGMENTS}{segment['id']}/snapshot/").status_code == 403
    assert post(client, f"{SEGMENTS}{segment['id']}/export/").status_code == 403


def test_snapshot_freezes_the_members(api_client, tenant, tag, people):
    tag_member(api_client, people["wang"], tag)
    segment = body(post(api_client, SEGMENTS, {"name": "高净值", "expression": {
        "tag": tag["id"]}}), 201)
    snapshot = body(post(api_client, f"{SEGMENTS}{segment['id']}/snapshot/"), 201)
    assert {k: snapshot[k] for k in ("segment", "member_count", "expression")} == {
        "segment": segment["id"], "member_count": 1, "expression": {"tag": tag["id"]}}

    tag_member(api_client, people["li"], tag)
    tag_member(api_client, people["han"], tag)
    assert count(api_client, {"tag": tag["id"]}) == 3
    listed = body(api_client.get(f"{SEGMENTS}{segment['id']}/snapshot/"))
    assert [(s["id"], s["member_count"]) for s in listed] == [(snapshot["id"], 1)]
    with tenant_scope(tenant):
        from tags.services.segments import snapshot_members

        frozen = snapshot_members(SegmentSnapshot.objects.get(pk=snapshot["id"]))
    assert list(frozen) == [people["wang"]["member_no"]]
    second = body(post(api_client, f"{SEGMENTS}{segment['id']}/snapshot/"), 201)
    assert second["member_count"] == 3


def _download(client, job_id: int, token: str):
    return client.get(f"{JOBS}{job_id}/download/", {"token": token})


def _csv(response) -> list[list[str]]:
    # Reading the stream to its end closes the file (the test client's wrapper does it).
    content = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(content)))


def test_export_writes_a_csv_to_download(api_client, other_api_client, tenant, tag, people,
                                         settings, tmp_path,
                                         django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    segment = body(post(api_client, SEGMENTS, {"name": "上海", "expression": {
        "field": "city", "op": "eq", "value": "上海"}}), 201)
    with django_capture_on_commit_callbacks(execute=True):
        queued = body(post(api_client, f"{SEGMENTS}{segment['id']}/export/"), 202)
    assert (queued["kind"], queued["total"]) == ("segment_export", 2)

    job = body(api_client.get(f"{JOBS}{queued['id']}/"))
    assert (job["status"], job["total"], job["done"]) == ("succeeded", 2, 2)
    assert job["result"]["rows"] == 2
    token = job["result"]["token"]

    response = _download(api_client, job["id"], token)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    rows = _csv(response)
    assert rows[0] == ["member_no", "id", "name", "gender", "province", "city", "phone",
                       "store", "source_channel", "marketing_consent", "created_at"]
    # The key holds pii:read, so the export holds full phone numbers (tests/transfers has
    # the masked case).
    assert [row[:8] + [row[9]] for row in rows[1:]] == [
        ["1", str(people["wang"]["id"]), "王芳", "female", "上海", "上海", "13800138000",
         "SH001", "1"],
        ["2", str(people["zhao"]["id"]), "赵敏", "female", "上海", "上海", "13800138001",
         "SH001", "0"],
    ]

    for bad in ("", "nonsense", token[:-2] + "xx"):
        refused = _download(api_client, job["id"], bad)
        assert refused.status_code == 404
        assert refused.json()["code"] == "not_found"
    assert _download(other_api_client, job["id"], token).status_code == 404


def test_export_token_of_one_job_does_not_open_another(api_client, tenant, people, settings,
                                                       tmp_path,
                                                       django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    segment = body(post(api_client, SEGMENTS, {"name": "全部", "expression": {
        "field": "gender", "op": "in", "value": ["male", "female"]}}), 201)
    with django_capture_on_commit_callbacks(execute=True):
        first = body(post(api_client, f"{SEGMENTS}{segment['id']}/export/"), 202)
        second = body(post(api_client, f"{SEGMENTS}{segment['id']}/export/"), 202)
    token = body(api_client.get(f"{JOBS}{first['id']}/"))["result"]["token"]
    assert _download(api_client, second["id"], token).status_code == 404
    assert len(_csv(_download(api_client, first["id"], token))) == 5

    (tmp_path / "exports" / str(tenant.pk) / f"{first['id']}.csv").unlink()
    gone = _download(api_client, first["id"], token)
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_found"


def test_other_tenant_cannot_reach_our_segments(api_client, other_api_client, tenant, tag,
                                                people):
    segment = body(post(api_client, SEGMENTS, {"name": "高净值", "expression": {
        "tag": tag["id"]}}), 201)
    before = segment_rows(tenant)
    assert body(other_api_client.get(SEGMENTS))["results"] == []
    for response in (
        other_api_client.get(f"{SEGMENTS}{segment['id']}/"),
        patch(other_api_client, f"{SEGMENTS}{segment['id']}/", {"name": "x"}),
        other_api_client.delete(f"{SEGMENTS}{segment['id']}/"),
        other_api_client.get(f"{SEGMENTS}{segment['id']}/members/"),
        other_api_client.get(f"{SEGMENTS}{segment['id']}/snapshot/"),
        post(other_api_client, f"{SEGMENTS}{segment['id']}/snapshot/"),
        post(other_api_client, f"{SEGMENTS}{segment['id']}/export/"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert segment_rows(tenant) == before
    with tenant_scope(tenant):
        assert not SegmentSnapshot.objects.exists()


def test_birth_month_out_of_range_is_refused(api_client):
    response = api_client.post("/api/v1/segments/count/", {"expression": {
        "field": "birth_month", "op": "in", "value": [13]}}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_expression"
    assert "$.value" in response.json()["message"]


def test_csv_cells_that_look_like_formulas_are_neutralised():
    from integrations.transfers.services.exports import cell

    assert (cell("=HYPERLINK(1)"), cell("王芳"), cell("-1")) == ("'=HYPERLINK(1)", "王芳", "'-1")

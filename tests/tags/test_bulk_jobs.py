"""Bulk tagging as a background job: progress, guides' limits, and resuming after a crash."""

import pytest
from pyroaring import BitMap

from members.models import TimelineEvent
from scrm.models import Job
from scrm.tenancy import tenant_scope
from tags.models import MemberTag
from tags.services import tagging
from tags.tasks import tag_bulk_task
from tests.tags.conftest import JOBS, SEGMENTS, TAGS, body, make_group, make_tag, post, signed_in


def bulk_url(tag: dict) -> str:
    return f"{TAGS}{tag['id']}/bulk/"


def tagged(tenant, tag: dict) -> list[int]:
    with tenant_scope(tenant):
        return sorted(MemberTag.objects.filter(tag_id=tag["id"]).values_list("member_id",
                                                                             flat=True))


def added_events(tenant, tag: dict) -> list[int]:
    with tenant_scope(tenant):
        return sorted(TimelineEvent.objects.filter(kind="tag.added", data__tag_id=tag["id"])
                      .values_list("member_id", flat=True))


def job_count(tenant) -> int:
    with tenant_scope(tenant):
        return Job.objects.count()


def run_bulk(client, tag: dict, data: dict, capture) -> dict:
    with capture(execute=True):
        return body(post(client, bulk_url(tag), data), 202)


def test_bulk_add_by_member_list_runs_as_a_job(api_client, tenant, tag, people,
                                               django_capture_on_commit_callbacks):
    ids = [people[who]["id"] for who in ("wang", "li", "han")]
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api_client, bulk_url(tag), {"action": "add", "member_ids": ids})
        queued = body(response, 202)
        assert (queued["kind"], queued["status"], queued["total"], queued["done"]) == (
            "tag_bulk", "pending", 3, 0)

    job = body(api_client.get(f"{JOBS}{queued['id']}/"))
    assert (job["status"], job["total"], job["done"], job["error"]) == ("succeeded", 3, 3, "")
    assert job["result"] == {"changed": 3, "done": 3}
    assert job["params"] == {"tag_id": tag["id"], "action": "add"}
    assert tagged(tenant, tag) == sorted(ids)
    assert added_events(tenant, tag) == sorted(ids)
    assert body(api_client.get(f"{TAGS}{tag['id']}/"))["member_count"] == 3


def test_bulk_add_again_changes_only_the_new_members(api_client, tenant, tag, people,
                                                     django_capture_on_commit_callbacks):
    body(post(api_client, f"/api/v1/members/{people['wang']['id']}/tags/",
              {"tag_id": tag["id"]}), 201)
    ids = [people["wang"]["id"], people["zhao"]["id"]]
    job = run_bulk(api_client, tag, {"action": "add", "member_ids": ids},
                   django_capture_on_commit_callbacks)
    assert body(api_client.get(f"{JOBS}{job['id']}/"))["result"] == {"changed": 1, "done": 2}
    assert tagged(tenant, tag) == sorted(ids)
    assert added_events(tenant, tag) == sorted(ids)
    assert body(api_client.get(f"{TAGS}{tag['id']}/"))["member_count"] == 2


def test_bulk_remove(api_client, tenant, tag, people, django_capture_on_commit_callbacks):
    everyone = sorted(member["id"] for member in people.values())
    run_bulk(api_client, tag, {"action": "add", "member_ids": everyone},
             django_capture_on_commit_callbacks)
    job = run_bulk(api_client, tag, {"action": "remove", "member_ids": everyone[:2]},
                   django_capture_on_commit_callbacks)
    assert body(api_client.get(f"{JOBS}{job['id']}/"))["result"] == {"changed": 2, "done": 2}
    assert tagged(tenant, tag) == everyone[2:]
    with tenant_scope(tenant):
        assert sorted(TimelineEvent.objects.filter(kind="tag.removed").values_list(
            "member_id", flat=True)) == everyone[:2]
    assert body(api_client.get(f"{TAGS}{tag['id']}/"))["member_count"] == 2


def test_bulk_add_by_segment(api_client, tenant, tag, people,
                             django_capture_on_commit_callbacks):
    segment = body(post(api_client, SEGMENTS, {"name": "上海", "expression": {
        "field": "city", "op": "eq", "value": "上海"}}), 201)
    job = run_bulk(api_client, tag, {"action": "add", "segment": segment["id"]},
                   django_capture_on_commit_callbacks)
    finished = body(api_client.get(f"{JOBS}{job['id']}/"))
    assert (finished["status"], finished["total"], finished["done"]) == ("succeeded", 2, 2)
    assert finished["result"] == {"changed": 2, "done": 2}
    assert tagged(tenant, tag) == sorted([people["wang"]["id"], people["zhao"]["id"]])
    count = post(api_client, f"{SEGMENTS}count/", {"expression": {"tag": tag["id"]}})
    assert body(count) == {"count": 2}


def test_bulk_add_by_expression_uses_the_index(api_client, tenant, tag, people,
                                               django_capture_on_commit_callbacks):
    from tags.audience.index import audience_fold

    with tenant_scope(tenant):
        audience_fold()
    job = run_bulk(api_client, tag, {"action": "add", "expression": {
        "field": "gender", "op": "eq", "value": "female"}}, django_capture_on_commit_callbacks)
    assert body(api_client.get(f"{JOBS}{job['id']}/"))["result"] == {"changed": 3, "done": 3}
    women = sorted(people[who]["id"] for who in ("wang", "zhao", "han"))
    assert tagged(tenant, tag) == women
    assert body(api_client.get(f"{TAGS}{tag['id']}/"))["member_count"] == 3
    assert body(post(api_client, f"{SEGMENTS}count/", {"expression": {"all": [
        {"tag": tag["id"]}, {"field": "city", "op": "eq", "value": "上海"}]}})) == {"count": 2}


@pytest.mark.parametrize(("data", "code"), [
    ({"action": "add"}, "validation_error"),
    ({"action": "add", "member_ids": [], }, "validation_error"),
    ({"action": "tag", "member_ids": [1]}, "validation_error"),
    ({"action": "add", "member_ids": [1], "segment": 1}, "validation_error"),
    ({"action": "add", "member_ids": [999999]}, "members_not_visible"),
    ({"action": "add", "segment": 999999}, "not_found"),
    ({"action": "add", "expression": {"all": []}}, "invalid_expression"),
])
def test_bad_bulk_requests_are_refused_and_queue_nothing(api_client, tenant, tag, people, data,
                                                         code):
    response = post(api_client, bulk_url(tag), data)
    assert 400 <= response.status_code < 500
    assert response.json()["code"] == code
    assert job_count(tenant) == 0
    assert tagged(tenant, tag) == []


def test_guide_bulk_tags_only_own_customers(tenant, api_client, tag, people, guide,
                                            django_capture_on_commit_callbacks):
    client = signed_in(guide)
    mine = [people["wang"]["id"], people["zhao"]["id"]]

    refused = post(client, bulk_url(tag), {"action": "add",
                                           "member_ids": [*mine, people["li"]["id"]]})
    assert refused.status_code == 404
    assert refused.json()["code"] == "members_not_visible"
    assert refused.json()["errors"] == {"member_ids": [people["li"]["id"]]}
    segment = body(post(api_client, SEGMENTS, {"name": "全部女性", "expression": {
        "field": "gender", "op": "eq", "value": "female"}}), 201)
    by_segment = post(client, bulk_url(tag), {"action": "add", "segment": segment["id"]})
    assert by_segment.status_code == 403
    assert by_segment.json()["code"] == "permission_denied"
    by_expression = post(client, bulk_url(tag), {"action": "add", "expression": {
        "field": "gender", "op": "eq", "value": "female"}})
    assert by_expression.status_code == 403
    assert job_count(tenant) == 0
    assert tagged(tenant, tag) == []

    with django_capture_on_commit_callbacks(execute=True):
        job = body(post(client, bulk_url(tag), {"action": "add", "member_ids": mine}), 202)
    assert job["created_by"] == f"staff:{guide.pk}"
    assert body(client.get(f"{JOBS}{job['id']}/"))["status"] == "succeeded"
    assert tagged(tenant, tag) == sorted(mine)


def test_job_that_crashes_mid_way_reports_progress_and_resumes(
        api_client, tenant, tag, people, monkeypatch):
    monkeypatch.setattr(tagging, "CHUNK", 2)
    ids = sorted(member["id"] for member in people.values())
    job = body(post(api_client, bulk_url(tag), {"action": "add", "member_ids": ids}), 202)

    real_apply = tagging.tag_apply_chunk
    calls = []

    def crash_on_second_chunk(**kwargs):
        calls.append(kwargs["member_nos"])
        if len(calls) == 2:
            raise RuntimeError("worker lost its database connection")
        return real_apply(**kwargs)

    monkeypatch.setattr(tagging, "tag_apply_chunk", crash_on_second_chunk)
    with pytest.raises(RuntimeError):
        tag_bulk_task(tenant.pk, job["id"])

    failed = body(api_client.get(f"{JOBS}{job['id']}/"))
    assert (failed["status"], failed["total"], failed["done"]) == ("failed", 4, 2)
    assert failed["result"] == {"changed": 2}
    assert failed["error"] == "worker lost its database connection"
    assert tagged(tenant, tag) == ids[:2]
    assert body(api_client.get(f"{TAGS}{tag['id']}/"))["member_count"] == 2

    monkeypatch.setattr(tagging, "tag_apply_chunk", real_apply)
    tag_bulk_task(tenant.pk, job["id"])

    finished = body(api_client.get(f"{JOBS}{job['id']}/"))
    assert (finished["status"], finished["total"], finished["done"], finished["error"]) == (
        "succeeded", 4, 4, "")
    assert finished["result"] == {"changed": 4, "done": 4}
    assert tagged(tenant, tag) == ids
    assert added_events(tenant, tag) == ids
    assert body(api_client.get(f"{TAGS}{tag['id']}/"))["member_count"] == 4


def test_job_resumes_from_its_checkpoint(api_client, tenant, tag, people):
    """A worker died after committing the first half: the rerun does only the rest."""
    ids = sorted(member["id"] for member in people.values())
    job = body(post(api_client, bulk_url(tag), {"action": "add", "member_ids": ids}), 202)
    with tenant_scope(tenant):
        nos = sorted(BitMap.deserialize(bytes(Job.objects.get(pk=job["id"]).payload)))
        first_half = nos[:2]
        tagging.tag_apply_chunk(tag=tagging.Tag.objects.get(pk=tag["id"]), action="add",
                                member_nos=first_half, actor="api_key:test", source="manual")
        Job.objects.filter(pk=job["id"]).update(
            status=Job.Status.RUNNING, done=2, checkpoint={"after": first_half[-1]},
            result={"changed": 2})
        tagging.tag_bulk_run(job=Job.objects.get(pk=job["id"]))

    finished = body(api_client.get(f"{JOBS}{job['id']}/"))
    assert (finished["status"], finished["done"]) == ("succeeded", 4)
    assert finished["result"] == {"changed": 4, "done": 4}
    assert tagged(tenant, tag) == ids
    assert added_events(tenant, tag) == ids
    assert body(api_client.get(f"{TAGS}{tag['id']}/"))["member_count"] == 4


def test_finished_job_is_not_run_twice(api_client, tenant, tag, people,
                                       django_capture_on_commit_callbacks):
    ids = [people["wang"]["id"]]
    job = run_bulk(api_client, tag, {"action": "add", "member_ids": ids},
                   django_capture_on_commit_callbacks)
    with tenant_scope(tenant):
        MemberTag.objects.all().delete()
    tag_bulk_task(tenant.pk, job["id"])
    assert tagged(tenant, tag) == []
    assert body(api_client.get(f"{JOBS}{job['id']}/"))["result"] == {"changed": 1, "done": 1}


def test_other_tenant_cannot_see_our_jobs_or_bulk_our_tags(
        api_client, other_api_client, tenant, tag, people, django_capture_on_commit_callbacks):
    job = run_bulk(api_client, tag, {"action": "add", "member_ids": [people["wang"]["id"]]},
                   django_capture_on_commit_callbacks)
    assert other_api_client.get(f"{JOBS}{job['id']}/").status_code == 404
    their_group = make_group(other_api_client, "偏好")
    their_tag = make_tag(other_api_client, their_group["id"], "对手")
    for response in (
        post(other_api_client, bulk_url(tag), {"action": "remove",
                                               "member_ids": [people["wang"]["id"]]}),
        post(other_api_client, bulk_url(their_tag), {"action": "add",
                                                     "member_ids": [people["wang"]["id"]]}),
    ):
        assert response.status_code == 404
    assert post(other_api_client, bulk_url(their_tag), {
        "action": "add", "member_ids": [people["wang"]["id"]]}).json()["code"] == \
        "members_not_visible"
    assert tagged(tenant, tag) == [people["wang"]["id"]]
    assert job_count(tenant) == 1


def test_retried_bulk_request_with_the_same_key_queues_one_job(api_client, tenant, tag, people):
    data = {"action": "add", "member_ids": [people["wang"]["id"]]}
    first = body(post(api_client, bulk_url(tag), data, HTTP_IDEMPOTENCY_KEY="bulk-1"), 202)
    again = post(api_client, bulk_url(tag), data, HTTP_IDEMPOTENCY_KEY="bulk-1")
    assert body(again, 202)["id"] == first["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert job_count(tenant) == 1

"""Full follower sync from the sandbox: OneID, idempotence, unsubscribes, token expiry,
WeChat being busy, and a crash in the middle that resumes without loss or duplicates."""

import pytest

from integrations.models import Follower
from integrations.services.followers import followers_sync_run, followers_sync_start
from integrations.services.systemtags import follower_tag
from members.models import Member, MemberIdentity, TimelineEvent
from scrm.jobs import job_run
from scrm.models import Job
from scrm.tenancy import tenant_scope
from tags.audience.expressions import Parser
from tags.audience.index import audience_count
from tests.integrations.conftest import APPID

FOLLOWERS = 250


@pytest.fixture
def sandbox_options():
    return {"followers": FOLLOWERS, "page_size": 100}


def sync(actor, app, tenant, runner=followers_sync_run) -> Job:
    with tenant_scope(tenant):
        job = followers_sync_start(actor=actor, app=app, enqueue=False)
        job_run(tenant_id=tenant.pk, job_id=job.pk, runner=runner)
        job.refresh_from_db()
        return job


def state(tenant) -> dict:
    with tenant_scope(tenant):
        return {"members": Member.objects.count(),
                "openids": MemberIdentity.objects.filter(kind="wechat_openid").count(),
                "followers": Follower.objects.filter(is_subscribed=True).count(),
                "unsubscribed": Follower.objects.filter(is_subscribed=False).count()}


def test_a_full_sync_makes_every_follower_a_member_once(sandbox, actor, oa_app, tenant):
    job = sync(actor, oa_app, tenant)
    assert job.status == "succeeded", job.error
    assert (job.done, job.total, job.result["created"]) == (FOLLOWERS, FOLLOWERS, FOLLOWERS)
    assert state(tenant) == {"members": FOLLOWERS, "openids": FOLLOWERS,
                             "followers": FOLLOWERS, "unsubscribed": 0}
    expected = set(sandbox.openids(range(FOLLOWERS)))
    with tenant_scope(tenant):
        assert set(Follower.objects.values_list("openid", flat=True)) == expected
        unionids = MemberIdentity.objects.filter(kind="wechat_unionid").count()
        assert 0 < unionids <= FOLLOWERS
        assert follower_tag(oa_app).member_count == FOLLOWERS
        assert audience_count(Parser().parse({"oa_follower": APPID})) == FOLLOWERS
        member = Member.objects.order_by("pk").first()
        assert (member.source_channel, member.first_touch["appid"]) == ("wechat_oa", APPID)


def test_syncing_again_changes_nothing(sandbox, actor, oa_app, tenant):
    sync(actor, oa_app, tenant)
    with tenant_scope(tenant):
        synced_at = dict(Follower.objects.values_list("openid", "synced_at"))
    again = sync(actor, oa_app, tenant)
    assert (again.result["created"], again.result["unsubscribed"]) == (0, 0)
    assert state(tenant)["members"] == FOLLOWERS
    with tenant_scope(tenant):
        assert dict(Follower.objects.values_list("openid", "synced_at")) == synced_at


def test_unsubscribed_followers_are_marked_and_their_members_kept(sandbox, actor, oa_app,
                                                                  tenant):
    sync(actor, oa_app, tenant)
    gone = sandbox.openids([3, 150])
    for openid in gone:
        sandbox.simulate_mp("unsubscribe", openid=openid)
    sandbox.callbacks.take()  # this test is about the sync, not the callbacks
    job = sync(actor, oa_app, tenant)
    assert job.result["unsubscribed"] == 2
    assert state(tenant) == {"members": FOLLOWERS, "openids": FOLLOWERS,
                             "followers": FOLLOWERS - 2, "unsubscribed": 2}
    with tenant_scope(tenant):
        assert set(Follower.objects.filter(is_subscribed=False).values_list(
            "openid", flat=True)) == set(gone)
        assert follower_tag(oa_app).member_count == FOLLOWERS - 2


def test_followers_who_come_back_follow_again_on_the_same_member(sandbox, actor, oa_app,
                                                                 tenant):
    sync(actor, oa_app, tenant)
    (openid,) = sandbox.openids([7])
    sandbox.simulate_mp("unsubscribe", openid=openid)
    sync(actor, oa_app, tenant)
    sandbox.simulate_mp("subscribe", openid=openid)
    sandbox.callbacks.take()
    job = sync(actor, oa_app, tenant)
    assert (job.result["created"], job.result["updated"], job.result["unsubscribed"]) == (
        0, 1, 0)
    assert state(tenant) == {"members": FOLLOWERS, "openids": FOLLOWERS,
                             "followers": FOLLOWERS, "unsubscribed": 0}
    with tenant_scope(tenant):
        follower = Follower.objects.get(openid=openid)
        assert (follower.is_subscribed, follower.unsubscribed_at) == (True, None)
        assert list(TimelineEvent.objects.filter(member_id=follower.member_id).values_list(
            "kind", flat=True).order_by("id")) == ["member.created", "oa.unsubscribed",
                                                   "oa.subscribed"]
        assert follower_tag(oa_app).member_count == FOLLOWERS


def test_a_token_expiring_mid_sync_costs_one_refresh(sandbox, actor, oa_app, tenant):
    sandbox.scenario("token_expiry_mid_sync", app=APPID, after_pages=1)
    job = sync(actor, oa_app, tenant)
    assert job.status == "succeeded"
    assert state(tenant)["members"] == FOLLOWERS
    tokens = list(sandbox.calls(path="/cgi-bin/stable_token"))
    assert len(tokens) == 2


def test_wechat_busy_is_waited_out(sandbox, actor, oa_app, tenant, monkeypatch):
    monkeypatch.setattr("integrations.services.followers.time.sleep", lambda seconds: None)
    sandbox.scenario("system_busy", endpoint="user/info/batchget", first=3)
    job = sync(actor, oa_app, tenant)
    assert job.status == "succeeded"
    assert state(tenant)["members"] == FOLLOWERS


def test_an_exhausted_daily_quota_fails_the_sync_clearly_and_it_resumes(sandbox, actor, oa_app,
                                                                       tenant):
    sandbox.scenario("daily_quota_exhausted", endpoint="user/get")
    with pytest.raises(Exception, match="45009"):
        sync(actor, oa_app, tenant)
    with tenant_scope(tenant):
        job = Job.objects.get()
        assert (job.status, "45009" in job.error) == ("failed", True)
    sandbox.advance(24 * 3600)  # the quota resets with the day
    job = sync(actor, oa_app, tenant)
    assert job.status == "succeeded"
    assert state(tenant)["members"] == FOLLOWERS


def test_a_crash_mid_sync_resumes_without_loss_or_duplicates(sandbox, actor, oa_app, tenant):
    def crash_after_two_pages(*, job):
        def on_page(done, total):
            if done >= 200:
                raise RuntimeError("worker killed")
        followers_sync_run(job=job, on_page=on_page)

    with pytest.raises(RuntimeError):
        sync(actor, oa_app, tenant, runner=crash_after_two_pages)
    assert state(tenant)["members"] == 200  # two committed pages
    sandbox.simulate_mp("subscribe")  # someone new while the worker was down
    sandbox.callbacks.take()
    job = sync(actor, oa_app, tenant)
    assert job.status == "succeeded"
    assert state(tenant) == {"members": FOLLOWERS + 1, "openids": FOLLOWERS + 1,
                             "followers": FOLLOWERS + 1, "unsubscribed": 0}


def test_followers_who_leave_between_list_and_info_are_not_lost_or_invented(
        sandbox, actor, oa_app, tenant):
    sync(actor, oa_app, tenant)
    sandbox.scenario("follower_churn_during_sync", app=APPID, after_pages=1, unsubscribe=2,
                     subscribe=3, where="after_cursor")
    churned = sync(actor, oa_app, tenant)
    assert (churned.result["created"], churned.result["unsubscribed"]) == (3, 2)
    sandbox.callbacks.take()
    job = sync(actor, oa_app, tenant)  # a settled pass sees the final state
    assert job.status == "succeeded"
    assert state(tenant) == {"members": FOLLOWERS + 3, "openids": FOLLOWERS + 3,
                             "followers": FOLLOWERS + 1, "unsubscribed": 2}


def test_the_api_starts_a_sync_and_shows_its_progress(sandbox, api_client, oa_app, tenant,
                                                      django_capture_on_commit_callbacks):
    url = f"/api/v1/integrations/oa-apps/{oa_app.pk}/sync/"
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(url)
    assert response.status_code == 202
    status = api_client.get(url).json()
    assert (status["job"]["status"], status["job"]["done"], status["followers"]) == (
        "succeeded", FOLLOWERS, FOLLOWERS)

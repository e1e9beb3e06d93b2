"""Every page of the operator dashboard and the guide's phone view, with the scopes and the
visibility of the API: guides see their own customers, others 404; analysts see no edit
buttons; full phone numbers only for pii:read, each view audited."""

import json

import pytest

from members.models import MemberNote
from scrm.models import AuditEntry, Role, StaffMembership
from scrm.tenancy import tenant_scope
from tags.models import MemberTag, Segment
from tests.factories import StaffFactory
from tests.web.conftest import login

pytestmark = pytest.mark.django_db

OPERATOR_PAGES = {
    "/dashboard/": "运营看板",
    "/dashboard/panels/members/?period=7": "会员与增长",
    "/dashboard/panels/channels/?period=30": "渠道归因",
    "/dashboard/panels/loyalty/": "积分负债",
    "/dashboard/panels/rfm/": "RFM 尚未计算",
    "/dashboard/panels/campaigns/": "营销活动效果",
    "/members/": "王芳",
    "/segments/": "人群",
    "/segments/new/": "实时人数",
    "/tags/": "护肤达人",
    "/tags/new/": "规则",
    "/jobs/": "后台任务",
    "/settings/staff/": "导购小王",
    "/settings/api-keys/": "创建密钥",
    "/loyalty/tiers/": "会员等级",
    "/loyalty/policy/": "积分规则",
    "/loyalty/mall/": "积分商城",
    "/integrations/": "接入公众号",
    "/channels/": "新建渠道活码",
    "/campaigns/": "营销活动",
    "/coupons/": "满100减20",
    "/campaigns/new/": "4. 确认",
    "/automations/": "自动化规则",
    "/referrals/": "裂变推荐",
}


@pytest.mark.parametrize(("url", "text"), OPERATOR_PAGES.items())
def test_operator_pages_render_for_the_owner(shop, as_role, url, text):
    response = as_role("owner").get(url)
    assert response.status_code == 200
    assert text in response.content.decode()


def test_member_page_shows_profile_sections_and_masked_phone(shop, as_role):
    mine = shop["mine"]
    content = as_role("owner").get(f"/members/{mine.pk}/").content.decode()
    assert "王芳" in content
    assert "138****8000" in content
    assert "13800138000" not in content
    for section in ("tags", "points", "rfm", "wechat"):
        assert f"/members/{mine.pk}/{section}/" in content
    for section in ("tags", "points", "rfm", "wechat"):
        assert as_role("owner").get(f"/members/{mine.pk}/{section}/").status_code == 200


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get("/members/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/members/")


def test_login_page_is_chinese_by_default_and_english_on_request(client):
    assert "登录" in client.get("/login/").content.decode()
    english = client.get("/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Sign in" in english


def test_signing_in_lands_guides_on_their_phone_view(shop, client):
    guide = shop["staff"]["guide"]
    response = client.post("/login/", {"username": guide.user.username,
                                       "password": "pw-for-tests"})
    assert response.status_code == 302
    assert client.get("/", follow=True).redirect_chain[-1][0] == "/guide/"


def test_another_stores_guide_gets_404_for_a_customer_not_theirs(shop, as_role):
    theirs = shop["theirs"]
    client = as_role("guide")
    for url in (f"/guide/customers/{theirs.pk}/", f"/members/{theirs.pk}/",
                f"/guide/customers/{theirs.pk}/tags/", f"/members/{theirs.pk}/points/"):
        assert client.get(url).status_code == 404, url
    response = client.post(f"/members/{theirs.pk}/notes/", {"text": "偷看"})
    assert response.status_code == 404
    with tenant_scope(shop["tenant"]):
        assert not MemberNote.objects.exists()


def test_guides_list_only_their_own_customers(shop, as_role):
    content = as_role("guide").get("/guide/").content.decode()
    assert "王芳" in content
    assert "李娜" not in content
    listed = as_role("guide").get("/members/").content.decode()
    assert "王芳" in listed
    assert "李娜" not in listed


def test_store_managers_see_their_store_only(shop, as_role):
    content = as_role("manager").get("/members/?store=HZ001").content.decode()
    assert "李娜" in content
    assert "王芳" not in content
    assert as_role("manager").get(f"/members/{shop['mine'].pk}/").status_code == 404


def test_other_tenants_members_answer_404(shop, other_tenant):
    stranger = StaffFactory(tenant=other_tenant, role=Role.OWNER)
    assert login(stranger).get(f"/members/{shop['mine'].pk}/").status_code == 404


def test_an_analyst_sees_no_edit_buttons(shop, as_role):
    client = as_role("analyst")
    content = client.get(f"/members/{shop['mine'].pk}/").content.decode()
    assert "保存备注" not in content
    assert "显示" not in content  # no phone reveal without pii:read
    tags = client.get(f"/members/{shop['mine'].pk}/tags/").content.decode()
    assert "添加标签" not in tags
    assert "×</button>" not in tags
    assert "保存人群" not in client.get("/segments/new/").content.decode()
    menu = client.get("/dashboard/").content.decode()
    assert "/settings/staff/" not in menu
    assert "/tags/" not in menu
    assert client.get("/settings/staff/").status_code == 403
    assert client.post(f"/members/{shop['mine'].pk}/notes/", {"text": "x"}).status_code == 403


def test_the_phone_is_revealed_to_pii_roles_and_audited(shop, as_role):
    mine = shop["mine"]
    response = as_role("service").post(f"/members/{mine.pk}/phone/")
    assert response.status_code == 200
    assert "13800138000" in response.content.decode()
    with tenant_scope(shop["tenant"]):
        entry = AuditEntry.objects.get(action="member.phone_viewed")
    assert entry.target_id == mine.pk
    assert as_role("analyst").post(f"/members/{mine.pk}/phone/").status_code == 403


def test_a_guide_writes_a_note_shown_on_the_member_page(shop, as_role):
    mine = shop["mine"]
    response = as_role("guide").post(f"/members/{mine.pk}/notes/",
                                     {"text": "偏好清爽型护肤", "from": "guide"},
                                     HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "偏好清爽型护肤" in response.content.decode()
    with tenant_scope(shop["tenant"]):
        note = MemberNote.objects.get()
    assert note.author == shop["staff"]["guide"]
    assert "偏好清爽型护肤" in as_role("owner").get(f"/members/{mine.pk}/").content.decode()


def test_an_empty_note_is_refused(shop, as_role):
    response = as_role("guide").post(f"/members/{shop['mine'].pk}/notes/", {"text": "  "},
                                     HTTP_HX_REQUEST="true")
    assert "备注不能为空" in response.content.decode()
    with tenant_scope(shop["tenant"]):
        assert not MemberNote.objects.exists()


def test_one_tap_tagging_adds_and_removes(shop, as_role):
    mine, tag = shop["mine"], shop["tag"]
    url = f"/members/{mine.pk}/tags/toggle/"
    client = as_role("guide")
    response = client.post(url, {"tag": tag.pk, "action": "add", "mobile": "1"})
    assert 'aria-pressed="true"' in response.content.decode()
    with tenant_scope(shop["tenant"]):
        assert MemberTag.objects.filter(member=mine, tag=tag).exists()
    client.post(url, {"tag": tag.pk, "action": "remove", "mobile": "1"})
    with tenant_scope(shop["tenant"]):
        assert not MemberTag.objects.filter(member=mine, tag=tag).exists()


def test_segment_count_answers_live_and_explains_bad_expressions(shop, as_role):
    client = as_role("owner")
    response = client.post("/segments/count/", {"expression": json.dumps(
        {"all": [{"store": "SH001"}]})})
    assert 'data-count="1"' in response.content.decode()
    bad = client.post("/segments/count/", {"expression": json.dumps({"tag": 99999})})
    assert "标签 99999 不存在" in bad.content.decode()
    guide = as_role("other_guide").post("/segments/count/", {"expression": json.dumps(
        {"store": "SH001"})})
    assert 'data-count="0"' in guide.content.decode()


def test_a_segment_is_saved_and_exported_as_a_job(shop, as_role,
                                                 django_capture_on_commit_callbacks):
    client = as_role("owner")
    response = client.post("/segments/new/", {"name": "上海会员", "expression": json.dumps(
        {"all": [{"field": "city", "op": "eq", "value": "上海"}]})})
    assert response.status_code == 302
    with tenant_scope(shop["tenant"]):
        segment = Segment.objects.get(name="上海会员", created_by__startswith="staff")
    assert segment.last_count == 1
    assert "上海会员" in client.get(f"/segments/{segment.pk}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/segments/{segment.pk}/export/")
    jobs = client.get("/jobs/").content.decode()
    assert "下载 CSV" in jobs
    link = next(
        part.split('"')[0] for part in jobs.split('href="') if "/exports/download/" in part)
    download = client.get(link.replace("&amp;", "&"))
    assert download.status_code == 200
    assert "王芳" in b"".join(download.streaming_content).decode("utf-8-sig")


def test_member_list_filters_by_tag_store_and_identity(shop, as_role):
    client = as_role("owner")
    assert "共 1 位会员" in client.get("/members/?store=SH001").content.decode()
    by_phone = client.get("/members/?identity_kind=phone&identity_value=13900139000")
    assert "李娜" in by_phone.content.decode()
    assert "王芳" not in by_phone.content.decode()


def test_owners_add_staff_and_the_last_owner_stays(shop, as_role):
    client = as_role("owner")
    client.post("/settings/staff/", {"email": "new@acme.cn", "role": Role.GUIDE,
                                     "store": shop["stores"][0].pk, "display_name": "新人"})
    assert StaffMembership.objects.filter(tenant=shop["tenant"], display_name="新人").exists()
    owner = shop["staff"]["owner"]
    client.post(f"/settings/staff/{owner.pk}/", {"role": Role.ANALYST, "is_active": "on"})
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_guide_tabs_render(shop, as_role):
    client = as_role("guide")
    assert "本周生日" in client.get("/guide/tasks/").content.decode()
    assert "门店排名" in client.get("/guide/performance/?period=90").content.decode()
    assert client.get("/guide/?quick=new").status_code == 200
    assert "王芳" in client.get("/guide/?q=王").content.decode()


def test_the_campaign_wizard_estimates_then_launches_a_coupon_campaign(
        shop, as_role, django_capture_on_commit_callbacks):
    client = as_role("owner")
    form = {"name": "新客满减", "segment": shop["segment"].pk, "coupon": "welcome20",
            "schedule": "now", "control_percent": "0", "require_consent": "on"}
    review = client.post("/campaigns/review/", form).content.decode()
    assert 'data-review-members="1"' in review
    assert "¥20.00" in review  # one member reached, a 20 yuan coupon
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/campaigns/new/", {**form, "launch": "1"})
    assert response.status_code == 302
    detail = client.get(response["Location"]).content.decode()
    assert 'data-status="completed"' in detail
    assert 'data-reached="1"' in detail
    with tenant_scope(shop["tenant"]):
        from campaigns.coupons.models import Coupon

        assert Coupon.objects.get().member_id == shop["mine"].pk


def test_the_wizard_explains_what_is_missing(shop, as_role):
    response = as_role("owner").post("/campaigns/new/", {
        "name": "空动作", "segment": shop["segment"].pk, "schedule": "now"})
    assert response.status_code == 200
    assert "至少需要一个动作" in response.content.decode()


def test_an_analyst_reads_campaigns_but_cannot_create_them(shop, as_role):
    client = as_role("analyst")
    assert "新建营销活动" not in client.get("/campaigns/").content.decode()
    assert client.get("/campaigns/new/").status_code == 403
    assert "新建优惠券" not in client.get("/coupons/").content.decode()


def test_coupons_are_created_from_the_page(shop, as_role):
    as_role("owner").post("/coupons/", {"code": "gift1", "name": "小样礼", "kind": "gift",
                                        "gift_name": "精华小样", "validity": "relative",
                                        "valid_days": "30"})
    assert "小样礼" in as_role("owner").get("/coupons/").content.decode()


def test_owners_create_and_edit_the_tier_programme(shop, as_role,
                                                   django_capture_on_commit_callbacks):
    from points.models import TierLevel

    client = as_role("owner")
    levels = {"level-0-code": "silver", "level-0-name": "银卡", "level-0-threshold": "0",
              "level-1-code": "gold", "level-1-name": "金卡", "level-1-threshold": "5000",
              "level-2-code": "", "level-2-name": "", "level-2-threshold": ""}
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/loyalty/tiers/", {"name": "会员等级", "basis": "spend",
                                        "window_days": "365", "review_days": "365",
                                        "protection_days": "90", **levels})
    with tenant_scope(shop["tenant"]):
        assert list(TierLevel.objects.order_by("rank").values_list("code", flat=True)) == [
            "silver", "gold"]
        program = TierLevel.objects.first().program_id
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/loyalty/tiers/", {"program": program, **levels,
                                        "level-1-threshold": "8000"})
    with tenant_scope(shop["tenant"]):
        assert TierLevel.objects.get(code="gold").threshold == 8000
    assert "保存等级体系" not in as_role("analyst").get("/loyalty/tiers/").content.decode()

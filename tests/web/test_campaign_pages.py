"""The configuration screens of campaigns and coupons (automation rules, referral campaigns,
a coupon template's edit page and stats) and the coupon sections a member's page and a
guide's phone view show: sending a coupon, sharing an invite link, coupons about to expire."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.coupons.models import Coupon, CouponTemplate
from campaigns.coupons.services import coupon_issue
from campaigns.models import AutomationRule
from campaigns.referrals.models import ReferralCampaign, ReferralInvite, ReferralReward
from scrm.access import Actor
from scrm.tenancy import tenant_scope

pytestmark = pytest.mark.django_db


def _rules(tenant) -> list[AutomationRule]:
    with tenant_scope(tenant):
        return list(AutomationRule.objects.order_by("pk"))


def test_an_automation_rule_is_created_then_edited_from_the_page(shop, as_role):
    owner = as_role("owner")
    assert "新建自动化规则" in owner.get("/automations/new/").content.decode()
    response = owner.post("/automations/new/", {
        "name": "生日送券", "trigger": "birthday", "days": "3", "delay_minutes": "0",
        "condition_segment": str(shop["segment"].pk), "action": "coupon",
        "coupon": "welcome20", "is_active": "on"})
    assert response.status_code == 302
    [rule] = _rules(shop["tenant"])
    assert (rule.name, rule.trigger, rule.days, rule.action) == ("生日送券", "birthday", 3,
                                                                 "coupon")
    assert rule.params == {"template": "welcome20"}
    assert rule.condition == shop["segment"].expression
    listing = owner.get("/automations/").content.decode()
    assert "生日送券" in listing
    assert f"/automations/{rule.pk}/" in listing

    owner.post(f"/automations/{rule.pk}/", {
        "name": "生日送积分", "trigger": "birthday", "days": "7", "delay_minutes": "30",
        "condition_segment": "keep", "action": "points", "points": "88"})
    [rule] = _rules(shop["tenant"])
    assert (rule.name, rule.days, rule.delay_minutes, rule.action) == ("生日送积分", 7, 30,
                                                                       "points")
    assert rule.params["points"] == 88
    assert rule.condition == shop["segment"].expression  # kept
    assert rule.is_active is False  # the box was left unticked


def test_a_bad_automation_rule_is_explained_and_nothing_saved(shop, as_role):
    response = as_role("owner").post("/automations/new/", {
        "name": "送券", "trigger": "followed", "action": "coupon", "coupon": ""})
    assert response.status_code == 200
    assert "优惠券模板" in response.content.decode()
    assert _rules(shop["tenant"]) == []


def test_analysts_and_guides_cannot_create_automation_rules(shop, as_role):
    assert as_role("analyst").get("/automations/new/").status_code == 403
    assert as_role("guide").post("/automations/new/", {
        "name": "x", "trigger": "followed", "action": "points", "points": "5"}).status_code == 403
    assert _rules(shop["tenant"]) == []


def test_a_referral_campaign_is_created_with_rewards_and_shows_its_leaderboard(shop, as_role):
    owner = as_role("owner")
    response = owner.post("/referrals/", {
        "name": "老带新", "success_event": "follow", "conversion_days": "30",
        "inviter_cap": "0", "velocity_per_hour": "0", "inviter_kind": "points",
        "inviter_value": "100", "invitee_kind": "coupon", "invitee_value": "welcome20"})
    assert response.status_code == 302
    with tenant_scope(shop["tenant"]):
        campaign = ReferralCampaign.objects.get()
        rewards = sorted((r.beneficiary, r.kind, r.params.get("points") or r.params.get(
            "template")) for r in ReferralReward.objects.filter(campaign=campaign))
    assert campaign.name == "老带新"
    assert rewards == [("invitee", "coupon", "welcome20"), ("inviter", "points", 100)]
    page = owner.get(response["Location"]).content.decode()
    assert "老带新" in page
    assert "排行榜" in page


def test_a_referral_campaign_with_an_unknown_coupon_is_refused(shop, as_role):
    response = as_role("owner").post("/referrals/", {
        "name": "老带新", "inviter_kind": "coupon", "inviter_value": "nope"}, follow=True)
    assert "nope" in response.content.decode()
    with tenant_scope(shop["tenant"]):
        assert not ReferralCampaign.objects.exists()


def test_a_coupon_template_is_edited_and_shows_its_stats(shop, as_role):
    owner, coupon = as_role("owner"), shop["coupon"]
    with tenant_scope(shop["tenant"]):
        coupon_issue(actor=Actor(tenant=shop["tenant"]), template=coupon, member=shop["mine"],
                     key="t1", source="manual")
    page = owner.get(f"/coupons/{coupon.pk}/").content.decode()
    assert "已发放" in page
    assert "满100减20" in page
    response = owner.post(f"/coupons/{coupon.pk}/", {
        "name": "满200减50", "amount": "50", "threshold": "200", "validity": "relative",
        "valid_days": "14", "total_stock": "500", "per_member_limit": "2",
        "stores": "SH001, HZ001", "is_active": "on"})
    assert response.status_code == 302
    with tenant_scope(shop["tenant"]):
        coupon = CouponTemplate.objects.get(pk=coupon.pk)
    assert (coupon.name, coupon.amount_fen, coupon.threshold_fen, coupon.valid_days,
            coupon.total_stock, coupon.per_member_limit, coupon.stores) == (
        "满200减50", 5000, 20000, 14, 500, 2, ["SH001", "HZ001"])
    assert f"/coupons/{coupon.pk}/" in owner.get("/coupons/").content.decode()


def test_a_coupon_template_edit_is_refused_for_a_stock_below_the_issued(shop, as_role):
    owner, coupon = as_role("owner"), shop["coupon"]
    with tenant_scope(shop["tenant"]):
        for key in ("a", "b"):
            member = shop["mine"] if key == "a" else shop["theirs"]
            coupon_issue(actor=Actor(tenant=shop["tenant"]), template=coupon, member=member,
                         key=key, source="manual")
    owner.post(f"/coupons/{coupon.pk}/", {"name": "满100减20", "total_stock": "1",
                                           "is_active": "on"})
    with tenant_scope(shop["tenant"]):
        assert CouponTemplate.objects.get(pk=coupon.pk).total_stock == 0


def test_a_guide_sends_their_customer_a_coupon_once_per_form(shop, as_role):
    guide, mine = as_role("guide"), shop["mine"]
    section = guide.get(f"/members/{mine.pk}/coupons/").content.decode()
    assert "发一张券" in section
    form = {"template": shop["coupon"].pk, "nonce": "abc123"}
    first = guide.post(f"/members/{mine.pk}/coupons/send/", form).content.decode()
    again = guide.post(f"/members/{mine.pk}/coupons/send/", form).content.decode()
    with tenant_scope(shop["tenant"]):
        [coupon] = Coupon.objects.filter(member=mine)
    assert coupon.code in first
    assert coupon.code in again
    assert coupon.source == "manual"


def test_a_guide_cannot_send_or_see_another_stores_customers_coupons(shop, as_role):
    guide, theirs = as_role("guide"), shop["theirs"]
    assert guide.get(f"/members/{theirs.pk}/coupons/").status_code == 404
    assert guide.post(f"/members/{theirs.pk}/coupons/send/", {
        "template": shop["coupon"].pk, "nonce": "x1"}).status_code == 404
    with tenant_scope(shop["tenant"]):
        assert not Coupon.objects.exists()


def test_the_guides_profile_loads_the_coupon_section(shop, as_role):
    content = as_role("guide").get(f"/guide/customers/{shop['mine'].pk}/").content.decode()
    assert f"/members/{shop['mine'].pk}/coupons/" in content


def test_a_guide_shares_a_running_referral_campaigns_invite_link(shop, as_role):
    with tenant_scope(shop["tenant"]):
        campaign = ReferralCampaign.objects.create(tenant=shop["tenant"], name="老带新")
    guide, mine = as_role("guide"), shop["mine"]
    assert "老带新" in guide.get(f"/members/{mine.pk}/coupons/").content.decode()
    content = guide.post(f"/members/{mine.pk}/referral-link/",
                         {"campaign": campaign.pk}).content.decode()
    with tenant_scope(shop["tenant"]):
        invite = ReferralInvite.objects.get(campaign=campaign)
    assert invite.inviter_id == mine.pk
    assert f"/r/{invite.code}/" in content


def test_the_guides_tasks_list_coupons_about_to_expire(shop, as_role):
    tenant = shop["tenant"]
    with tenant_scope(tenant):
        for member in (shop["mine"], shop["theirs"]):
            coupon = coupon_issue(actor=Actor(tenant=tenant), template=shop["coupon"],
                                  member=member, key=f"k{member.pk}", source="manual")
            Coupon.objects.filter(pk=coupon.pk).update(
                valid_until=timezone.now() + dt.timedelta(days=2))
    tasks = as_role("guide").get("/guide/tasks/").content.decode()
    assert "/guide/tasks/coupons/" in tasks
    section = as_role("guide").get("/guide/tasks/coupons/").content.decode()
    assert "王芳" in section
    assert "李娜" not in section


def test_the_new_screens_switch_to_english(shop, as_role):
    owner = as_role("owner")
    owner.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert "New automation rule" in owner.get("/automations/new/").content.decode()
    assert "Send a coupon" in owner.get(
        f"/members/{shop['mine'].pk}/coupons/").content.decode()
    assert "New referral campaign" in owner.get("/referrals/").content.decode()


def test_the_coupon_list_costs_the_same_queries_however_many_templates(shop, as_role,
                                                                     settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from campaigns.coupons.services import coupon_template_save

    settings.DASHBOARD_CACHE_SECONDS = 0  # count the summary's query each time
    owner = as_role("owner")
    owner.get("/coupons/")  # the session and the menu warmed
    with CaptureQueriesContext(connection) as one:
        owner.get("/coupons/")
    with tenant_scope(shop["tenant"]):
        for n in range(3):
            coupon_template_save(actor=Actor(tenant=shop["tenant"]), changes={
                "code": f"extra{n}", "name": f"满减{n}", "kind": "fixed", "amount_fen": 500,
                "validity": "relative", "valid_days": 7})
    with CaptureQueriesContext(connection) as four:
        content = owner.get("/coupons/").content.decode()
    assert "满减2" in content
    assert len(four) == len(one)


def test_the_member_page_loads_the_coupon_section_and_owners_send_from_it(shop, as_role):
    owner, theirs = as_role("owner"), shop["theirs"]
    assert f"/members/{theirs.pk}/coupons/" in owner.get(
        f"/members/{theirs.pk}/").content.decode()
    content = owner.post(f"/members/{theirs.pk}/coupons/send/", {
        "template": shop["coupon"].pk, "nonce": "owner1"}).content.decode()
    with tenant_scope(shop["tenant"]):
        [coupon] = Coupon.objects.filter(member=theirs)
    assert coupon.code in content


def test_an_analyst_sees_coupons_but_cannot_send_one(shop, as_role):
    analyst, mine = as_role("analyst"), shop["mine"]
    section = analyst.get(f"/members/{mine.pk}/coupons/").content.decode()
    assert "发一张券" not in section
    assert analyst.post(f"/members/{mine.pk}/coupons/send/", {
        "template": shop["coupon"].pk, "nonce": "an1"}).status_code == 404
    with tenant_scope(shop["tenant"]):
        assert not Coupon.objects.exists()


def test_an_analyst_cannot_make_invite_links(shop, as_role):
    with tenant_scope(shop["tenant"]):
        campaign = ReferralCampaign.objects.create(tenant=shop["tenant"], name="老带新")
    analyst = as_role("analyst")
    assert "生成专属邀请链接" not in analyst.get(
        f"/members/{shop['mine'].pk}/coupons/").content.decode()
    assert analyst.post(f"/members/{shop['mine'].pk}/referral-link/",
                        {"campaign": campaign.pk}).status_code == 403
    with tenant_scope(shop["tenant"]):
        assert not ReferralInvite.objects.exists()


def test_a_flash_sale_is_set_up_on_the_mall_page_with_its_limit(shop, as_role):
    from points.models import FlashSale, MallItem

    owner = as_role("owner")
    owner.post("/loyalty/mall/", {"form": "item", "name": "旅行装面霜", "kind": "gift",
                                  "points": "500", "stock": "100"})
    with tenant_scope(shop["tenant"]):
        item = MallItem.objects.get(name="旅行装面霜")
    owner.post("/loyalty/mall/", {
        "form": "flash_sale", "item": item.pk, "name": "周末秒杀",
        "starts_at": "2030-01-01T10:00", "ends_at": "2030-01-01T12:00", "points": "199",
        "stock": "20", "per_member_limit": "2"})
    with tenant_scope(shop["tenant"]):
        sale = FlashSale.objects.get(item=item)
    assert (sale.name, sale.points, sale.stock, sale.per_member_limit) == ("周末秒杀", 199, 20, 2)
    assert "周末秒杀" in owner.get("/loyalty/mall/").content.decode()

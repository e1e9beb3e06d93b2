"""HTML views of campaigns and coupons: the dashboard's campaign results; the campaign
wizard (audience → actions → schedule → review with counts and a cost estimate), a
campaign's runs and results; automation rules; referral campaigns with their leaderboard;
coupon templates with their redemption."""

import json
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from campaigns.api import AutomationInput, CampaignInput
from campaigns.coupons.api.serializers import CouponTemplateInput
from campaigns.coupons.models import CouponTemplate
from campaigns.coupons.selectors import coupon_template_list, coupon_templates_summary
from campaigns.coupons.services import coupon_template_save
from campaigns.models import ActionKind, AutomationRule, Campaign
from campaigns.referrals.api.serializers import ReferralInput
from campaigns.referrals.models import ReferralCampaign, ReferralEvent
from campaigns.referrals.selectors import referral_leaderboard, referral_stats
from campaigns.referrals.services import referral_campaign_save
from campaigns.reports import with_results
from campaigns.services.automation import automation_rule_save
from campaigns.services.campaigns import campaign_launch, campaign_save
from campaigns.services.results import campaign_results
from points.services import policy_get as points_policy_get
from scrm.access import CAMPAIGNS_MANAGE, CAMPAIGNS_READ, COUPONS_MANAGE, COUPONS_READ
from scrm.api.errors import ApplicationError
from scrm.reports import cached, report_value
from scrm.web import error_text, page, validated
from tags.models import Segment, Tag
from tags.services.segments import expression_members

LISTED = 50
WIZARD_FIELDS = ("name", "description", "segment", "schedule", "start_at", "cron",
                 "control_percent", "attribution_days", "throttle_per_minute")
CHECKBOXES = ("respect_quiet_hours", "respect_frequency_cap", "require_consent")
AUTOMATION_FORM = ("name", "trigger", "days", "action", "delay_minutes")
REFERRAL_FORM = ("name", "description", "starts_at", "ends_at", "landing_url", "success_event",
                 "conversion_days", "inviter_cap", "velocity_per_hour")
REFERRAL_REWARD_KINDS = ((ActionKind.POINTS, ActionKind.POINTS.label),
                         (ActionKind.COUPON, ActionKind.COUPON.label))


@page(CAMPAIGNS_READ, whole_tenant=True)
def panel_campaigns(request: HttpRequest) -> HttpResponse:
    rows = report_value(actor=request.actor, name="campaigns")
    return render(request, "campaigns/panel_campaigns.html", {"rows": rows})


@page(CAMPAIGNS_READ, whole_tenant=True)
def campaign_list(request: HttpRequest) -> HttpResponse:
    return render(request, "campaigns/campaigns.html", {
        "rows": with_results(Campaign.objects.order_by("-pk")[:LISTED]),
        "can_manage": request.actor.can(CAMPAIGNS_MANAGE)})


def _actions(post) -> list[dict]:
    """The wizard's step 2: a coupon, points and a tag, each when chosen."""
    actions: list[dict] = []
    if post.get("coupon"):
        actions.append({"kind": ActionKind.COUPON, "params": {"template": post["coupon"]}})
    if post.get("points", "").isdigit() and int(post["points"]) > 0:
        actions.append({"kind": ActionKind.POINTS, "params": {
            "points": int(post["points"]), "reason": post.get("name", "")[:100]}})
    if post.get("tag", "").isdigit():
        actions.append({"kind": ActionKind.TAG, "params": {"tag": int(post["tag"])}})
    return actions


def _changes(post) -> dict[str, Any]:
    data = {key: post[key] for key in WIZARD_FIELDS if post.get(key, "").strip()}
    data.update({key: post.get(key) == "on" for key in CHECKBOXES})
    return validated(CampaignInput, data)  # the segment comes back as the row


def estimate(post) -> dict[str, Any]:
    """The review step: how many members the audience has now, how many the control group
    holds out, and what the actions would cost if every reached member took them."""
    segment = Segment.objects.filter(pk=post.get("segment") or 0).first()
    if segment is None:
        return {"empty": True}
    members = len(expression_members(segment.expression))
    control_percent = int(post.get("control_percent") or 0)
    reached = members - members * control_percent // 100
    coupon = CouponTemplate.objects.filter(code=post.get("coupon") or "").first()
    coupon_fen = coupon.amount_fen if coupon and coupon.kind == CouponTemplate.Kind.FIXED else 0
    points = int(post["points"]) if post.get("points", "").isdigit() else 0
    points_fen = points * points_policy_get().point_value_fen
    return {"segment": segment, "members": members, "reached": reached,
            "control": members - reached, "coupon": coupon, "points": points,
            "coupon_cost_fen": reached * coupon_fen, "points_cost_fen": reached * points_fen,
            "cost_fen": reached * (coupon_fen + points_fen),
            "percent_coupon": coupon is not None and coupon.kind != CouponTemplate.Kind.FIXED}


@require_POST
@page(CAMPAIGNS_READ, whole_tenant=True)
def campaign_review(request: HttpRequest) -> HttpResponse:
    return render(request, "campaigns/_review.html", estimate(request.POST))


@page(CAMPAIGNS_MANAGE, whole_tenant=True)
def campaign_new(request: HttpRequest) -> HttpResponse:
    error = ""
    if request.method == "POST":
        try:
            campaign = campaign_save(actor=request.actor, changes=_changes(request.POST),
                                     actions=_actions(request.POST))
            if request.POST.get("launch"):
                campaign_launch(actor=request.actor, campaign=campaign)
                messages.success(request, _("活动已启动。"))
            else:
                messages.success(request, _("活动草稿已保存。"))
            return redirect("web:campaigns-detail", campaign_id=campaign.pk)
        except ApplicationError as exc:
            error = error_text(exc)
    return render(request, "campaigns/wizard.html", {
        "error": error, "post": request.POST,
        "segments": Segment.objects.order_by("-updated_at")[:200],
        "coupons": CouponTemplate.objects.filter(is_active=True).order_by("-pk")[:200],
        "tags": Tag.objects.filter(kind__in=(Tag.Kind.MANUAL, Tag.Kind.SYNCED)).exclude(
            target=Tag.Target.PRODUCT).select_related("group").order_by("group_id", "name"),
        "schedules": Campaign.Schedule.choices})


def _campaign(campaign_id: int) -> Campaign:
    campaign = Campaign.objects.select_related("segment").filter(pk=campaign_id).first()
    if campaign is None:
        raise Http404
    return campaign


@page(CAMPAIGNS_READ, whole_tenant=True)
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(campaign_id)
    context = {"campaign": campaign, "results": campaign_results(campaign=campaign),
               "runs": campaign.runs.order_by("-occurrence")[:20],
               "actions": campaign.actions.order_by("position"),
               "can_manage": request.actor.can(CAMPAIGNS_MANAGE)}
    if request.htmx:
        return render(request, "campaigns/_campaign_status.html", context)
    return render(request, "campaigns/campaign.html", context)


@require_POST
@page(CAMPAIGNS_MANAGE, whole_tenant=True)
def campaign_start(request: HttpRequest, campaign_id: int) -> HttpResponse:
    try:
        campaign_launch(actor=request.actor, campaign=_campaign(campaign_id))
        messages.success(request, _("活动已启动。"))
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    return redirect("web:campaigns-detail", campaign_id=campaign_id)


@page(CAMPAIGNS_READ, whole_tenant=True)
def automation_list(request: HttpRequest) -> HttpResponse:
    return render(request, "campaigns/automations.html", {
        "rules": AutomationRule.objects.order_by("-pk")[:LISTED],
        "can_manage": request.actor.can(CAMPAIGNS_MANAGE)})


def _automation_changes(post) -> dict[str, Any]:
    """The rule form: the condition is a saved segment's expression (copied, so editing the
    segment later does not change the rule), the action's params come from the fields of its
    kind, or from the JSON box for the message kinds."""
    data: dict[str, Any] = {key: post[key].strip() for key in AUTOMATION_FORM
                            if post.get(key, "").strip()}
    data["respect_frequency_cap"] = post.get("respect_frequency_cap") == "on"
    data["is_active"] = post.get("is_active") == "on"
    if post.get("condition_segment") == "keep":
        pass
    elif post.get("condition_segment"):
        segment = Segment.objects.filter(pk=post["condition_segment"]).first()
        if segment is None:
            raise ApplicationError(_("人群不存在。"), code="validation_error")
        data["condition"] = segment.expression
    else:
        data["condition"] = None
    kind = post.get("action", "")
    if kind in (ActionKind.COUPON, ActionKind.POINTS, ActionKind.TAG):
        chosen = {key: post.get(key, "") for key in ("name", kind)}
        found = _actions(chosen)  # the wizard's own reading of the coupon, points, tag fields
        data["params"] = found[0]["params"] if found else {}
    else:
        try:
            data["params"] = json.loads(post.get("params_json") or "{}")
        except ValueError as exc:
            raise ApplicationError(_("动作参数不是有效的 JSON。"), code="validation_error",
                                   fields={"params": [str(exc)]}) from exc
    return validated(AutomationInput, data)


@page(CAMPAIGNS_MANAGE, whole_tenant=True)
def automation_edit(request: HttpRequest, rule_id: int | None = None) -> HttpResponse:
    rule = None
    if rule_id is not None:
        rule = AutomationRule.objects.filter(pk=rule_id).first()
        if rule is None:
            raise Http404
    error = ""
    if request.method == "POST":
        try:
            saved = automation_rule_save(actor=request.actor, rule=rule,
                                         changes=_automation_changes(request.POST))
            messages.success(request, _("自动化规则“%(name)s”已保存。") % {"name": saved.name})
            return redirect("web:automations")
        except ApplicationError as exc:
            error = error_text(exc)
    return render(request, "campaigns/automation_edit.html", {
        "rule": rule, "error": error, "post": request.POST if request.method == "POST" else None,
        "triggers": AutomationRule.Trigger.choices, "actions": ActionKind.choices,
        "params_json": json.dumps(rule.params, ensure_ascii=False) if rule else "{}",
        **_pickers()})


def _pickers() -> dict[str, Any]:
    return {"segments": Segment.objects.order_by("-updated_at")[:200],
            "coupons": CouponTemplate.objects.filter(is_active=True).order_by("-pk")[:200],
            "tags": Tag.objects.filter(kind__in=(Tag.Kind.MANUAL, Tag.Kind.SYNCED)).exclude(
                target=Tag.Target.PRODUCT).select_related("group").order_by("group_id", "name")}


def _referral_create(request: HttpRequest) -> ReferralCampaign:
    """The create form: the campaign's window and rules, and at most one reward each for
    the inviter and the invitee on the success event (more rules through the API)."""
    post = request.POST
    data: dict[str, Any] = {key: post[key].strip() for key in REFERRAL_FORM
                            if post.get(key, "").strip()}
    data["qr_permanent"] = post.get("qr_permanent") == "on"
    rewards = []
    for beneficiary in ("inviter", "invitee"):
        kind = post.get(f"{beneficiary}_kind", "")
        value = post.get(f"{beneficiary}_value", "").strip()
        if kind and value:
            params = {"template": value} if kind == ActionKind.COUPON else {
                "points": int(value) if value.isdigit() else value}
            rewards.append({"event": data.get("success_event", "follow"),
                            "beneficiary": beneficiary, "kind": kind, "params": params})
    values = validated(ReferralInput, {**data, "rewards": rewards})
    rewards = [dict(reward) for reward in values.pop("rewards", [])]
    return referral_campaign_save(actor=request.actor, changes=values, rewards=rewards)


@page(CAMPAIGNS_READ, whole_tenant=True)
def referral_list(request: HttpRequest) -> HttpResponse:
    can_manage = request.actor.can(CAMPAIGNS_MANAGE)
    if request.method == "POST":
        if not can_manage:
            raise Http404
        try:
            campaign = _referral_create(request)
            messages.success(request, _("裂变活动“%(name)s”已创建。") % {"name": campaign.name})
            return redirect(f"{request.path}?campaign={campaign.pk}")
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
    campaigns = list(ReferralCampaign.objects.order_by("-pk")[:LISTED])
    chosen = next((c for c in campaigns if str(c.pk) == request.GET.get("campaign")),
                  campaigns[0] if campaigns else None)
    return render(request, "campaigns/referrals.html", {
        "campaigns": campaigns, "chosen": chosen, "can_manage": can_manage,
        "events": ReferralEvent.choices, "reward_kinds": REFERRAL_REWARD_KINDS,
        "coupons": CouponTemplate.objects.filter(is_active=True).order_by("-pk")[:200],
        "stats": referral_stats(campaign=chosen) if chosen else None,
        "leaderboard": referral_leaderboard(campaign=chosen, limit=20) if chosen else []})


TEMPLATE_FORM = ("code", "name", "kind", "percent_off", "gift_name", "validity", "valid_days",
                 "total_stock", "per_member_limit")


@page(COUPONS_READ, whole_tenant=True)
def coupon_list(request: HttpRequest) -> HttpResponse:
    can_manage = request.actor.can(COUPONS_MANAGE)
    if request.method == "POST" and can_manage:
        try:
            data = {key: request.POST[key].strip() for key in TEMPLATE_FORM
                    if request.POST.get(key, "").strip()}
            for key in ("amount", "threshold"):  # entered in yuan
                if request.POST.get(key, "").strip():
                    data[f"{key}_fen"] = round(float(request.POST[key]) * 100)
            coupon_template_save(actor=request.actor,
                                 changes=validated(CouponTemplateInput, data))
            messages.success(request, _("优惠券已创建。"))
            return redirect("web:coupons")
        except (ApplicationError, ValueError) as exc:
            messages.error(request, error_text(exc) if isinstance(exc, ApplicationError)
                           else str(exc))
    templates = list(coupon_template_list()[:LISTED])
    ids = [template.pk for template in templates]
    summary = cached(actor=request.actor, name=f"coupons:{','.join(map(str, ids))}",
                     compute=lambda: coupon_templates_summary(template_ids=ids))
    return render(request, "campaigns/coupons.html", {
        "rows": [{"template": t, "stats": summary.get(t.pk, {})} for t in templates],
        "can_manage": can_manage, "kinds": CouponTemplate.Kind.choices,
        "validities": CouponTemplate.Validity.choices})

"""HTML sections of coupons on a member: the member page's (and the guide's) coupons, with
sending one and sharing a running referral campaign's invite link; the guide's task of
coupons about to expire; and editing a coupon template."""

import datetime as dt
import uuid

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from campaigns.coupons.api.serializers import CouponTemplateInput
from campaigns.coupons.models import Coupon, CouponSource, CouponTemplate
from campaigns.coupons.selectors import coupon_list, coupon_template_stats
from campaigns.coupons.services import coupon_issue, coupon_template_save
from campaigns.referrals.models import ReferralCampaign
from campaigns.referrals.services import referral_invite_get
from campaigns.referrals.services.invites import invite_link
from members.views.operator import visible_member
from scrm.access import COUPONS_MANAGE, COUPONS_READ, MEMBERS_WRITE, Actor
from scrm.api.errors import ApplicationError
from scrm.web import error_text, page, validated

COUPONS_SHOWN = 20
EXPIRING_DAYS = 7
TASKS_SHOWN = 10
OFFERED = 50
# Fields of the template form; money is entered in yuan and stored in fen.
TEMPLATE_FORM = ("name", "description", "percent_off", "gift_name", "validity", "valid_from",
                 "valid_until", "valid_days", "total_stock", "per_member_limit")
YUAN_FIELDS = ("amount", "threshold", "max_discount")
LIST_FIELDS = ("stores", "skus", "categories", "allowed_tiers")


def may_send(actor: Actor) -> bool:
    """Coupon managers send to anyone they see; a guide sends to their own customers."""
    return actor.can(COUPONS_MANAGE) or actor.guide_id is not None


def _section(request: HttpRequest, member, **extra) -> HttpResponse:
    actor, now = request.actor, timezone.now()
    return render(request, "campaigns/_member_coupons.html", {
        "member": member, "can_send": may_send(actor), "nonce": uuid.uuid4().hex,
        "can_share": actor.can(MEMBERS_WRITE),
        "coupons": coupon_list(actor=actor, filters={"member": member.pk}).order_by(
            "-issued_at", "-id")[:COUPONS_SHOWN],
        "templates": CouponTemplate.objects.filter(is_active=True).order_by("-pk")[:OFFERED],
        "referrals": [c for c in ReferralCampaign.objects.filter(
            is_active=True, starts_at__lte=now).order_by("-pk")[:OFFERED] if c.is_open(now)],
        **extra})


@page(COUPONS_READ)
def member_coupons(request: HttpRequest, member_id: int) -> HttpResponse:
    return _section(request, visible_member(request, member_id))


@require_POST
@page(COUPONS_READ)
def member_coupon_send(request: HttpRequest, member_id: int) -> HttpResponse:
    """Send one coupon of the chosen template; the form's nonce makes a resubmitted form
    answer with the coupon it issued the first time."""
    member = visible_member(request, member_id)
    if not may_send(request.actor):
        raise Http404
    template = CouponTemplate.objects.filter(pk=request.POST.get("template") or 0,
                                             is_active=True).first()
    nonce = request.POST.get("nonce", "")[:64]
    try:
        if template is None:
            raise ApplicationError(_("请选择优惠券。"), code="validation_error")
        if not nonce.isalnum():
            raise ApplicationError(_("表单已失效，请刷新后重试。"), code="validation_error")
        coupon = coupon_issue(actor=request.actor, template=template, member=member,
                              key=f"web-send:{nonce}", source=CouponSource.MANUAL,
                              ref=f"staff:{request.actor.membership.pk}")
        return _section(request, member, sent=coupon)
    except ApplicationError as exc:
        return _section(request, member, error=error_text(exc))


@require_POST
@page(MEMBERS_WRITE)
def member_referral_link(request: HttpRequest, member_id: int) -> HttpResponse:
    """The customer's own invite link for a running referral campaign, to send them."""
    member = visible_member(request, member_id)
    campaign = ReferralCampaign.objects.filter(pk=request.POST.get("campaign") or 0).first()
    try:
        if campaign is None:
            raise ApplicationError(_("请选择裂变活动。"), code="validation_error")
        invite, _made = referral_invite_get(actor=request.actor, campaign=campaign,
                                            inviter=member)
        return _section(request, member, link=invite_link(invite), link_campaign=campaign)
    except ApplicationError as exc:
        return _section(request, member, error=error_text(exc))


@page(COUPONS_READ)
def guide_task_coupons(request: HttpRequest) -> HttpResponse:
    """The guide's customers whose unused coupons expire within a week: remind them."""
    actor, now = request.actor, timezone.now()
    coupons = []
    if actor.guide_id is not None:
        coupons = Coupon.objects.filter(
            status=Coupon.Status.ISSUED, valid_until__gt=now,
            valid_until__lte=now + dt.timedelta(days=EXPIRING_DAYS),
            member__guide_id=actor.guide_id).select_related("member", "template").order_by(
            "valid_until")[:TASKS_SHOWN]
    return render(request, "campaigns/_task_coupons.html", {"coupons": coupons})


def _template_changes(post) -> dict:
    data = {key: post[key].strip() for key in TEMPLATE_FORM if post.get(key, "").strip()}
    for key in YUAN_FIELDS:
        if post.get(key, "").strip():
            try:
                data[f"{key}_fen"] = round(float(post[key]) * 100)
            except ValueError as exc:
                raise ApplicationError(_("金额格式不正确。"), code="validation_error",
                                       fields={key: [str(exc)]}) from exc
    for key in LIST_FIELDS:
        data[key] = [code.strip() for code in post.get(key, "").split(",") if code.strip()]
    data["is_active"] = post.get("is_active") == "on"
    return validated(CouponTemplateInput, data, partial=True)


@page(COUPONS_MANAGE, whole_tenant=True)
def coupon_template_edit(request: HttpRequest, template_id: int) -> HttpResponse:
    template = CouponTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise Http404
    if request.method == "POST":
        try:
            coupon_template_save(actor=request.actor, template=template,
                                 changes=_template_changes(request.POST))
            messages.success(request, _("优惠券已保存。"))
            return redirect("web:coupons-edit", template_id=template.pk)
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
            template.refresh_from_db()
    return render(request, "campaigns/coupon_edit.html", {
        "template": template, "stats": coupon_template_stats(template=template),
        "validities": CouponTemplate.Validity.choices,
        "lists": [(key, CouponTemplate._meta.get_field(key).verbose_name,
                   ", ".join(getattr(template, key))) for key in LIST_FIELDS]})

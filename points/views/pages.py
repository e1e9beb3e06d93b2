from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from members.selectors import member_get
from points import selectors
from points.api.mall import FlashSaleCreateInput, MallItemInput
from points.api.serializers import PointsPolicyInput
from points.api.tiers import ProgramInput
from points.models import MallItem, TierProgram
from points.reports import tiers_report
from points.services import mall, policy_get, policy_update
from points.services.tiers import tier_program_save
from scrm import charts
from scrm.access import POINTS_MANAGE, POINTS_READ
from scrm.api.errors import ApplicationError
from scrm.reports import report_value
from scrm.web import error_text, page, validated

LEDGER_SHOWN = 20


@page(POINTS_READ, whole_tenant=True)
def panel_loyalty(request: HttpRequest) -> HttpResponse:
    actor = request.actor
    tiers = report_value(actor=actor, name="tiers")
    liability = report_value(actor=actor, name="liability")
    return render(request, "points/panel_loyalty.html", {
        "tiers": tiers, "liability": liability,
        "tier_chart": charts.bars([row["name"] for row in tiers],
                                  {_("会员数"): [row["members"] for row in tiers]})})


@page(POINTS_READ)
def member_points(request: HttpRequest, member_id: int) -> HttpResponse:
    member = member_get(actor=request.actor, member_id=member_id)
    if member is None:
        raise Http404
    return render(request, "points/_member_points.html", {
        "member": member, "summary": selectors.points_summary(member=member),
        "ledger": selectors.ledger_entries(member=member).order_by("-created_at", "-id")[
            :LEDGER_SHOWN],
        "standings": selectors.member_standings(member_id=member.pk)})


PROGRAM_FORM = ("name", "basis", "window_days", "review_days", "protection_days")
LEVEL_FORM = ("code", "name", "threshold", "points_multiplier", "discount_percent",
              "birthday_points")
LEVEL_ROWS_ADDED = 1


def _levels(post) -> list[dict]:
    """The level rows of the form (``level-<i>-<field>``), blank rows left out."""
    rows, index = [], 0
    while f"level-{index}-code" in post:
        row = {name: post.get(f"level-{index}-{name}", "").strip() for name in LEVEL_FORM}
        if row["code"]:
            rows.append({name: value for name, value in row.items() if value})
        index += 1
    return rows


@page(POINTS_READ)
def tier_list(request: HttpRequest) -> HttpResponse:
    """The tier programmes and their levels; with ``points:manage``, edited here through
    the same service as the API (levels matched by code; a level members hold stays)."""
    can_manage = request.actor.can(POINTS_MANAGE)
    if request.method == "POST" and can_manage:
        program = TierProgram.objects.filter(pk=request.POST.get("program") or 0).first()
        try:
            data = {name: request.POST[name] for name in PROGRAM_FORM
                    if request.POST.get(name, "").strip()}
            values = validated(ProgramInput, {**data, "levels": _levels(request.POST)},
                               partial=program is not None)
            levels = [dict(level) for level in values.pop("levels")]
            tier_program_save(actor=request.actor, program=program, changes=values,
                              levels=levels)
            messages.success(request, _("等级体系已保存。"))
            return redirect("web:tiers")
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
    programs = list(TierProgram.objects.prefetch_related("levels").order_by("brand_id", "pk"))
    for program in programs:
        program.rows = [*program.levels.all(), *([None] * LEVEL_ROWS_ADDED)]
    return render(request, "points/tiers.html", {
        "programs": programs, "can_manage": can_manage, "bases": TierProgram.Basis.choices,
        "blank_rows": range(4), "tiers": {row["code"]: row["members"] for row in tiers_report()}})


POLICY_FORM = ("points_per_yuan", "rounding", "expiry_mode", "expiry_days", "point_value_fen",
               "daily_earn_cap", "signup_points", "birthday_points", "checkin_points",
               "checkin_streak_days", "checkin_streak_bonus", "review_points",
               "members_day_multiplier")


@page(POINTS_READ)
def points_policy(request: HttpRequest) -> HttpResponse:
    can_manage = request.actor.can(POINTS_MANAGE)
    if request.method == "POST":
        if not can_manage:
            raise Http404
        try:
            data = {name: request.POST.get(name) for name in POLICY_FORM
                    if request.POST.get(name) not in (None, "")}
            days = request.POST.get("members_days", "")
            data["members_days"] = [day.strip() for day in days.split(",") if day.strip()]
            policy_update(actor=request.actor,
                          changes=validated(PointsPolicyInput, data, partial=True))
            messages.success(request, _("积分规则已保存。"))
            return redirect("web:points-policy")
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
    policy = policy_get()
    return render(request, "points/policy.html", {
        "policy": policy, "can_manage": can_manage,
        "fields": [(name, policy._meta.get_field(name).verbose_name, getattr(policy, name))
                   for name in POLICY_FORM],
        "rounding": policy._meta.get_field("rounding").choices,
        "expiry_modes": policy._meta.get_field("expiry_mode").choices})


@page(POINTS_READ)
def mall_page(request: HttpRequest) -> HttpResponse:
    can_manage = request.actor.can(POINTS_MANAGE)
    if request.method == "POST":
        if not can_manage:
            raise Http404
        try:
            if request.POST.get("form") == "flash_sale":
                data = validated(FlashSaleCreateInput, {
                    key: value for key, value in request.POST.items()
                    if key in ("item", "name", "starts_at", "ends_at", "points", "stock",
                               "per_member_limit") and value})
                item = MallItem.objects.filter(pk=data.pop("item")).first()
                if item is None:
                    raise ApplicationError(_("未找到商品。"), code="not_found")
                mall.flash_sale_create(actor=request.actor, item=item, **data)
                messages.success(request, _("秒杀活动已创建。"))
            else:
                data = validated(MallItemInput, {
                    key: value for key, value in request.POST.items()
                    if key in ("name", "kind", "points", "stock", "per_member_limit",
                               "description", "cash_fen") and value})
                mall.mall_item_create(actor=request.actor, **data)
                messages.success(request, _("商品已上架。"))
            return redirect("web:mall")
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
    return render(request, "points/mall.html", {
        "items": mall.mall_item_list(on_sale_only=False), "can_manage": can_manage,
        "flash_sales": mall.flash_sale_list(), "kinds": MallItem.Kind.choices})

import json

from django.apps import apps
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from scrm.access import MEMBERS_READ, SEGMENTS_WRITE
from scrm.api.errors import ApplicationError
from scrm.models import Role, StaffMembership, Store
from scrm.web import PAGE_SIZE, error_text, page
from tags.audience import fields as F
from tags.models import Segment, Tag
from tags.services import rules, segments

FIELD_LABELS = {
    "gender": gettext_lazy("性别"), "province": gettext_lazy("省份"), "city": gettext_lazy("城市"),
    "source_channel": gettext_lazy("来源渠道"), "birth_month": gettext_lazy("生日月份"),
    "marketing_consent": gettext_lazy("同意营销"), "total_spent_fen": gettext_lazy("累计消费(分)"),
    "order_count": gettext_lazy("订单数"), "refunded_fen": gettext_lazy("累计退款(分)"),
    "last_order_at": gettext_lazy("末单时间"), "first_order_at": gettext_lazy("首单时间"),
    "created_at": gettext_lazy("入会时间"), "birthday": gettext_lazy("生日"),
    "points_balance": gettext_lazy("积分余额"), "age": gettext_lazy("年龄"),
    "last_order_days": gettext_lazy("距末单天数"), "first_order_days": gettext_lazy("距首单天数"),
    "member_days": gettext_lazy("入会天数"),
}
LEAF_LABELS = {
    "tag": gettext_lazy("标签"), "tier": gettext_lazy("会员等级"), "store": gettext_lazy("门店"),
    "guide": gettext_lazy("导购"), "field": gettext_lazy("字段比较"),
    "rfm": gettext_lazy("RFM 分群"), "lifecycle": gettext_lazy("生命周期"),
    "oa_follower": gettext_lazy("公众号粉丝"), "wecom_customer": gettext_lazy("企业微信客户"),
    "group_member": gettext_lazy("客户群成员"), "json": gettext_lazy("JSON 条件"),
}
OPS = [("eq", "="), ("ne", "≠"), ("gt", ">"), ("gte", "≥"), ("lt", "<"), ("lte", "≤"),
       ("between", gettext_lazy("介于")), ("in", gettext_lazy("属于")),
       ("not_in", gettext_lazy("不属于"))]
SCALAR_LEAVES = ("store", "guide", "tier", "rfm", "lifecycle", "oa_follower", "wecom_customer",
                 "group_member")


def _field_choices() -> list[dict]:
    choices = []
    for name, field in F.FIELDS.items():
        kind = "date" if field.temporal else field.kind
        choices.append({"name": name, "type": kind, "label": FIELD_LABELS.get(name, name)})
    choices += [{"name": name, "type": "number", "label": FIELD_LABELS.get(name, name)}
                for name in F.DERIVED]
    return choices


def _text(value) -> str:
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def builder_node(raw) -> dict:
    """An audience expression as the builder's tree (what the template draws)."""
    if isinstance(raw, dict) and len(raw) == 1:
        (key, value), = raw.items()
        if key in ("all", "any") and isinstance(value, list):
            return {"kind": "group", "mode": key, "children": [builder_node(v) for v in value]}
        if key == "not":
            inner = value.get("any") if isinstance(value, dict) and len(value) == 1 else None
            children = inner if isinstance(inner, list) else [value]
            return {"kind": "group", "mode": "not", "children": [builder_node(v) for v in children]}
        if key == "tag" and isinstance(value, int):
            return {"kind": "tag", "value": value}
        if key in SCALAR_LEAVES and isinstance(value, str | int | bool):
            return {"kind": key, "value": _text(value)}
    if isinstance(raw, dict) and set(raw) == {"field", "op", "value"}:
        return {"kind": "field", "field": raw["field"], "op": raw["op"],
                "value": _text(raw["value"])}
    return {"kind": "json", "value": json.dumps(raw, ensure_ascii=False)}


def builder_context(expression, *, extra_kinds: tuple[str, ...] = ()) -> dict:
    """Everything the segment (or rule) builder draws: the tree and the leaf choices."""
    kinds = ["tag", "store", "guide", "field"]
    kinds += [name for name in ("tier", "rfm", "lifecycle", "oa_follower", "wecom_customer",
                                "group_member") if name in F.LEAF_RESOLVERS]
    kinds += [*extra_kinds, "json"]
    tiers = []
    if "tier" in F.LEAF_RESOLVERS and apps.is_installed("points"):
        tiers = list(apps.get_model("points", "TierLevel").objects.order_by(
            "program_id", "rank").values_list("code", "name"))
    root = builder_node(expression) if expression else {"kind": "group", "mode": "all",
                                                        "children": []}
    if root["kind"] != "group":
        root = {"kind": "group", "mode": "all", "children": [root]}
    return {
        "root": root, "expression_json": json.dumps(expression, ensure_ascii=False)
        if expression else "",
        "leaf_kinds": [(kind, LEAF_LABELS.get(kind, kind)) for kind in kinds],
        "leaf_blanks": [{"kind": kind, "value": ""} for kind in kinds],
        "group_blank": {"kind": "group", "mode": "all", "children": []},
        "sb_tags": Tag.objects.exclude(target=Tag.Target.PRODUCT).select_related("group")
        .order_by("group__sort_order", "group_id", "name")[:1000],
        "sb_stores": Store.objects.order_by("code"), "sb_tiers": tiers,
        "sb_guides": StaffMembership.objects.filter(role=Role.GUIDE, is_active=True,
                                                    tenant_id=_tenant_id()).order_by(
            "display_name")[:500],
        "sb_fields": _field_choices(), "sb_ops": OPS,
    }


def _tenant_id() -> int:
    from scrm.tenancy import require_tenant_id

    return require_tenant_id()


def _expression(request: HttpRequest):
    text = request.POST.get("expression", "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ApplicationError(_("人群表达式不是合法的 JSON。"), code="invalid_expression") from exc


@require_POST
@page(MEMBERS_READ)
def segment_count(request: HttpRequest) -> HttpResponse:
    """The live count under the builder: how many members (that the actor may see) match."""
    context: dict = {}
    try:
        expression = _expression(request)
        if expression is None:
            context["empty"] = True
        else:
            member_nos = segments.expression_members(expression)
            context["count"] = len(segments.visible_members(actor=request.actor,
                                                            member_nos=member_nos))
    except ApplicationError as exc:
        context["error"] = error_text(exc)
    return render(request, "tags/_count.html", context)


@require_POST
@page(MEMBERS_READ)
def rule_preview(request: HttpRequest) -> HttpResponse:
    """How many members a rule tag's rule would match, before saving."""
    context: dict = {}
    try:
        rule = _expression(request)
        if rule is None:
            context["empty"] = True
        else:
            context["count"] = rules.rule_preview(rule)
    except ApplicationError as exc:
        context["error"] = error_text(exc)
    return render(request, "tags/_count.html", context)


@page(MEMBERS_READ)
def segment_list(request: HttpRequest) -> HttpResponse:
    return render(request, "tags/segments.html", {
        "segments": Segment.objects.order_by("-updated_at")[:200],
        "can_write": request.actor.can(SEGMENTS_WRITE)})


def _segment(segment_id: int) -> Segment:
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        raise Http404
    return segment


@page(MEMBERS_READ)
def segment_edit(request: HttpRequest, segment_id: int | None = None) -> HttpResponse:
    segment = _segment(segment_id) if segment_id else None
    can_write = request.actor.can(SEGMENTS_WRITE)
    error, expression = "", segment.expression if segment else None
    if request.method == "POST":
        if not can_write:
            raise Http404
        try:
            expression = _expression(request)
            if expression is None:
                raise ApplicationError(_("请至少添加一个条件。"), code="invalid_expression")
            segment = segments.segment_save(
                actor=request.actor, segment=segment, name=request.POST.get("name", "").strip()
                or _("未命名人群"), description=request.POST.get("description", "")[:255],
                expression=expression)
            segments.segment_count(segment=segment)
            messages.success(request, _("人群已保存。"))
            return redirect("web:segments-edit", segment_id=segment.pk)
        except ApplicationError as exc:
            error = error_text(exc)
    return render(request, "tags/segment_edit.html", {
        "segment": segment, "error": error, "can_write": can_write,
        "name": request.POST.get("name", segment.name if segment else ""),
        "count_url": "web:segments-count", **builder_context(expression)})


@page(MEMBERS_READ)
def segment_members(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = _segment(segment_id)
    member_nos = segments.visible_members(
        actor=request.actor, member_nos=segments.expression_members(segment.expression))
    after = request.GET.get("after", "")
    found, next_after = segments.segment_page(
        member_nos=member_nos, after=int(after) if after.isdigit() else None, size=PAGE_SIZE,
        descending=True)
    return render(request, "tags/member_list.html", {
        "members": found, "count": len(member_nos), "next_after": next_after, "query": "",
        "segment": segment, "params": {}, "identity_kinds": [], "stores": [], "guides": [],
        "tags": []})

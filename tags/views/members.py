import datetime as dt

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from members.identities import normalize_identity
from members.models import IdentityKind, Member
from members.selectors import member_get, member_list
from scrm.access import MEMBERS_READ, MEMBERS_WRITE
from scrm.api.errors import ApplicationError
from scrm.models import Role, StaffMembership, Store
from scrm.web import PAGE_SIZE, error_text, page
from tags.models import MemberTag, Tag
from tags.services import segments, tagging

QUICK_TAGS_SHOWN = 24


def _day_start(text: str) -> dt.datetime | None:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())


def filters_expression(params) -> dict | None:
    """The list's filters (store, guide, tags, joined between) as an audience expression."""
    leaves: list[dict] = []
    if params.get("store"):
        leaves.append({"store": params["store"]})
    if params.get("guide", "").isdigit():
        leaves.append({"guide": int(params["guide"])})
    leaves += [{"tag": int(tag)} for tag in params.getlist("tag") if tag.isdigit()]
    after, before = _day_start(params.get("created_after", "")), _day_start(
        params.get("created_before", ""))
    if after:
        leaves.append({"field": "created_at", "op": "gte", "value": after.isoformat()})
    if before:
        end = before + dt.timedelta(days=1) - dt.timedelta(seconds=1)
        leaves.append({"field": "created_at", "op": "lte", "value": end.isoformat()})
    return {"all": leaves} if leaves else None


def _cursor(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _list(request: HttpRequest) -> dict:
    """One page of members: by identity (exact), by the filters through the audience index
    (with its count), or all, newest first."""
    actor, params = request.actor, request.GET
    after = _cursor(params.get("after", ""))
    value = params.get("identity_value", "").strip()
    if value:
        kind = params.get("identity_kind") or IdentityKind.PHONE
        normalize_identity(kind, value, params.get("identity_app_id", ""))  # a clear error
        found = list(member_list(actor=actor, filters={
            "identity_kind": kind, "identity_value": value,
            "identity_app_id": params.get("identity_app_id", "")})[:PAGE_SIZE])
        return {"members": found, "count": len(found), "next_after": None}
    expression = filters_expression(params)
    if expression is None:
        queryset = member_list(actor=actor).select_related("guide").order_by("-id")
        if after:
            queryset = queryset.filter(id__lt=after)
        found = list(queryset[:PAGE_SIZE + 1])
        more = len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE]
        return {"members": found, "count": None,
                "next_after": found[-1].pk if more and found else None}
    member_nos = segments.visible_members(actor=actor,
                                          member_nos=segments.expression_members(expression))
    found, next_after = segments.segment_page(member_nos=member_nos, after=after,
                                              size=PAGE_SIZE, descending=True)
    return {"members": found, "count": len(member_nos), "next_after": next_after,
            "by_number": True}


def _options(choices, chosen) -> str:
    """``<option>`` elements for (value, label) pairs, those in ``chosen`` selected: built in
    Python, as a template loop over hundreds of stores, guides and tags costs more than the
    list's queries."""
    return format_html_join("", "<option value=\"{}\"{}>{}</option>", (
        (value, mark_safe(" selected") if str(value) in chosen else "", label)  # noqa: S308
        for value, label in choices))


def _filter_options(request: HttpRequest) -> dict:
    params = request.GET
    stores = Store.objects.order_by("code").values_list("code", "name")
    guides = StaffMembership.objects.filter(
        tenant_id=request.actor.tenant.pk, role=Role.GUIDE, is_active=True
    ).order_by("display_name")[:500]
    tags = Tag.objects.exclude(target=Tag.Target.PRODUCT).select_related("group").order_by(
        "group__sort_order", "group_id", "name")[:500]
    return {
        "store_options": _options(stores, {params.get("store")}),
        "guide_options": _options(((guide.pk, str(guide)) for guide in guides),
                                  {params.get("guide")}),
        "tag_options": _options(((tag.pk, f"{tag.group.name if tag.group else ''} / {tag.name}")
                                 for tag in tags), set(params.getlist("tag"))),
    }


@page(MEMBERS_READ)
def member_list_page(request: HttpRequest) -> HttpResponse:
    context = {"identity_kinds": IdentityKind.choices, "params": request.GET,
               **_filter_options(request)}
    try:
        context.update(_list(request))
    except ApplicationError as exc:
        context.update({"members": [], "error": error_text(exc)})
    query = request.GET.copy()
    query.pop("after", None)
    context["query"] = query.urlencode()
    return render(request, "tags/member_list.html", context)


def _member(request: HttpRequest, member_id: int) -> Member:
    member = member_get(actor=request.actor, member_id=member_id)
    if member is None:
        raise Http404
    return member


def _tags_context(request: HttpRequest, member: Member, *, mobile: bool) -> dict:
    rows = list(MemberTag.objects.filter(member=member).select_related("tag__group")
                .order_by("tag__group__sort_order", "id"))
    taken = {row.tag_id for row in rows}
    manual = Tag.objects.filter(kind__in=tagging.MANUAL_KINDS).exclude(
        target=Tag.Target.PRODUCT).select_related("group").order_by(
        "group__sort_order", "group_id", "name")
    return {"member": member, "rows": rows, "taken": taken, "mobile": mobile,
            "can_write": request.actor.can(MEMBERS_WRITE),
            "choices": [tag for tag in manual[:200] if tag.pk not in taken],
            "quick": list(manual[:QUICK_TAGS_SHOWN])}


@page(MEMBERS_READ)
def member_tags(request: HttpRequest, member_id: int) -> HttpResponse:
    return render(request, "tags/_member_tags.html",
                  _tags_context(request, _member(request, member_id), mobile=False))


@page(MEMBERS_READ)
def guide_member_tags(request: HttpRequest, member_id: int) -> HttpResponse:
    return render(request, "tags/_member_tags.html",
                  _tags_context(request, _member(request, member_id), mobile=True))


@require_POST
@page(MEMBERS_WRITE)
def member_tag_toggle(request: HttpRequest, member_id: int) -> HttpResponse:
    """Add or remove one tag (``action``: add | remove) and answer the tags section."""
    member = _member(request, member_id)
    tag_id = request.POST.get("tag", "")
    tag = Tag.objects.filter(pk=int(tag_id)).first() if tag_id.isdigit() else None
    if tag is None:
        raise Http404
    error = ""
    try:
        if request.POST.get("action") == "remove":
            tagging.member_tag_remove(actor=request.actor, member=member, tag=tag)
        else:
            tagging.member_tag_add(actor=request.actor, member=member, tag=tag)
    except ApplicationError as exc:
        error = error_text(exc)
    context = _tags_context(request, member, mobile=request.POST.get("mobile") == "1")
    return render(request, "tags/_member_tags.html", {**context, "error": error})

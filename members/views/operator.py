import json

from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from members import selectors
from members.models import ConsentPurpose, ConsentSource, Member
from members.services.consent import consent_record
from members.services.members import member_phone_reveal
from members.services.notes import member_note_add
from members.services.privacy import member_erase, member_personal_data
from scrm.access import MEMBERS_READ, MEMBERS_WRITE, PII_READ, PRIVACY_MANAGE
from scrm.api.errors import ApplicationError
from scrm.web import client_ip, error_text, page, resolvable

TIMELINE_SHOWN = 30
ORDERS_SHOWN = 20
NOTES_SHOWN = 50
CONSENTS_SHOWN = 20
# Sections of the member page served by the apps that own them, loaded with hx-get.
SECTIONS = ["member-tags", "member-points", "member-rfm", "member-coupons", "member-wechat"]


def visible_member(request: HttpRequest, member_id: int) -> Member:
    """The member if the actor may see them; 404 otherwise (not theirs, or not there)."""
    member = selectors.member_get(actor=request.actor, member_id=member_id)
    if member is None:
        raise Http404
    return member


def member_context(request: HttpRequest, member: Member) -> dict:
    actor = request.actor
    return {
        "member": member, "stats": member.stats_list[0] if member.stats_list else None,
        "identities": member.identity_list,
        "notes": selectors.member_notes(member=member)[:NOTES_SHOWN],
        "can_write": actor.can(MEMBERS_WRITE), "can_reveal": actor.can(PII_READ),
        "can_privacy": actor.can(PRIVACY_MANAGE),
        "consents": selectors.member_consents(member=member)[:CONSENTS_SHOWN],
        "purposes": ConsentPurpose.choices,
    }


@page(MEMBERS_READ)
def member_detail(request: HttpRequest, member_id: int) -> HttpResponse:
    member = visible_member(request, member_id)
    context = member_context(request, member)
    context.update({
        "orders": member.orders.select_related("store").order_by("-paid_at")[:ORDERS_SHOWN],
        "timeline": selectors.member_timeline(member=member)[:TIMELINE_SHOWN],
        "sections": resolvable(SECTIONS, member.pk),
    })
    return render(request, "members/detail.html", context)


@require_POST
@page(PII_READ)
def member_phone(request: HttpRequest, member_id: int) -> HttpResponse:
    """The full number, in place of the masked one; every view is audited."""
    member = visible_member(request, member_id)
    phone = member_phone_reveal(actor=request.actor, member=member, ip=client_ip(request))
    return render(request, "members/_phone.html", {"phone": phone or _("（无手机号）")})


@require_POST
@page(MEMBERS_WRITE)
def member_note(request: HttpRequest, member_id: int) -> HttpResponse:
    member = visible_member(request, member_id)
    error = ""
    try:
        member_note_add(actor=request.actor, member=member, text=request.POST.get("text", ""))
    except ApplicationError as exc:
        error = error_text(exc)
    if request.htmx:
        return render(request, "members/_notes.html", {
            **member_context(request, member), "note_error": error})
    if error:
        messages.error(request, error)
    target = "web:guide-customer" if request.POST.get("from") == "guide" else "web:members-detail"
    return redirect(target, member_id=member.pk)


@require_POST
@page(MEMBERS_WRITE)
def member_consent(request: HttpRequest, member_id: int) -> HttpResponse:
    """Record consent given or withdrawn in the dashboard (e.g. on the phone, at the till)."""
    member = visible_member(request, member_id)
    purpose = request.POST.get("purpose", "")
    try:
        if purpose not in ConsentPurpose.values:
            raise ApplicationError(_("请选择授权用途。"), code="validation_error")
        consent_record(actor=request.actor, member=member, purpose=purpose,
                       granted=request.POST.get("granted") == "1",
                       source=ConsentSource.DASHBOARD)
        messages.success(request, _("已记录授权。"))
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    return redirect("web:members-detail", member_id=member.pk)


@page(PRIVACY_MANAGE)
def member_personal_data_download(request: HttpRequest, member_id: int) -> HttpResponse:
    """Everything held about the member as a JSON file (the person's access request)."""
    member = visible_member(request, member_id)
    data = member_personal_data(actor=request.actor, member=member, ip=client_ip(request))
    response = HttpResponse(json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False,
                                       indent=2), content_type="application/json")
    response["Content-Disposition"] = (
        f'attachment; filename="member-{member.pk}-personal-data.json"')
    return response


@require_POST
@page(PRIVACY_MANAGE)
def member_erase_page(request: HttpRequest, member_id: int) -> HttpResponse:
    member = visible_member(request, member_id)
    if request.POST.get("confirm") != "ERASE":
        messages.error(request, _("请输入 ERASE 以确认删除个人信息。"))
        return redirect("web:members-detail", member_id=member.pk)
    member_erase(actor=request.actor, member=member, ip=client_ip(request))
    messages.success(request, _("已删除该会员的个人信息；订单、积分与优惠券记录已匿名保留。"))
    return redirect("web:members-detail", member_id=member.pk)

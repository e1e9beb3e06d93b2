"""Owners' settings (staff and roles, API keys) and the tenant's background jobs."""

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scrm import access, services
from scrm.api.errors import ApplicationError
from scrm.models import ApiKey, Job, Role, StaffMembership, Store
from scrm.web import error_text, page

JOBS_SHOWN = 50


@page(access.MEMBERS_READ)
def job_list(request: HttpRequest) -> HttpResponse:
    """The tenant's recent jobs; running ones refresh themselves until they finish, so work
    can be left and come back to."""
    jobs = Job.objects.order_by("-created_at")[:JOBS_SHOWN]
    return render(request, "scrm/jobs.html", {"jobs": jobs})


@page(access.MEMBERS_READ)
def job_row(request: HttpRequest, job_id: int) -> HttpResponse:
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        raise Http404
    return render(request, "scrm/_job_row.html", {"job": job})


def _store(value: str) -> Store | None:
    return Store.objects.filter(pk=int(value)).first() if value.isdigit() else None


@page(access.STAFF_MANAGE)
def staff_list(request: HttpRequest) -> HttpResponse:
    tenant = request.actor.tenant
    if request.method == "POST":
        role = request.POST.get("role", "")
        try:
            if role not in Role.values:
                raise ApplicationError(_("请选择角色。"), code="validation_error")
            store = _store(request.POST.get("store", ""))
            if role == Role.STORE_MANAGER and store is None:
                raise ApplicationError(_("店长必须指定门店。"), code="store_required")
            email = request.POST.get("email", "").strip().lower()
            if "@" not in email:
                raise ApplicationError(_("请填写登录邮箱。"), code="validation_error")
            membership, password = services.staff_add(
                tenant=tenant, email=email, role=role, store=store,
                display_name=request.POST.get("display_name", "").strip()[:64],
                actor=request.actor)
            if password:
                messages.warning(request, _(
                    "已为 %(email)s 创建登录账号，初始密码（只显示这一次）：%(password)s")
                    % {"email": email, "password": password})
            else:
                messages.success(request, _("已添加 %(name)s。") % {"name": membership})
            return redirect("web:staff")
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
    staff = StaffMembership.objects.filter(tenant=tenant).select_related("user", "store"
                                                                          ).order_by("role", "pk")
    return render(request, "scrm/staff.html", {"staff": staff, "roles": Role.choices,
                                               "stores": Store.objects.order_by("code")})


@page(access.STAFF_MANAGE)
def staff_edit(request: HttpRequest, staff_id: int) -> HttpResponse:
    tenant = request.actor.tenant
    membership = StaffMembership.objects.filter(tenant=tenant, pk=staff_id).first()
    if membership is None:
        raise Http404
    if request.method == "POST":
        try:
            services.staff_update(
                tenant=tenant, membership=membership, actor=request.actor,
                role=request.POST.get("role"),
                store=_store(request.POST.get("store", "")),
                display_name=request.POST.get("display_name", "")[:64],
                wecom_userid=request.POST.get("wecom_userid", "")[:64],
                is_active=request.POST.get("is_active") == "on")
            messages.success(request, _("已保存。"))
            return redirect("web:staff")
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
            membership.refresh_from_db()
    return render(request, "scrm/staff_edit.html", {
        "membership": membership, "roles": Role.choices, "stores": Store.objects.order_by("code")})


@page(access.STAFF_MANAGE)
def api_key_list(request: HttpRequest) -> HttpResponse:
    tenant = request.actor.tenant
    secret = ""
    if request.method == "POST":
        try:
            scopes = [scope for scope in request.POST.getlist("scopes")
                      if scope in access.GRANTABLE_SCOPES]
            _key, secret = services.api_key_create(
                tenant=tenant, name=request.POST.get("name", "").strip()[:128] or _("未命名"),
                scopes=scopes or None, actor=request.actor)
        except ValueError as exc:
            messages.error(request, str(exc))
    return render(request, "scrm/api_keys.html", {
        "keys": ApiKey.objects.filter(tenant=tenant).order_by("-created_at"),
        "scopes": access.GRANTABLE_SCOPES, "secret": secret})


@require_POST
@page(access.STAFF_MANAGE)
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = ApiKey.objects.filter(tenant=request.actor.tenant, pk=key_id).first()
    if api_key is None:
        raise Http404
    services.api_key_revoke(api_key=api_key, actor=request.actor)
    messages.success(request, _("密钥 %(prefix)s 已吊销。") % {"prefix": api_key.prefix})
    return redirect("web:api-keys")


AUDIT_SHOWN = 50


@page(access.AUDIT_READ)
def audit_log(request: HttpRequest) -> HttpResponse:
    """The audit log with the API's filters; "older" pages by the last id shown."""
    from scrm.api.audit import AuditFilterInput
    from scrm.audit import audit_list

    raw = {key: value for key, value in request.GET.items() if value and key != "before"}
    filters = AuditFilterInput(data=raw)
    error = "" if filters.is_valid() else _("筛选条件有误，已忽略。")
    entries = audit_list(filters=filters.validated_data if not error else {})
    before = request.GET.get("before", "")
    if before.isdigit():
        entries = entries.filter(pk__lt=int(before))
    entries = list(entries[:AUDIT_SHOWN + 1])
    older = entries[AUDIT_SHOWN - 1].pk if len(entries) > AUDIT_SHOWN else None
    query = urlencode(raw)
    return render(request, "scrm/audit_log.html", {
        "entries": entries[:AUDIT_SHOWN], "filters": raw, "error": error, "older": older,
        "query": query})

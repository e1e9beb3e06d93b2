"""Dashboard pages for imports (upload → mapping → dry-run report → run with progress) and
exports (list with download links), and the signed download link itself (no session)."""

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from integrations.transfers.api import report_csv_response
from integrations.transfers.columns import FIELDS
from integrations.transfers.models import ImportFile, ImportIssue, ImportKind
from integrations.transfers.services import exports, imports
from scrm.access import EXPORTS_CREATE, IMPORTS_WRITE, SEGMENTS_WRITE
from scrm.api.errors import ApplicationError
from scrm.models import Job
from scrm.tenancy import tenant_scope
from scrm.web import error_text, page
from tags.models import Segment

LIST_SIZE = 50
REPORT_SHOWN = 200


def _upload(upload_id: int) -> ImportFile:
    upload = ImportFile.objects.filter(pk=upload_id).select_related(
        "check_job", "run_job").first()
    if upload is None:
        raise Http404
    return upload


@page(IMPORTS_WRITE, whole_tenant=True)
def import_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            upload = imports.import_upload(actor=request.actor,
                                           kind=request.POST.get("kind", ""),
                                           upload=request.FILES["file"])
        except KeyError:
            messages.error(request, _("请选择要上传的文件。"))
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
        else:
            return redirect("web:imports-detail", upload.pk)
    uploads = ImportFile.objects.select_related("run_job").order_by("-created_at")[:LIST_SIZE]
    return render(request, "transfers/imports.html", {
        "uploads": uploads, "kinds": ImportKind.choices})


def _mapping_from(request: HttpRequest, upload: ImportFile) -> list[dict]:
    return [{"field": request.POST.get(f"field_{index}", ""),
             "app_id": request.POST.get(f"app_{index}", "")}
            for index in range(len(upload.headers))]


@page(IMPORTS_WRITE, whole_tenant=True)
def import_detail(request: HttpRequest, upload_id: int) -> HttpResponse:
    upload = _upload(upload_id)
    if request.method == "POST":
        try:
            _act(request, upload)
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
        return redirect("web:imports-detail", upload.pk)
    phase = ImportIssue.Phase.RUN if upload.run_job_id else ImportIssue.Phase.CHECK
    columns = [{"index": index, "header": header, **entry}
               for index, (header, entry) in enumerate(zip(upload.headers, upload.mapping,
                                                           strict=True))]
    return render(request, "transfers/import_detail.html", {
        "upload": upload, "columns": columns, "fields": FIELDS[upload.kind], "phase": phase,
        "issues": upload.issues.filter(phase=phase).order_by("row", "id")[:REPORT_SHOWN],
        "issue_count": upload.issues.filter(phase=phase).count(),
        "editable": upload.run_job_id is None and upload.status != upload.Status.CHECKING})


def _act(request: HttpRequest, upload: ImportFile) -> None:
    action = request.POST.get("action", "")
    if action == "mapping":
        channel = request.POST.get("channel", "")
        imports.import_mapping_set(actor=request.actor, upload=upload,
                                   mapping=_mapping_from(request, upload),
                                   options={"channel": channel} if channel else {})
        messages.success(request, _("列映射已保存。"))
    elif action == "check":
        imports.import_check_start(actor=request.actor, upload=upload)
        messages.success(request, _("试运行已开始，不会写入任何数据。"))
    elif action == "run":
        imports.import_run_start(actor=request.actor, upload=upload)
        messages.success(request, _("导入已开始，可以离开本页，稍后回来查看进度。"))


@page(IMPORTS_WRITE, whole_tenant=True)
def import_report(request: HttpRequest, upload_id: int) -> HttpResponse:
    phase = request.GET.get("phase", ImportIssue.Phase.CHECK)
    if phase not in ImportIssue.Phase.values:
        raise Http404
    return report_csv_response(_upload(upload_id), phase)


@page(EXPORTS_CREATE)
def export_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            exports.export_create(actor=request.actor, kind=request.POST.get("kind", ""))
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, _("导出任务已创建，完成后可在此下载。"))
        return redirect("web:exports")
    jobs = list(Job.objects.filter(kind__in=exports.EXPORT_JOB_KINDS)
                .order_by("-created_at")[:LIST_SIZE])
    for job in jobs:
        job.link_token = exports.export_token(job) if job.status == Job.Status.SUCCEEDED else ""
    return render(request, "transfers/exports.html", {
        "jobs": jobs, "kinds": [kind for kind in exports.KINDS if kind != "segment"
                                and request.actor.can(exports.KINDS[kind])]})


@require_POST
@page(SEGMENTS_WRITE)
def segment_export(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        raise Http404
    exports.export_create(actor=request.actor, kind="segment", segment=segment)
    messages.success(request, _("导出任务已创建，完成后可在“导出”页面下载。"))
    return redirect("web:exports" if request.actor.can(EXPORTS_CREATE) else "web:jobs")


def export_download(request: HttpRequest, token: str) -> HttpResponse:
    """The signed link: no session needed; 403 when forged, 410 once expired."""
    try:
        data = exports.export_token_read(token)
    except exports.LinkExpired:
        return HttpResponse(_("下载链接已过期，请重新生成。"), status=410,
                            content_type="text/plain; charset=utf-8")
    except exports.LinkInvalid:
        return HttpResponse(_("下载链接无效。"), status=403,
                            content_type="text/plain; charset=utf-8")
    with tenant_scope(data["tenant"]):
        job = Job.objects.filter(pk=data["job"], kind__in=exports.EXPORT_JOB_KINDS).first()
        handle = exports.export_file(job) if job is not None else None
        if handle is None:
            return HttpResponse(_("导出文件已不存在，请重新导出。"), status=410,
                                content_type="text/plain; charset=utf-8")
        return FileResponse(handle, as_attachment=True, content_type="text/csv",
                            filename=exports.export_filename(job))

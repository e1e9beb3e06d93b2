"""Imports (upload, mapping, dry run, report, start, status) and exports (create, status,
signed link) over the API."""

import csv
from datetime import timedelta

from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import parsers, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from integrations.transfers.columns import FIELDS
from integrations.transfers.models import ImportFile, ImportIssue, ImportKind
from integrations.transfers.services import exports, imports
from scrm.access import EXPORTS_CREATE, IMPORTS_WRITE, SEGMENTS_WRITE
from scrm.api.idempotency import idempotent
from scrm.api.serializers import DateTimeField, JobOutput
from scrm.api.views import TenantApiView
from scrm.models import Job
from tags.models import Segment

REPORT_LIMIT = 500


def _upload(upload_id: int) -> ImportFile:
    upload = ImportFile.objects.filter(pk=upload_id).select_related(
        "check_job", "run_job").first()
    if upload is None:
        raise NotFound(_("未找到。"))
    return upload


def _export_job(job_id: int) -> Job:
    job = Job.objects.filter(pk=job_id, kind__in=exports.EXPORT_JOB_KINDS).first()
    if job is None:
        raise NotFound(_("未找到。"))
    return job


class MappingEntry(serializers.Serializer):
    field = serializers.CharField(allow_blank=True, help_text=_("字段名；留空表示忽略该列"))
    app_id = serializers.CharField(allow_blank=True, required=False, default="",
                                   help_text=_("openid 的公众号 appid，或合作方系统名"))


class FieldOutput(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    needs_app = serializers.BooleanField()


class ImportOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    file_name = serializers.CharField()
    file_format = serializers.CharField()
    encoding = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    status = serializers.CharField()
    headers = serializers.ListField(child=serializers.CharField())
    mapping = MappingEntry(many=True)
    options = serializers.JSONField()
    available_fields = serializers.SerializerMethodField()
    check_job = JobOutput(allow_null=True)
    run_job = JobOutput(allow_null=True)
    created_at = DateTimeField()

    @extend_schema_field(FieldOutput(many=True))
    def get_available_fields(self, upload: ImportFile) -> list[dict]:
        return [{"name": f.name, "label": str(f.label), "needs_app": f.needs_app}
                for f in FIELDS[upload.kind]]


class ImportIssueOutput(serializers.Serializer):
    row = serializers.IntegerField()
    field = serializers.CharField()
    code = serializers.CharField()
    reason = serializers.CharField()


class ImportUploadApi(TenantApiView):
    """Upload a CSV (UTF-8 or GBK) or .xlsx file; answers with the guessed mapping."""

    required_scopes = {"*": IMPORTS_WRITE}
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    class ImportUploadInput(serializers.Serializer):
        kind = serializers.ChoiceField(choices=ImportKind.choices)
        file = serializers.FileField()

    @extend_schema(request={"multipart/form-data": ImportUploadInput},
                   responses={201: ImportOutput}, operation_id="imports_upload")
    def post(self, request):
        data = self.ImportUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = imports.import_upload(actor=self.actor, kind=data.validated_data["kind"],
                                       upload=data.validated_data["file"])
        return Response(ImportOutput(upload).data, status=status.HTTP_201_CREATED)


class ImportDetailApi(TenantApiView):
    required_scopes = {"*": IMPORTS_WRITE}

    @extend_schema(responses=ImportOutput, operation_id="imports_retrieve")
    def get(self, request, upload_id: int):
        return Response(ImportOutput(_upload(upload_id)).data)


class ImportMappingApi(TenantApiView):
    required_scopes = {"*": IMPORTS_WRITE}

    class ImportMappingInput(serializers.Serializer):
        mapping = MappingEntry(many=True)
        options = serializers.DictField(required=False,
                                        help_text=_("如 {\"channel\": \"store\"}：订单的默认渠道"))

    @extend_schema(request=ImportMappingInput, responses=ImportOutput,
                   operation_id="imports_mapping")
    def put(self, request, upload_id: int):
        data = self.ImportMappingInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = imports.import_mapping_set(
            actor=self.actor, upload=_upload(upload_id), mapping=data.validated_data["mapping"],
            options=data.validated_data.get("options"))
        return Response(ImportOutput(_upload(upload.pk)).data)


class ImportDryRunApi(TenantApiView):
    """Check every row without writing anything; the report lists what would be skipped."""

    required_scopes = {"*": IMPORTS_WRITE}

    @extend_schema(request=None, responses={202: JobOutput}, operation_id="imports_dry_run")
    @idempotent
    def post(self, request, upload_id: int):
        job = imports.import_check_start(actor=self.actor, upload=_upload(upload_id))
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ImportStartApi(TenantApiView):
    """Run the import in the background (or resume one that stopped)."""

    required_scopes = {"*": IMPORTS_WRITE}

    @extend_schema(request=None, responses={202: JobOutput}, operation_id="imports_start")
    @idempotent
    def post(self, request, upload_id: int):
        job = imports.import_run_start(actor=self.actor, upload=_upload(upload_id))
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


PHASE = OpenApiParameter("phase", str, enum=ImportIssue.Phase.values,
                         description=_("check：试运行；run：导入（默认 check）"))


def _phase(request) -> str:
    phase = request.query_params.get("phase", ImportIssue.Phase.CHECK)
    if phase not in ImportIssue.Phase.values:
        raise NotFound(_("未找到。"))
    return phase


class ImportReportApi(TenantApiView):
    """The rows that were (or would be) skipped, with the field and the reason."""

    required_scopes = {"*": IMPORTS_WRITE}

    @extend_schema(parameters=[PHASE, OpenApiParameter("after_row", int)],
                   responses=ImportIssueOutput(many=True), operation_id="imports_report")
    def get(self, request, upload_id: int):
        upload = _upload(upload_id)
        after = request.query_params.get("after_row", "")
        issues = upload.issues.filter(phase=_phase(request)).order_by("row", "id")
        if after.isdigit():
            issues = issues.filter(row__gt=int(after))
        return Response(ImportIssueOutput(issues[:REPORT_LIMIT], many=True).data)


class _Echo:
    def write(self, value: str) -> str:
        return value


def report_csv_response(upload: ImportFile, phase: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    lines = (writer.writerow(row) for row in imports.report_rows(upload=upload, phase=phase))
    response = StreamingHttpResponse(_with_bom(lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{upload.pk}-{phase}.csv"'
    return response


def _with_bom(lines):
    yield "\ufeff"  # Excel opens UTF-8 CSV with Chinese text only with a BOM
    yield from lines


class ImportReportCsvApi(TenantApiView):
    required_scopes = {"*": IMPORTS_WRITE}

    @extend_schema(parameters=[PHASE], responses={(200, "text/csv"): OpenApiTypes.BINARY},
                   operation_id="imports_report_csv")
    def get(self, request, upload_id: int):
        return report_csv_response(_upload(upload_id), _phase(request))


# Exports


class ExportCreateApi(TenantApiView):
    required_scopes = {"*": EXPORTS_CREATE}

    class ExportCreateInput(serializers.Serializer):
        kind = serializers.ChoiceField(choices=list(exports.KINDS))
        segment_id = serializers.IntegerField(required=False)

    @extend_schema(request=ExportCreateInput, responses={202: JobOutput},
                   operation_id="exports_create")
    @idempotent
    def post(self, request):
        data = self.ExportCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        segment = None
        if "segment_id" in data.validated_data:
            segment = Segment.objects.filter(pk=data.validated_data["segment_id"]).first()
            if segment is None:
                raise NotFound(_("人群不存在。"))
        job = exports.export_create(actor=self.actor, kind=data.validated_data["kind"],
                                    segment=segment)
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(TenantApiView):
    required_scopes = {"*": EXPORTS_CREATE}

    @extend_schema(responses=JobOutput, operation_id="exports_retrieve")
    def get(self, request, job_id: int):
        return Response(JobOutput(_export_job(job_id)).data)


class LinkOutput(serializers.Serializer):
    url = serializers.CharField(help_text=_("无需登录即可下载；过期后返回 410"))
    expires_at = DateTimeField()


class ExportLinkApi(TenantApiView):
    """A fresh signed download link for a finished export."""

    required_scopes = {"*": EXPORTS_CREATE}

    @extend_schema(responses=LinkOutput, operation_id="exports_link")
    def get(self, request, job_id: int):
        job = _export_job(job_id)
        if exports.export_file(job) is None:
            raise NotFound(_("导出尚未完成，或文件已不存在。"))
        path = reverse("web:exports-download", args=[exports.export_token(job)])
        expires_at = timezone.now() + timedelta(seconds=exports.link_max_age())
        return Response(LinkOutput({"url": request.build_absolute_uri(path),
                                    "expires_at": expires_at}).data)


class SegmentExportApi(TenantApiView):
    required_scopes = {"*": SEGMENTS_WRITE}

    @extend_schema(request=None, responses={202: JobOutput}, operation_id="segments_export")
    @idempotent
    def post(self, request, segment_id: int):
        segment = Segment.objects.filter(pk=segment_id).first()
        if segment is None:
            raise NotFound(_("未找到。"))
        job = exports.export_create(actor=self.actor, kind="segment", segment=segment)
        return Response(JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ExportDownloadApi(TenantApiView):
    """The exported CSV, with the signed token from the finished job's result."""

    required_scopes = {"*": SEGMENTS_WRITE}

    @extend_schema(parameters=[OpenApiParameter("token", str, required=True)],
                   responses={(200, "text/csv"): OpenApiTypes.BINARY},
                   operation_id="jobs_download")
    def get(self, request, job_id: int):
        job = Job.objects.filter(pk=job_id, kind__in=exports.EXPORT_JOB_KINDS).first()
        if job is None or not exports.export_token_check(request.query_params.get("token", ""),
                                                         job):
            raise NotFound(_("下载链接无效或已过期。"))
        handle = exports.export_file(job)
        if handle is None:
            raise NotFound(_("导出文件已不存在，请重新导出。"))
        return FileResponse(handle, as_attachment=True, filename=exports.export_filename(job),
                            content_type="text/csv")


"""Imports in the admin, read-only: uploads are made and run from the dashboard or the API,
through the services."""

from django.contrib import admin

from integrations.transfers.models import ImportFile, ImportIssue
from scrm.access import IMPORTS_WRITE
from scrm.admin import ReadOnlyAdmin


@admin.register(ImportFile)
class ImportFileAdmin(ReadOnlyAdmin):
    view_scope = IMPORTS_WRITE
    list_display = ("file_name", "kind", "status", "size", "created_by", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("file_name", "=sha256")
    fields = ("kind", "file_name", "file_format", "encoding", "size", "sha256", "headers",
              "mapping", "options", "status", "check_job", "run_job", "created_by",
              "created_at")
    ordering = ("-created_at",)


@admin.register(ImportIssue)
class ImportIssueAdmin(ReadOnlyAdmin):
    """A file's skipped rows (filter by file); a million-row report pages here."""

    view_scope = IMPORTS_WRITE
    list_display = ("upload", "phase", "row", "field", "code", "reason")
    list_filter = ("phase", "code")
    search_fields = ("=upload__id",)
    fields = ("upload", "phase", "row", "field", "code", "reason")
    list_select_related = ("upload",)
    ordering = ("upload", "phase", "row")

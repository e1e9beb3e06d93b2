"""Imports of members and orders: upload, column mapping, dry run, run.

The file is kept in default storage and read as a stream, in chunks of rows.  The dry run
(``import_check``) reads every row as the run would and records what is wrong with each,
writing nothing else.  The run (``import_run``) writes each chunk in one transaction together
with its skipped rows' issues and the job's checkpoint (the last row committed): after a
crash or a failure it continues after that row, so every row lands exactly once; and since
every write is an upsert (identities, orders by channel and number, opening balances by a
key derived from the member), uploading the same file again changes nothing.
"""

import gc
import hashlib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils.translation import gettext as _

from integrations.transfers import readers
from integrations.transfers.columns import mapping_guess, mapping_validate
from integrations.transfers.models import ImportFile, ImportIssue, ImportKind
from integrations.transfers.services import member_import, order_import
from integrations.transfers.services.common import actor_params, job_actor
from integrations.transfers.services.rows import Issue
from scrm.access import Actor
from scrm.api.errors import ApplicationError, Conflict
from scrm.jobs import job_create, job_finish, job_progress, job_start
from scrm.models import Job
from scrm.tenancy import tenant_scope

MEMBER_CHUNK = 10_000
ORDER_CHUNK = 500  # orders (each of one or more rows); order_ingest_bulk takes up to 1,000
MAX_COLUMNS = 200
CHECK, RUN = "import_check", "import_run"


def _max_bytes() -> int:
    return getattr(settings, "IMPORT_MAX_BYTES", 512 * 1024 * 1024)


# Upload and mapping


def import_upload(*, actor: Actor, kind: str, upload) -> ImportFile:
    """Keep the file, read its header and guess the mapping."""
    if kind not in ImportKind.values:
        raise ApplicationError(_("导入类型应为 members 或 orders。"), code="invalid_kind")
    if upload.size > _max_bytes():
        raise ApplicationError(_("文件过大（上限 %(mb)s MB）。") % {
            "mb": _max_bytes() // (1 << 20)}, code="file_too_large")
    name = PurePath(upload.name or "upload").name[:255]
    head = upload.read(readers.SNIFF_BYTES)
    upload.seek(0)
    file_format = readers.file_format(name, head)
    encoding = readers.csv_encoding(head) if file_format == "csv" else ""
    digest = hashlib.sha256()
    for piece in upload.chunks():
        digest.update(piece)
    upload.seek(0)
    headers = _headers(upload, file_format=file_format, encoding=encoding)
    upload.seek(0)
    stored = default_storage.save(
        f"imports/{actor.tenant.pk}/{uuid.uuid4().hex}.{file_format}", File(upload))
    with transaction.atomic():
        return ImportFile.objects.create(
            tenant_id=actor.tenant.pk, kind=kind, file_name=name, storage_name=stored,
            file_format=file_format, encoding=encoding, sha256=digest.hexdigest(),
            size=upload.size, headers=headers,
            mapping=mapping_guess(kind=kind, headers=headers), created_by=actor.label)


def _headers(handle, *, file_format: str, encoding: str) -> list[str]:
    rows = readers.rows_read(handle, file_format=file_format, encoding=encoding)
    first = next(rows, None)
    if first is None:
        raise ApplicationError(_("文件是空的。"), code="empty_file")
    headers = first[1]
    while headers and not headers[-1]:
        headers = headers[:-1]
    if len(headers) > MAX_COLUMNS:
        raise ApplicationError(_("列数过多（上限 %(max)s 列）。") % {"max": MAX_COLUMNS},
                               code="too_many_columns")
    return headers


def _require_idle(upload: ImportFile) -> None:
    if upload.run_job_id is not None or upload.status == ImportFile.Status.CHECKING:
        raise Conflict(_("该文件正在处理或已导入完成，不能再修改。"), code="import_busy")


@transaction.atomic
def import_mapping_set(*, actor: Actor, upload: ImportFile, mapping: list[dict],
                       options: dict | None = None) -> ImportFile:
    """Change the mapping (and options such as the orders' default channel); an earlier dry
    run no longer applies."""
    upload = ImportFile.objects.select_for_update().get(pk=upload.pk)
    _require_idle(upload)
    upload.mapping = mapping_validate(kind=upload.kind, headers=upload.headers,
                                      mapping=mapping)
    if options is not None:
        upload.options = _options(upload.kind, options)
    upload.status = ImportFile.Status.UPLOADED
    upload.save(update_fields=["mapping", "options", "status"])
    upload.issues.filter(phase=ImportIssue.Phase.CHECK).delete()
    return upload


def _options(kind: str, options: dict) -> dict:
    channel = str(options.get("channel") or "")
    if kind == ImportKind.ORDERS and channel and channel not in order_import.CHANNELS:
        raise ApplicationError(_("渠道不正确：%(value)s") % {"value": channel[:32]},
                               code="invalid_channel")
    return {"channel": order_import.CHANNELS.get(channel.lower(), "")} if channel else {}


# Starting the dry run and the run


@transaction.atomic
def import_check_start(*, actor: Actor, upload: ImportFile) -> Job:
    from integrations.transfers.tasks import import_check_task

    upload = ImportFile.objects.select_for_update().get(pk=upload.pk)
    _require_idle(upload)
    mapping_validate(kind=upload.kind, headers=upload.headers, mapping=upload.mapping)
    upload.issues.filter(phase=ImportIssue.Phase.CHECK).delete()
    job = job_create(actor=actor, kind=CHECK, params={"upload_id": upload.pk,
                                                      **actor_params(actor)})
    upload.check_job, upload.status = job, ImportFile.Status.CHECKING
    upload.save(update_fields=["check_job", "status"])
    transaction.on_commit(lambda: import_check_task.delay(actor.tenant.pk, job.pk))
    return job


@transaction.atomic
def import_run_start(*, actor: Actor, upload: ImportFile) -> Job:
    """Queue the run; a run that failed (or whose worker died) continues where it stopped."""
    from integrations.transfers.tasks import import_run_task

    upload = ImportFile.objects.select_for_update().get(pk=upload.pk)
    if upload.status == ImportFile.Status.FINISHED:
        raise Conflict(_("该文件已导入完成。"), code="import_finished")
    if upload.status == ImportFile.Status.CHECKING:
        raise Conflict(_("试运行尚未结束。"), code="import_busy")
    mapping_validate(kind=upload.kind, headers=upload.headers, mapping=upload.mapping)
    job = upload.run_job
    if job is not None and job.status in (Job.Status.PENDING, Job.Status.RUNNING):
        raise Conflict(_("导入正在进行中。"), code="import_busy")
    if job is None:
        job = job_create(actor=actor, kind=RUN, params={"upload_id": upload.pk,
                                                        **actor_params(actor)})
        upload.run_job = job
    elif job.status == Job.Status.FAILED:
        Job.objects.filter(pk=job.pk).update(status=Job.Status.PENDING, error="")
    upload.status = ImportFile.Status.RUNNING
    upload.save(update_fields=["run_job", "status"])
    transaction.on_commit(lambda: import_run_task.delay(actor.tenant.pk, job.pk))
    return job


# Reading the file


def _data_rows(upload: ImportFile) -> Iterator[tuple[int, list[str]]]:
    with default_storage.open(upload.storage_name, "rb") as handle:
        rows = readers.rows_read(handle, file_format=upload.file_format,
                                 encoding=upload.encoding)
        next(rows, None)  # the header
        yield from rows


def _chunks(upload: ImportFile, *, after: int) -> Iterator[list[tuple[int, list[str]]]]:
    """The rows after row ``after``, in chunks; an order's lines stay in one chunk."""
    orders = upload.kind == ImportKind.ORDERS
    size = ORDER_CHUNK if orders else MEMBER_CHUNK
    chunk: list[tuple[int, list[str]]] = []
    keys: set[str] = set()
    last_key = None
    for number, cells in _data_rows(upload):
        if number <= after:
            continue
        if orders:
            key = order_import.order_key(mapping=upload.mapping, cells=cells)
            if key != last_key and len(keys) >= size:
                yield chunk
                chunk, keys = [], set()
            keys.add(key)
            last_key = key
        elif len(chunk) >= size:
            yield chunk
            chunk = []
        chunk.append((number, cells))
    if chunk:
        yield chunk


def _total(upload: ImportFile) -> int:
    return sum(1 for _row in _data_rows(upload))


def _issues_save(upload: ImportFile, phase: str, issues: list[Issue]) -> None:
    ImportIssue.objects.bulk_create([
        ImportIssue(tenant_id=upload.tenant_id, upload=upload, phase=phase, row=issue.row,
                    field=issue.field[:32], code=issue.code[:32], reason=issue.reason[:255])
        for issue in sorted(issues, key=lambda issue: (issue.row, issue.field))])


# The runners (called by the tasks through scrm.jobs.job_run)


def _counts_add(counts: dict, **more: int) -> dict:
    return {key: counts.get(key, 0) + more.get(key, 0) for key in {*counts, *more}}


def _chunk_parse(upload: ImportFile, rows: list[tuple[int, list[str]]], *, stage: bool):
    """A chunk's rows read through the mapping (no database: runs ahead in a thread)."""
    if upload.kind == ImportKind.ORDERS:
        return order_import.orders_read(mapping=upload.mapping, options=upload.options,
                                        rows=rows)
    return member_import.member_rows_read(mapping=upload.mapping, rows=rows, stage=stage)


def _parsed_ahead(upload: ImportFile, *, after: int, write: bool) -> Iterator[tuple[list, Any]]:
    """(rows, parsed) per chunk; the next chunk is read and parsed in a thread while the
    caller writes this one (the database works while Python parses: measured, parsing is
    about half of an import's Python time)."""
    chunks = _chunks(upload, after=after)
    stage = write and connection.vendor == "postgresql"  # a run's rows staged ahead too
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-parse") as pool:
        def parse_next():
            rows = next(chunks, None)
            return None if rows is None else (rows, _chunk_parse(upload, rows, stage=stage))

        pending = pool.submit(parse_next)
        while (ready := pending.result()) is not None:
            pending = pool.submit(parse_next)
            yield ready


def _chunk_process(*, upload: ImportFile, actor: Actor, rows, parsed, write: bool
                   ) -> tuple[list[Issue], dict]:
    """One chunk: its issues, and what it did (or, in a dry run, would do)."""
    if upload.kind == ImportKind.ORDERS:
        if not write:
            return order_import.orders_check(parsed), {"orders": len(parsed),
                                                       "rows": len(rows)}
        outcome = order_import.orders_write(actor=actor, orders=parsed)
        return outcome.issues, {"created": outcome.created, "existing": outcome.existing,
                                "rows": len(rows)}
    chunk = member_import.Chunk(actor=actor, rows=parsed.rows, staged=parsed.staged)
    if not write:
        good = chunk.check()
        return [issue for row in parsed.rows for issue in row.issues], {"valid": len(good),
                                                                         "rows": len(rows)}
    outcome = chunk.write()
    return outcome.issues, {"created": outcome.created, "updated": outcome.updated,
                            "tagged": outcome.tagged, "points_granted": outcome.points,
                            "rows": len(rows)}


def _run(job: Job, *, phase: str, write: bool) -> None:
    upload = ImportFile.objects.get(pk=job.params["upload_id"])
    actor = job_actor(tenant_id=job.tenant_id, params=job.params)
    if not job.total:
        job.total = _total(upload)
        Job.objects.filter(pk=job.pk).update(total=job.total)
    job_start(job=job)
    after = job.checkpoint.get("row", 0)
    counts = job.checkpoint.get("counts", {})
    done = job.done
    try:
        with _fewer_collections():
            for rows, parsed in _parsed_ahead(upload, after=after, write=write):
                with transaction.atomic():
                    _claim(job, after)
                    if write:
                        _commit_lazily()
                    issues, did = _chunk_process(upload=upload, actor=actor, rows=rows,
                                                 parsed=parsed, write=write)
                    _issues_save(upload, phase, issues)
                    skipped = len({issue.row for issue in issues})
                    counts = _counts_add(counts, **did, skipped=skipped)
                    done += len(rows)
                    after = rows[-1][0]
                    job_progress(job=job, done=done,
                                 checkpoint={"row": after, "counts": counts})
    except _Overtaken:
        return  # another worker runs this job (a redelivered task): it carries on
    except Exception:
        ImportFile.objects.filter(pk=upload.pk).update(status=ImportFile.Status.FAILED
                                                       if write else ImportFile.Status.UPLOADED)
        raise
    status = ImportFile.Status.FINISHED if write else ImportFile.Status.CHECKED
    with transaction.atomic():
        ImportFile.objects.filter(pk=upload.pk).update(status=status)
        job_finish(job=job, result={**counts, "issues": upload.issues.filter(
            phase=phase).count()})


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """A chunk makes a few hundred thousand small objects that live until it is written; at
    the default thresholds the cyclic collector goes through the older generations, the
    whole heap, every 70,000 or so (measured: half of the parsing time).  Rarer collections
    of the older generations while the job runs; the worker's thresholds come back after."""
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _commit_lazily() -> None:
    """A chunk commits with its checkpoint, so it need not wait for the WAL flush: should
    PostgreSQL crash, at most the last few chunks' commits are lost (never half of one), their
    checkpoints with them, and the resumed job writes those chunks again (as the follower
    sync's pages do).  JIT compilation costs more than it saves on statements this size."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off; SET LOCAL jit = off")


class _Overtaken(Exception):  # noqa: N818 - a signal to stop, not an error
    pass


def _claim(job: Job, after: int) -> None:
    """Lock the job for this chunk; a second worker running the same job (a redelivered
    task) finds the checkpoint moved on and stops instead of writing the chunk twice."""
    current = Job.objects.select_for_update().values_list("checkpoint", flat=True).get(
        pk=job.pk)
    if (current or {}).get("row", 0) != after:
        raise _Overtaken


def import_check_run(*, job: Job) -> None:
    _run(job, phase=ImportIssue.Phase.CHECK, write=False)


def import_run_run(*, job: Job) -> None:
    _run(job, phase=ImportIssue.Phase.RUN, write=True)


def report_rows(*, upload: ImportFile, phase: str) -> Iterator[list]:
    """The validation report as CSV rows: row, field, code, reason.  A streamed response
    reads it after the view has left the tenant: it enters the upload's own."""
    yield [_("行号"), _("字段"), _("错误码"), _("原因")]
    with tenant_scope(upload.tenant_id):
        issues = ImportIssue.objects.filter(upload_id=upload.pk, phase=phase).order_by(
            "row", "id").values_list("row", "field", "code", "reason")
        for row, name, code, reason in issues.iterator(chunk_size=5000):
            yield [row, name, code, reason]

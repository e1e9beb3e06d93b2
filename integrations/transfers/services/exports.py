"""Exports of members, a segment, orders and the points ledger as CSV: a background job
streams the rows (a server-side cursor, or the segment's frozen member numbers chunk by
chunk) into a file in default storage, so memory stays flat; a signed link that expires
fetches it, without a session.

What an export holds is what its creator may see: a guide's or store manager's only their
own customers, and phone numbers in full only for roles with ``pii:read`` (every export is
written to the audit log, saying whether it held full numbers)."""

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.conf import settings
from django.core import signing
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from pyroaring import BitMap

from integrations.transfers.services.common import actor_params, job_actor
from members.models import Member
from members.selectors import member_visible, order_visible
from points.models import PointsEntry
from scrm import crypto
from scrm.access import (
    EXPORTS_CREATE,
    MEMBERS_READ,
    ORDERS_READ,
    PII_READ,
    POINTS_READ,
    SEGMENTS_WRITE,
    Actor,
)
from scrm.api.errors import ApplicationError
from scrm.audit import audit_record
from scrm.jobs import job_create, job_finish, job_progress, job_start
from scrm.models import Job
from tags.models import Segment
from tags.services.segments import expression_members

CHUNK = 5_000
PROGRESS_EVERY = 20_000
SALT = "scrm.transfers.export"
KINDS = {"members": MEMBERS_READ, "segment": SEGMENTS_WRITE, "orders": ORDERS_READ,
         "points_ledger": POINTS_READ}
JOB_KINDS = {"members": "members_export", "segment": "segment_export",
             "orders": "orders_export", "points_ledger": "points_export"}
EXPORT_JOB_KINDS = tuple(JOB_KINDS.values())
MEMBER_COLUMNS = ["member_no", "id", "name", "gender", "province", "city", "phone", "store",
                  "source_channel", "marketing_consent", "created_at"]
MEMBER_FIELDS = ("member_no", "id", "name", "gender", "province", "city", "phone_masked",
                 "phone_encrypted", "store__code", "source_channel", "marketing_consent",
                 "created_at")
ORDER_COLUMNS = ["order_no", "channel", "store", "paid_at", "amount_fen", "refunded_fen",
                 "status", "member_no", "member_id"]
ORDER_FIELDS = ("order_no", "channel", "store__code", "paid_at", "amount_fen", "refunded_fen",
                "status", "member__member_no", "member_id")
LEDGER_COLUMNS = ["id", "created_at", "member_no", "member_id", "kind", "points",
                  "balance_after", "reason", "ref_type", "ref_id", "operator"]
LEDGER_FIELDS = ("id", "created_at", "member__member_no", "member_id", "kind", "points",
                 "balance_after", "reason", "ref_type", "ref_id", "operator")


def link_max_age() -> int:
    return getattr(settings, "EXPORT_LINK_MAX_AGE", 24 * 3600)


def cell(text: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _time(value: datetime | None) -> str:
    return timezone.localtime(value).isoformat() if value else ""


def export_name(job: Job) -> str:
    return f"exports/{job.tenant_id}/{job.pk}.csv"


# Creating


@transaction.atomic
def export_create(*, actor: Actor, kind: str, segment: Segment | None = None) -> Job:
    """Queue an export; refused when the actor may not read what it holds."""
    from integrations.transfers.tasks import export_task

    if kind not in KINDS:
        raise ApplicationError(_("导出类型应为 %(kinds)s 之一。") % {
            "kinds": ", ".join(KINDS)}, code="invalid_kind")
    if not actor.can(KINDS[kind]) or (kind != "segment" and not actor.can(EXPORTS_CREATE)):
        raise ApplicationError(_("没有导出该数据的权限。"), code="permission_denied",
                               status_code=403)
    if (kind == "segment") != (segment is not None):
        raise ApplicationError(_("导出人群时需要指定人群。"), code="segment_required")
    params = {"kind": kind, "full_phone": actor.can(PII_READ), **actor_params(actor)}
    payload, total = None, 0
    if segment is not None:
        member_nos = expression_members(segment.expression)
        params.update(segment_id=segment.pk, segment=segment.name)
        payload, total = member_nos.serialize(), len(member_nos)
    job = job_create(actor=actor, kind=JOB_KINDS[kind], params=params, total=total,
                     payload=payload)
    audit_record(actor=actor, action=f"export.{kind}", target=job, data={
        "full_phone": params["full_phone"], **({"segment_id": segment.pk} if segment else {})})
    transaction.on_commit(lambda: export_task.delay(actor.tenant.pk, job.pk))
    return job


# Running


def _members_rows(actor: Actor, full_phone: bool, queryset) -> Iterator[list]:
    for (no, pk, name, gender, province, city, masked, encrypted, store, channel, consent,
         created_at) in queryset.values_list(*MEMBER_FIELDS).iterator(chunk_size=CHUNK):
        phone = crypto.decrypt(encrypted) if full_phone and encrypted else masked
        yield [no, pk, cell(name), gender, cell(province), cell(city), phone,
               cell(store) if store else "", channel, int(consent), _time(created_at)]


def _segment_rows(actor: Actor, full_phone: bool, job: Job) -> Iterator[list]:
    member_nos = list(BitMap.deserialize(bytes(job.payload)))
    visible = member_visible(actor=actor)
    for start in range(0, len(member_nos), CHUNK):
        chunk = member_nos[start:start + CHUNK]
        yield from _members_rows(actor, full_phone,
                                 visible.filter(member_no__in=chunk).order_by("member_no"))


def _orders_rows(actor: Actor) -> Iterator[list]:
    queryset = order_visible(actor=actor).order_by("id").values_list(*ORDER_FIELDS)
    for (order_no, channel, store, paid_at, amount, refunded, status, member_no,
         member_id) in queryset.iterator(chunk_size=CHUNK):
        yield [cell(order_no), channel, cell(store) if store else "", _time(paid_at), amount,
               refunded, status, member_no, member_id]


def _ledger_rows(actor: Actor) -> Iterator[list]:
    queryset = PointsEntry.objects.all()
    if actor.guide_id is not None or actor.store_id is not None:
        queryset = queryset.filter(member__in=member_visible(actor=actor))
    for (pk, created_at, member_no, member_id, kind, points, balance, reason, ref_type, ref_id,
         operator) in queryset.order_by("id").values_list(*LEDGER_FIELDS).iterator(
            chunk_size=CHUNK):
        yield [pk, _time(created_at), member_no, member_id, kind, points, balance, cell(reason),
               ref_type, cell(ref_id), operator]


def _source(job: Job, actor: Actor) -> tuple[list[str], Iterable[list], int]:
    kind, full_phone = job.params["kind"], bool(job.params.get("full_phone"))
    if kind == "segment":
        return MEMBER_COLUMNS, _segment_rows(actor, full_phone, job), job.total
    if kind == "members":
        queryset = member_visible(actor=actor).filter(status=Member.Status.ACTIVE)
        return (MEMBER_COLUMNS, _members_rows(actor, full_phone, queryset.order_by("member_no")),
                queryset.count())
    if kind == "orders":
        return ORDER_COLUMNS, _orders_rows(actor), order_visible(actor=actor).count()
    return LEDGER_COLUMNS, _ledger_rows(actor), PointsEntry.objects.count()


def export_run(*, job: Job) -> None:
    """Write the CSV from the start (a re-run after a crash writes it again, whole)."""
    actor = job_actor(tenant_id=job.tenant_id, params=job.params)
    columns, rows, total = _source(job, actor)
    Job.objects.filter(pk=job.pk).update(total=total)
    job_start(job=job)
    written = 0
    with tempfile.TemporaryFile() as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        writer = csv.writer(text)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(row)
            written += 1
            if written % PROGRESS_EVERY == 0:
                job_progress(job=job, done=written, checkpoint={})
        text.flush()
        raw.seek(0)
        name = export_name(job)
        if default_storage.exists(name):
            default_storage.delete(name)
        stored = default_storage.save(name, File(raw))
        text.detach()
    job_progress(job=job, done=written, checkpoint={})
    job_finish(job=job, result={"rows": written, "file": stored,
                                "token": export_token(job)})


# Links


def export_token(job: Job) -> str:
    return signing.TimestampSigner(salt=SALT).sign_object(
        {"job": job.pk, "tenant": job.tenant_id})


class LinkExpired(Exception):  # noqa: N818 - an outcome the view answers with 410
    pass


class LinkInvalid(Exception):  # noqa: N818 - an outcome the view answers with 403
    pass


def export_token_read(token: str) -> dict:
    """The job and tenant a link opens; ``LinkExpired`` or ``LinkInvalid`` otherwise."""
    try:
        data = signing.TimestampSigner(salt=SALT).unsign_object(token, max_age=link_max_age())
    except signing.SignatureExpired as exc:
        raise LinkExpired from exc
    except signing.BadSignature as exc:
        raise LinkInvalid from exc
    if not isinstance(data, dict) or not {"job", "tenant"} <= data.keys():
        raise LinkInvalid
    return data


def export_token_check(token: str, job: Job) -> bool:
    try:
        data = export_token_read(token)
    except (LinkExpired, LinkInvalid):
        return False
    return data == {"job": job.pk, "tenant": job.tenant_id}


def export_file(job: Job):
    """The finished export's file, opened, or None when it is gone."""
    name = job.result.get("file") or export_name(job)
    if job.status != Job.Status.SUCCEEDED or not default_storage.exists(name):
        return None
    return default_storage.open(name, "rb")


def export_filename(job: Job) -> str:
    label = f"segment-{job.params['segment_id']}" if job.params.get("segment_id") else (
        job.params.get("kind", "export"))
    return f"{label}-{job.pk}.csv"

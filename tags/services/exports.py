"""Segment CSV exports: a background job writes the file; a signed link that expires fetches
it."""

import csv
from pathlib import Path

from django.conf import settings
from django.core import signing
from pyroaring import BitMap

from members.models import Member
from scrm.jobs import job_create, job_finish, job_progress, job_start
from scrm.models import Job
from tags.models import Segment
from tags.services.segments import expression_members

CHUNK = 10_000
COLUMNS = ["member_no", "id", "name", "gender", "province", "city", "phone", "store",
           "source_channel", "marketing_consent", "created_at"]
LINK_MAX_AGE = 24 * 3600
SALT = "scrm.export"


def cell(text: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_path(job: Job) -> Path:
    return Path(settings.MEDIA_ROOT) / "exports" / str(job.tenant_id) / f"{job.pk}.csv"


def segment_export_create(*, actor, segment: Segment) -> Job:
    from django.db import transaction

    from tags.tasks import segment_export_task

    member_nos = expression_members(segment.expression)
    job = job_create(actor=actor, kind="segment_export", total=len(member_nos),
                     params={"segment_id": segment.pk, "segment": segment.name},
                     payload=member_nos.serialize())
    transaction.on_commit(lambda: segment_export_task.delay(actor.tenant.pk, job.pk))
    return job


def segment_export_run(*, job: Job) -> None:
    """Write the CSV from the start (a re-run after a crash writes it again, whole)."""
    member_nos = list(BitMap.deserialize(bytes(job.payload)))
    path = export_path(job)
    path.parent.mkdir(parents=True, exist_ok=True)
    job_start(job=job)
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for start in range(0, len(member_nos), CHUNK):
            chunk = member_nos[start:start + CHUNK]
            rows = Member.objects.filter(member_no__in=chunk).select_related("store").order_by(
                "member_no")
            for member in rows:
                writer.writerow([member.member_no, member.pk, cell(member.name), member.gender,
                                 cell(member.province), cell(member.city), member.phone_masked,
                                 cell(member.store.code) if member.store else "",
                                 member.source_channel, int(member.marketing_consent),
                                 member.created_at.isoformat()])
            job_progress(job=job, done=start + len(chunk), checkpoint={})
    token = signing.dumps({"job": job.pk, "tenant": job.tenant_id}, salt=SALT)
    job_finish(job=job, result={"rows": len(member_nos), "token": token})


def export_token_check(token: str, job: Job) -> bool:
    try:
        data = signing.loads(token, salt=SALT, max_age=LINK_MAX_AGE)
    except signing.BadSignature:
        return False
    return data == {"job": job.pk, "tenant": job.tenant_id}

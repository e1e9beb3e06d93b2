"""Progress and checkpoints of long jobs (``scrm.models.Job``)."""

import logging

from django.db import transaction
from django.utils import timezone

from scrm.access import Actor
from scrm.models import Job, Tenant
from scrm.tenancy import tenant_scope, unscoped_access

logger = logging.getLogger(__name__)


def job_create(*, actor: Actor, kind: str, params: dict, total: int = 0,
               payload: bytes | None = None) -> Job:
    return Job.objects.create(tenant_id=actor.tenant.pk, kind=kind, params=params, total=total,
                              payload=payload, created_by=actor.label)


def job_start(*, job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING,
                                         started_at=job.started_at or timezone.now())


def job_progress(*, job: Job, done: int, checkpoint: dict) -> None:
    """Called inside the chunk's own transaction, so progress and work commit together."""
    job.done, job.checkpoint = done, checkpoint
    Job.objects.filter(pk=job.pk).update(done=done, checkpoint=checkpoint)


def job_finish(*, job: Job, result: dict | None = None, error: str = "") -> None:
    with transaction.atomic():
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.FAILED if error else Job.Status.SUCCEEDED,
            result=result or {}, error=error, finished_at=timezone.now())


def job_run(*, tenant_id: int, job_id: int, runner) -> None:
    """Run (or resume, after a crash or a failure) a job inside its tenant; the task that
    calls this may safely run twice."""
    with tenant_scope(tenant_id):
        job = Job.objects.filter(pk=job_id).first()
        if job is None or job.status == Job.Status.SUCCEEDED:
            return
        try:
            runner(job=job)
        except Exception as exc:
            logger.exception("job %s failed", job_id)
            job_finish(job=job, result=job.result, error=str(exc)[:2000])
            raise


def fan_out_per_tenant(task, *args, expires: float | None = None) -> int:
    """For periodic jobs: queue ``task(tenant_id, *args)`` once per active tenant
    (``expires``: seconds after which a task still queued is dropped, for jobs the next run
    does again anyway)."""
    with unscoped_access(f"fan out {task.name}"):
        tenant_ids = list(Tenant.objects.filter(is_active=True).values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        task.apply_async((tenant_id, *args), expires=expires)
    return len(tenant_ids)

"""Celery tasks of RFM and lifecycle: thin, each inside its tenant, each safe to run
twice."""

import logging

from celery import shared_task

from scrm.api.errors import Conflict
from scrm.jobs import fan_out_per_tenant, job_run
from scrm.tenancy import tenant_scope

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def rfm_run_task(tenant_id: int, job_id: int) -> None:
    """A run started from the API (resumes from its checkpoint when redelivered)."""
    from campaigns.rfm.services.runs import rfm_run_execute

    job_run(tenant_id=tenant_id, job_id=job_id, runner=rfm_run_execute)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def rfm_lifecycle_task(tenant_id: int) -> dict:
    """The tenant's scheduled recompute: RFM, then every member's lifecycle stage."""
    from django.utils import timezone

    from campaigns.rfm.services.lifecycle import lifecycle_pass
    from campaigns.rfm.services.runs import rfm_run_now

    now, run, result = timezone.now(), None, {}
    with tenant_scope(tenant_id):
        try:
            run = rfm_run_now(now=now)
            result["rfm_run"] = run.pk
        except Conflict:
            logger.info("tenant %s: an RFM run is already in progress; skipped", tenant_id)
        result["lifecycle_changed"] = lifecycle_pass(now=now, rfm_run=run).changed
    return result


@shared_task
def rfm_lifecycle_all_task() -> int:
    """Periodic (daily): RFM and lifecycle for every active tenant."""
    return fan_out_per_tenant(rfm_lifecycle_task)


@shared_task(acks_late=True, soft_time_limit=600, time_limit=700)
def lifecycle_orders_task(tenant_id: int, order_ids: list[int]) -> int:
    """The stages of the buyers of these orders (paid or refunded)."""
    from members.models import Order

    with tenant_scope(tenant_id):
        member_ids = list(Order.objects.filter(pk__in=order_ids)
                          .values_list("member_id", flat=True).distinct())
    return lifecycle_members_task(tenant_id, member_ids)


@shared_task(acks_late=True, soft_time_limit=600, time_limit=700)
def lifecycle_members_task(tenant_id: int, member_ids: list[int]) -> int:
    from campaigns.rfm.services.lifecycle import lifecycle_evaluate

    with tenant_scope(tenant_id):
        return lifecycle_evaluate(member_ids=member_ids).changed

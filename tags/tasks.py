import logging

from celery import shared_task

from scrm.jobs import fan_out_per_tenant, job_run
from scrm.tenancy import tenant_scope, unscoped_access

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def tag_bulk_task(tenant_id: int, job_id: int) -> None:
    from tags.services.tagging import tag_bulk_run

    job_run(tenant_id=tenant_id, job_id=job_id, runner=tag_bulk_run)


@shared_task(acks_late=True, soft_time_limit=600, time_limit=700)
def audience_fold_task(tenant_id: int) -> int:
    from tags.audience.index import audience_fold

    with tenant_scope(tenant_id):
        return audience_fold()


@shared_task
def audience_fold_all_task() -> int:
    """Periodic (every minute): fold the dirty members of every tenant that has some."""
    from tags.models import AudienceDirty

    with unscoped_access("find tenants with dirty audience members"):
        tenant_ids = list(AudienceDirty.objects.values_list("tenant_id", flat=True).distinct())
    for tenant_id in tenant_ids:
        audience_fold_task.delay(tenant_id)
    return len(tenant_ids)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def audience_rebuild_task(tenant_id: int) -> dict:
    from tags.audience.index import audience_rebuild

    with tenant_scope(tenant_id):
        return audience_rebuild()


@shared_task
def audience_rebuild_all_task() -> int:
    """Nightly: rebuild every tenant's index (rebalances the numeric buckets)."""
    return fan_out_per_tenant(audience_rebuild_task)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def tag_rules_evaluate_task(tenant_id: int, member_ids: list[int] | None = None) -> int:
    """Evaluate every rule tag of the tenant (for ``member_ids`` only, when given)."""
    from tags.audience.expressions import ExpressionError
    from tags.models import Tag
    from tags.services.rules import tag_rule_evaluate

    with tenant_scope(tenant_id):
        tags = list(Tag.objects.filter(kind=Tag.Kind.RULE))
        for tag in tags:
            try:
                tag_rule_evaluate(tag=tag, member_ids=member_ids)
            except ExpressionError as exc:  # e.g. a tag its rule names was deleted
                logger.warning("rule tag %s skipped: %s", tag.pk, exc.detail)
    return len(tags)


@shared_task
def tag_rules_evaluate_all_task() -> int:
    return fan_out_per_tenant(tag_rules_evaluate_task)


@shared_task(acks_late=True, soft_time_limit=600, time_limit=700)
def product_sync_task(tenant_id: int, order_ids: list[int]) -> int:
    """After orders are paid: create products for the new SKUs they brought."""
    from tags.services.products import product_sync_for_orders

    with tenant_scope(tenant_id):
        return product_sync_for_orders(order_ids=order_ids)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def product_audience_task(tenant_id: int, job_id: int) -> None:
    from tags.services.products import product_audience_run

    job_run(tenant_id=tenant_id, job_id=job_id, runner=product_audience_run)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def tag_rule_evaluate_task(tenant_id: int, tag_id: int) -> dict:
    """Evaluate one rule tag for every member (after its rule was saved)."""
    from tags.models import Tag
    from tags.services.rules import tag_rule_evaluate

    with tenant_scope(tenant_id):
        tag = Tag.objects.filter(pk=tag_id, kind=Tag.Kind.RULE).first()
        return tag_rule_evaluate(tag=tag) if tag is not None else {}


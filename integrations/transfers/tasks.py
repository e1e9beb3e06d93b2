from celery import shared_task

from scrm.jobs import job_run


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def import_check_task(tenant_id: int, job_id: int) -> None:
    from integrations.transfers.services.imports import import_check_run

    job_run(tenant_id=tenant_id, job_id=job_id, runner=import_check_run)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def import_run_task(tenant_id: int, job_id: int) -> None:
    from integrations.transfers.services.imports import import_run_run

    job_run(tenant_id=tenant_id, job_id=job_id, runner=import_run_run)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3900)
def export_task(tenant_id: int, job_id: int) -> None:
    from integrations.transfers.services.exports import export_run

    job_run(tenant_id=tenant_id, job_id=job_id, runner=export_run)

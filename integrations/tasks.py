"""Celery tasks of the integrations app: thin, each inside its tenant, each safe to run
twice (jobs resume from their checkpoints)."""

import logging

from celery import shared_task

from integrations.wechat.client import WeChatApiError
from scrm.jobs import job_run

logger = logging.getLogger(__name__)


def _recording_errors(runner, model, key: str):
    """The runner, recording a failure on the connection too (the dashboard shows it)."""

    def run(*, job) -> None:
        try:
            runner(job=job)
        except Exception as exc:
            model.objects.filter(pk=job.params[key]).update(last_error=str(exc)[:2000])
            raise

    return run


def _run_job(task, tenant_id: int, job_id: int, runner) -> None:
    """Run a sync job; when WeChat is busy or rate-limiting, try again in a minute from the
    checkpoint (the job shows as failed meanwhile, with the reason)."""
    try:
        job_run(tenant_id=tenant_id, job_id=job_id, runner=runner)
    except WeChatApiError as exc:
        if exc.is_retryable:
            raise task.retry(countdown=60, exc=exc) from exc
        logger.warning("job %s stopped: %s", job_id, exc)


@shared_task(bind=True, acks_late=True, soft_time_limit=3 * 3600, time_limit=3 * 3600 + 300,
             max_retries=30)
def followers_sync_task(self, tenant_id: int, job_id: int) -> None:
    from integrations.models import OAApp
    from integrations.services.followers import followers_sync_run

    _run_job(self, tenant_id, job_id, _recording_errors(followers_sync_run, OAApp, "app_id"))


@shared_task(bind=True, acks_late=True, soft_time_limit=3 * 3600, time_limit=3 * 3600 + 300,
             max_retries=30)
def wecom_sync_task(self, tenant_id: int, job_id: int) -> None:
    from integrations.models import WeComCorp
    from integrations.services.wecom import wecom_sync_run

    _run_job(self, tenant_id, job_id, _recording_errors(wecom_sync_run, WeComCorp, "corp_id"))


@shared_task(bind=True, acks_late=True, soft_time_limit=120, time_limit=180, max_retries=5)
def callback_process_task(self, tenant_id: int, event_id: int) -> None:
    """One callback event; WeChat being busy makes it try again with backoff."""
    from integrations.models import CallbackEvent
    from integrations.services.callbacks import callback_failed, callback_process
    from scrm.tenancy import tenant_scope

    with tenant_scope(tenant_id):
        event = CallbackEvent.objects.filter(pk=event_id).first()
        if event is None:
            return
        try:
            callback_process(event=event)
        except WeChatApiError as exc:
            if exc.is_retryable and self.request.retries < self.max_retries:
                raise self.retry(countdown=2 ** self.request.retries, exc=exc) from exc
            callback_failed(event_id=event_id, error=str(exc))
        except Exception as exc:
            callback_failed(event_id=event_id, error=f"{type(exc).__name__}: {exc}")
            raise

from celery import shared_task

from integrations.webhooks.services import delivery, relay


@shared_task(acks_late=True, time_limit=300)
def webhooks_relay_task() -> tuple[int, int]:
    """Fan the outbox out to deliveries (every tenant; beat, and after commits)."""
    return relay.relay_pending()


@shared_task(acks_late=True, time_limit=300)
def webhooks_deliver_task() -> int:
    """Send the due deliveries (first tries and retries; beat, and after the relay)."""
    return delivery.deliveries_send_due()


@shared_task(acks_late=True, time_limit=3600)
def webhooks_purge_task() -> int:
    return relay.outbox_purge()

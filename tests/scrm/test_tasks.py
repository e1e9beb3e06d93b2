from datetime import timedelta

from django.utils import timezone

from scrm.models import IdempotencyRecord
from scrm.tasks import idempotency_records_purge_task
from scrm.tenancy import tenant_scope

UPSERT = "/api/v1/members/upsert/"
BODY = {"identities": [{"kind": "phone", "value": "13800138000"}]}


def test_expired_idempotency_keys_are_forgotten_and_fresh_ones_kept(api_client, tenant):
    api_client.post(UPSERT, BODY, format="json", HTTP_IDEMPOTENCY_KEY="old")
    api_client.post(UPSERT, BODY, format="json", HTTP_IDEMPOTENCY_KEY="new")
    with tenant_scope(tenant):
        IdempotencyRecord.objects.filter(key="old").update(
            created_at=timezone.now() - timedelta(days=8))
    assert idempotency_records_purge_task() == 1
    with tenant_scope(tenant):
        assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]

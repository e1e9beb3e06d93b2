from io import StringIO

from django.core.management import call_command

from members.models import MemberStats
from members.tasks import member_stats_reconcile_all_task
from scrm.tenancy import tenant_scope

ORDER = {
    "order_no": "P1", "channel": "pos", "paid_at": "2026-11-01T10:00:00+08:00",
    "amount_fen": 12000, "buyer": {"identities": [{"kind": "phone", "value": "13800138000"}]},
    "lines": [{"sku": "S1", "product": "口红", "quantity": 2, "price_fen": 6000}],
}


def test_reconcile_repairs_drifted_stats_and_reports_it(api_client, tenant):
    api_client.post("/api/v1/orders/", ORDER, format="json")
    with tenant_scope(tenant):
        MemberStats.objects.update(order_count=7, total_spent_fen=1)
    out = StringIO()
    call_command("reconcile_stats", "--tenant", "acme", stdout=out)
    assert "1 members' stats had drifted" in out.getvalue()
    with tenant_scope(tenant):
        stats = MemberStats.objects.get()
    assert (stats.order_count, stats.total_spent_fen) == (1, 12000)


def test_periodic_reconcile_fans_out_per_tenant_and_leaves_correct_stats(api_client, tenant,
                                                                         other_tenant):
    api_client.post("/api/v1/orders/", ORDER, format="json")
    assert member_stats_reconcile_all_task() == 2
    with tenant_scope(tenant):
        assert MemberStats.objects.get().total_spent_fen == 12000

import sys

from django.core.management.base import BaseCommand, CommandError

from points.selectors import ledger_drift
from scrm.models import Tenant
from scrm.tenancy import tenant_scope, unscoped_access


class Command(BaseCommand):
    help = ("Report members whose points balance differs from the sum of their ledger or of "
            "their live lots (or whose shortfall differs from the ledger's).  Exits 1 on drift.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="tenant slug (default: every active tenant)")

    def handle(self, *args, tenant=None, **options):
        with unscoped_access("check_ledger lists tenants"):
            tenants = Tenant.objects.filter(is_active=True).order_by("slug")
            if tenant:
                tenants = Tenant.objects.filter(slug=tenant)
            tenants = list(tenants)
        if tenant and not tenants:
            raise CommandError(f"no tenant {tenant!r}")
        drifted = 0
        for row in tenants:
            with tenant_scope(row):
                drift = ledger_drift()
            for item in drift:
                self.stdout.write(
                    f"{row.slug} member {item.member_id}: balance {item.balance}, "
                    f"ledger {item.ledger_sum}, lots {item.lots_sum}, shortfall {item.shortfall}, "
                    f"ledger shortfall {item.ledger_shortfall}")
            drifted += len(drift)
        self.stdout.write(f"{len(tenants)} tenants checked, {drifted} members drifted")
        if drifted:
            sys.exit(1)

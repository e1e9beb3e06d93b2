from django.core.management.base import BaseCommand, CommandError

from scrm.models import Tenant
from scrm.tenancy import tenant_scope


class TenantCommand(BaseCommand):
    """A command that works inside one tenant, named by ``--tenant SLUG``: ``handle_tenant``
    runs inside that tenant's scope."""

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")

    def handle(self, *args, tenant, **options):
        tenant_row = Tenant.objects.filter(slug=tenant).first()
        if tenant_row is None:
            raise CommandError(f"no tenant {tenant!r}")
        with tenant_scope(tenant_row):
            return self.handle_tenant(tenant_row, **options)

    def handle_tenant(self, tenant: Tenant, **options):
        raise NotImplementedError

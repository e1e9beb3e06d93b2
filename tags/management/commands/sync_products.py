from scrm.management.base import TenantCommand
from tags.services.products import product_sync_from_orders


class Command(TenantCommand):
    help = "Create a product for every SKU seen in the tenant's orders that has none yet."

    def handle_tenant(self, tenant, **options):
        self.stdout.write(f"{product_sync_from_orders()} products created")

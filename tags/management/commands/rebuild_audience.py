import time

from scrm.management.base import TenantCommand
from tags.audience.index import audience_index_size, audience_rebuild


class Command(TenantCommand):
    help = "Rebuild the tenant's audience index (bitmaps) from the database."

    def handle_tenant(self, tenant, **options):
        started = time.perf_counter()
        built = audience_rebuild()
        size = audience_index_size()
        self.stdout.write(
            f"{built['members']:,} members, {built['tags']:,} tags, {size['rows']:,} bitmaps "
            f"({(size['bitmap_bytes'] + size['payload_bytes']) / 1e6:.1f} MB) "
            f"in {time.perf_counter() - started:.1f}s")

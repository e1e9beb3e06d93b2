from tqdm import tqdm

from members.models import Member
from members.services.reconcile import member_stats_reconcile
from scrm.management.base import TenantCommand


class Command(TenantCommand):
    help = "Recompute members' stats from their orders and report any drift."

    def handle_tenant(self, tenant, **options):
        with tqdm(total=Member.objects.count(), unit="member") as bar:
            drift = member_stats_reconcile(on_chunk=bar.update)
        self.stdout.write(f"{drift} members' stats had drifted and were fixed")

from django.core.management.base import BaseCommand, CommandError

from members.generator.pools import CATALOGS
from members.generator.service import GeneratorError, tenant_generate


class Command(BaseCommand):
    help = ("Build a synthetic tenant at scale (stores, staff, members with identities, orders, "
            "stats).  Re-running with the same arguments resumes an interrupted run.")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--members", type=int, required=True)
        parser.add_argument("--orders", type=int, required=True)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--stores", type=int, help="default: one per 5,000 members (3-300)")
        parser.add_argument("--catalog", choices=sorted(CATALOGS), default="beauty")
        parser.add_argument("--name", default="", help="tenant name when it is created")
        parser.add_argument("--timeline", action="store_true",
                            help="also write timeline events (member created, orders, refunds)")
        parser.add_argument("--workers", type=int,
                            help="generator processes (default: 2 on PostgreSQL for 50k+ "
                                 "members, else 0 = in-process)")

    def handle(self, *args, slug, members, orders, seed, stores, catalog, name, timeline,
               workers, verbosity, **options):
        try:
            result = tenant_generate(
                slug=slug, members=members, orders=orders, seed=seed, stores=stores,
                catalog=catalog, name=name, timeline=timeline, workers=workers,
                progress=verbosity > 0,
            )
        except GeneratorError as exc:
            raise CommandError(str(exc)) from exc
        tenant = result.tenant
        if result.status == "complete":
            self.stdout.write(f"tenant {tenant.slug} already has {members} generated members "
                              f"and {orders} orders; nothing to do")
        else:
            self.stdout.write(f"tenant {tenant.slug} (id {tenant.pk}) {result.status}: "
                              f"{members} members, {orders} orders")
        self.stdout.write(f"owner: {result.owner_email}")
        if result.owner_password:
            self.stdout.write(f"owner password: {result.owner_password}")
        for phase, seconds in result.timings.items():
            self.stdout.write(f"phase {phase}: {seconds:.1f}s")
        self.stdout.write(f"total: {sum(result.timings.values()):.1f}s")

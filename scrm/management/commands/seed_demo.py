import time

from django.core.management.base import BaseCommand
from django.db import transaction

from scrm.models import Role
from scrm.tenancy import tenant_scope

LOGIN_URL = "http://127.0.0.1:8000/login/"
GUIDE_LOGIN_URL = "http://127.0.0.1:8000/guide/login/"


class Command(BaseCommand):
    help = ("Create the demo tenant 'demo': stores, a login for every role, 2,000 members, "
            "8,000 orders, tiers, points, a points mall and an API key.  Does nothing when "
            "it exists.")

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args, seed, verbosity, **options):
        # The demo is a project-level fixture drawing on every app, hence the late imports.
        from campaigns.rfm.services.lifecycle import lifecycle_pass
        from campaigns.rfm.services.runs import rfm_run_now
        from integrations.demo import wechat_demo_seed
        from members.generator import demo
        from points.demo import loyalty_demo_seed
        from tags.demo import tags_demo_seed

        started = time.perf_counter()
        with transaction.atomic():
            result = demo.demo_seed(seed=seed, progress=verbosity > 0)
            if result.created:
                with tenant_scope(result.tenant):
                    loyalty_demo_seed(tenant=result.tenant)
                    tags_demo_seed(tenant=result.tenant)
                    wechat = wechat_demo_seed(tenant=result.tenant)
                    # The dashboard's RFM matrix and lifecycle funnel, as the nightly job
                    # would leave them.
                    lifecycle_pass(rfm_run=rfm_run_now())
        owner = demo.demo_email(Role.OWNER)
        if not result.created:
            self.stdout.write(f"demo tenant '{demo.DEMO_SLUG}' already exists; nothing to do")
            self.stdout.write(f"login: {LOGIN_URL}  as {owner} "
                              f"(password {demo.DEMO_PASSWORD} unless changed)")
            return
        self.stdout.write(
            f"demo tenant '{demo.DEMO_SLUG}' ({demo.DEMO_NAME}) created in "
            f"{time.perf_counter() - started:.1f}s: {demo.DEMO_STORES} stores, "
            f"{demo.DEMO_MEMBERS:,} members, {demo.DEMO_ORDERS:,} orders, a tier programme, "
            f"points and a points mall")
        self.stdout.write(f"WeChat: {wechat}")
        self.stdout.write(f"login: {LOGIN_URL} (the guide's phone view: {GUIDE_LOGIN_URL})")
        password = demo.DEMO_PASSWORD if result.owner_password else "(unchanged: login existed)"
        self.stdout.write(f"owner: {owner}  password: {password}")
        others = ", ".join(role for role in Role.values if role != Role.OWNER)
        self.stdout.write(f"other roles ({others}): <role>@{demo.DEMO_SLUG}.example, "
                          f"same password")
        self.stdout.write(f"API key (shown once): {result.api_key}")

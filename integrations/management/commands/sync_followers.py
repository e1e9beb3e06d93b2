from django.core.management.base import CommandError
from tqdm import tqdm

from integrations.models import OAApp
from integrations.services.followers import followers_sync_start
from scrm.access import ALL_SCOPES, Actor
from scrm.jobs import job_run
from scrm.management.base import TenantCommand


class Command(TenantCommand):
    help = "Run a full follower sync of an Official Account in the foreground (the service " \
           "the Celery task runs), with a progress bar.  Resumes a failed sync."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--appid", required=True)

    def handle_tenant(self, tenant, *, appid, **options):
        from integrations.services.followers import followers_sync_run

        app = OAApp.objects.filter(appid=appid).first()
        if app is None:
            raise CommandError(f"no OA {appid!r} in tenant {tenant.slug}")
        job = followers_sync_start(actor=Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES)),
                                   app=app, enqueue=False)
        bar = tqdm(total=job.total or None, initial=job.done, unit=" followers",
                   disable=options["verbosity"] == 0)

        def on_page(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        job_run(tenant_id=tenant.pk, job_id=job.pk,
                runner=lambda job: followers_sync_run(job=job, on_page=on_page))
        bar.close()
        job.refresh_from_db()
        self.stdout.write(f"{job.status}: {job.result}")

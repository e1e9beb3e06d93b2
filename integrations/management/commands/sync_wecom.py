from django.core.management.base import CommandError
from tqdm import tqdm

from integrations.models import WeComCorp
from integrations.services.wecom import wecom_sync_run, wecom_sync_start
from scrm.access import ALL_SCOPES, Actor
from scrm.jobs import job_run
from scrm.management.base import TenantCommand


class Command(TenantCommand):
    help = "Run a full WeCom sync (guides, customers and their relations, customer groups) " \
           "in the foreground, with a progress bar.  Resumes a failed sync."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--corpid", required=True)

    def handle_tenant(self, tenant, *, corpid, **options):
        corp = WeComCorp.objects.filter(corpid=corpid).first()
        if corp is None:
            raise CommandError(f"no WeCom corp {corpid!r} in tenant {tenant.slug}")
        job = wecom_sync_start(actor=Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES)),
                               corp=corp, enqueue=False)
        bar = tqdm(unit=" records", disable=options["verbosity"] == 0)

        def on_progress(phase: str, done: int) -> None:
            bar.set_description(phase)
            bar.update(done - bar.n)

        job_run(tenant_id=tenant.pk, job_id=job.pk,
                runner=lambda job: wecom_sync_run(job=job, on_progress=on_progress))
        bar.close()
        job.refresh_from_db()
        self.stdout.write(f"{job.status}: {job.result}")

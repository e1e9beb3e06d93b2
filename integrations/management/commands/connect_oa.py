from django.core.management.base import CommandError

from integrations.services.connections import connection_check, oa_app_connect
from scrm.access import ALL_SCOPES, Actor
from scrm.api.errors import ApplicationError
from scrm.management.base import TenantCommand


class Command(TenantCommand):
    help = "Connect a WeChat Official Account to a tenant (or change its credentials), then " \
           "check the connection."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--appid", required=True)
        parser.add_argument("--secret", help="AppSecret (required for a new connection)")
        parser.add_argument("--name", default="")
        parser.add_argument("--token", help="callback Token")
        parser.add_argument("--aes-key", dest="aes_key", help="EncodingAESKey (43 characters)")
        parser.add_argument("--mode", default="safe", choices=["plain", "compat", "safe"],
                            help="message encryption mode set in the OA console")

    def handle_tenant(self, tenant, *, appid, secret, name, token, aes_key, mode, **options):
        actor = Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))
        try:
            app = oa_app_connect(actor=actor, appid=appid, secret=secret, name=name,
                                 token=token, aes_key=aes_key, message_mode=mode, check=False)
        except ApplicationError as exc:
            raise CommandError(str(exc.detail)) from exc
        report = connection_check(connection=app)
        self.stdout.write(f"OA {app.appid} ({app.name}) connected to {tenant.slug}")
        self.stdout.write(f"callback URL: {report['callback_url']}")
        for problem in report["problems"]:
            self.stdout.write(self.style.WARNING(f"problem: {problem}"))
        if report["ok"]:
            self.stdout.write(self.style.SUCCESS("check: ok"))

from django.core.management.base import CommandError

from integrations.services.connections import connection_check, wecom_corp_connect
from scrm.access import ALL_SCOPES, Actor
from scrm.api.errors import ApplicationError
from scrm.management.base import TenantCommand


class Command(TenantCommand):
    help = "Connect a WeCom corp (its customer-contact secret) to a tenant, then check it."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--corpid", required=True)
        parser.add_argument("--secret", help="客户联系 secret (required for a new connection)")
        parser.add_argument("--name", default="")
        parser.add_argument("--token", help="callback Token")
        parser.add_argument("--aes-key", dest="aes_key", help="EncodingAESKey (43 characters)")
        parser.add_argument("--agent-id", dest="agent_id", help="self-built app AgentID")
        parser.add_argument("--agent-secret", dest="agent_secret",
                            help="self-built app secret (guide login through WeCom OAuth)")

    def handle_tenant(self, tenant, *, corpid, secret, name, token, aes_key, agent_id,
                      agent_secret, **options):
        actor = Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))
        try:
            corp = wecom_corp_connect(actor=actor, corpid=corpid, secret=secret, name=name,
                                      token=token, aes_key=aes_key, agent_id=agent_id,
                                      agent_secret=agent_secret, check=False)
        except ApplicationError as exc:
            raise CommandError(str(exc.detail)) from exc
        report = connection_check(connection=corp)
        self.stdout.write(f"WeCom {corp.corpid} ({corp.name}) connected to {tenant.slug}")
        self.stdout.write(f"callback URL: {report['callback_url']}")
        for problem in report["problems"]:
            self.stdout.write(self.style.WARNING(f"problem: {problem}"))
        if report["ok"]:
            self.stdout.write(self.style.SUCCESS("check: ok"))

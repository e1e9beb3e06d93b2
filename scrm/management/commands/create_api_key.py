from django.core.management.base import CommandError

from scrm import access
from scrm.management.base import TenantCommand
from scrm.services import api_key_create


class Command(TenantCommand):
    help = "Create an API key for a tenant; prints the key alone on the last line, once."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--name", default="partner")
        parser.add_argument("--scopes", nargs="*", help=f"default: {' '.join(access.ALL_SCOPES)}")

    def handle_tenant(self, tenant, *, name, scopes, **options):
        scopes = [s for item in scopes or [] for s in item.split(",") if s]
        try:
            api_key, secret = api_key_create(tenant=tenant, name=name, scopes=scopes or None)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"API key {api_key.prefix} for {tenant.slug}, scopes "
                          f"{' '.join(api_key.scopes)}")
        self.stdout.write(secret)

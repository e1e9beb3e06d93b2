from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from scrm.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant with its owner."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--owner-password")

    def handle(self, *args, slug, name, owner_email, owner_password, **options):
        try:
            tenant, owner, password = tenant_create(slug=slug, name=name,
                                                    owner_email=owner_email,
                                                    owner_password=owner_password)
        except IntegrityError as exc:
            raise CommandError(f"tenant {slug!r} already exists") from exc
        self.stdout.write(f"tenant {tenant.slug} (id {tenant.pk}) created; owner {owner_email}")
        if password:
            self.stdout.write(f"owner password: {password}")

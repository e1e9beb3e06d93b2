"""Entry points of the generator's worker processes.  Spawned workers unpickle these before
Django is set up, so this module imports nothing that needs the app registry."""


def worker_init(database: dict) -> None:
    import django
    from django.conf import settings

    # The parent's database as it is now (a test run renames it), before anything connects.
    settings.DATABASES["default"] = database
    django.setup()


def chunk_write(kind: str, context, chunk) -> int:
    from members.generator.service import chunk_write as write

    return write(kind, context, chunk)

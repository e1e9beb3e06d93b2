"""Dense per-tenant member numbers (32-bit), the key the audience bitmaps are built on.

PostgreSQL: one sequence per tenant, so concurrent sign-ups never queue on a counter row.
SQLite (quick start): the next number after the highest, safe because SQLite writes serially.
"""

from django.db import connection
from django.db.models import Max

from members.models import Member


def _sequence(tenant_id: int) -> str:
    return f"member_no_seq_{int(tenant_id)}"


def member_no_sequence(*, tenant_id: int) -> str:
    """PostgreSQL: the tenant's member-number sequence, created when missing, for SQL that
    numbers many new members itself (``nextval('<name>')``)."""
    sequence = _sequence(tenant_id)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {sequence} AS integer")
    return sequence


def member_numbers_allocate(*, tenant_id: int, count: int) -> list[int]:
    if count <= 0:
        return []
    if connection.vendor != "postgresql":
        highest = (
            Member.objects.unscoped()
            .filter(tenant_id=tenant_id)
            .aggregate(highest=Max("member_no"))["highest"]
            or 0
        )
        return list(range(highest + 1, highest + 1 + count))
    sequence = _sequence(tenant_id)
    with connection.cursor() as cursor:
        # One round trip for both statements.  The sequence name is built from an integer
        # tenant id, never from input.
        create = f"CREATE SEQUENCE IF NOT EXISTS {sequence} AS integer"
        allocate = f"SELECT nextval('{sequence}') FROM generate_series(1, %s)"  # noqa: S608
        cursor.execute(f"{create}; {allocate}", [count])
        return [row[0] for row in cursor.fetchall()]


def member_keys_allocate(*, tenant_id: int, count: int) -> list[tuple[int, int]]:
    """Ids and numbers for ``count`` new members, in one round trip.  The ids come from the
    table's own sequence (as ``IdReserver`` hands them out, gaps are harmless), so rows that
    point at a new member can be written before it or in the same statement batch."""
    if count <= 0:
        return []
    if connection.vendor != "postgresql":  # SQLite writes one transaction at a time
        numbers = member_numbers_allocate(tenant_id=tenant_id, count=count)
        highest = Member.objects.unscoped().aggregate(highest=Max("id"))["highest"] or 0
        return list(zip(range(highest + 1, highest + 1 + count), numbers, strict=True))
    sequence = _sequence(tenant_id)
    with connection.cursor() as cursor:
        create = f"CREATE SEQUENCE IF NOT EXISTS {sequence} AS integer"
        allocate = (
            f"SELECT nextval(pg_get_serial_sequence('{Member._meta.db_table}', 'id')), "  # noqa: S608
            f"nextval('{sequence}') FROM generate_series(1, %s)"
        )
        cursor.execute(f"{create}; {allocate}", [count])
        return [(member_id, number) for member_id, number in cursor.fetchall()]


def member_numbers_reset(*, tenant_id: int) -> None:
    """Move the sequence past every number in use (after COPY-based generation)."""
    if connection.vendor != "postgresql":
        return
    sequence = _sequence(tenant_id)
    highest = (
        Member.objects.unscoped()
        .filter(tenant_id=tenant_id)
        .aggregate(highest=Max("member_no"))["highest"]
        or 0
    )
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {sequence} AS integer")
        cursor.execute("SELECT setval(%s, %s, %s)", [sequence, max(highest, 1), highest > 0])

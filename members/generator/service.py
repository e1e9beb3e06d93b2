"""Build a synthetic tenant at scale: stores, staff, members with identities, two years of
orders, their stats.  Phases commit chunk by chunk; a second run with the same slug and
sizes resumes where the first stopped, or says why it cannot."""

import hashlib
import multiprocessing
import os
import random
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.db.models import Count, ExpressionWrapper, F, IntegerField
from django.utils import timezone
from tqdm import tqdm

from members import signals
from members.generator import orders as order_chunks
from members.generator import pools, rows, worker
from members.generator.plan import MEMBER_CHUNK, ORDER_CHUNK, Plan, plan_build
from members.generator.writers import IdReserver, portable_insert
from members.models import (
    Member,
    MemberIdentity,
    MemberStats,
    Order,
    OrderLine,
    Refund,
    TimelineEvent,
)
from members.services.numbers import member_numbers_reset
from scrm.db.copy import copy_insert
from scrm.models import Brand, Role, StaffMembership, Store, Tenant
from scrm.services import tenant_create
from scrm.tenancy import tenant_scope

PARALLEL_FROM = 50_000  # members; smaller runs generate in-process
GUIDES_PER_STORE = (2, 6)

TABLES = {
    "member": (Member, rows.MEMBER_COLUMNS),
    "identity": (MemberIdentity, rows.IDENTITY_COLUMNS),
    "timeline": (TimelineEvent, rows.TIMELINE_COLUMNS),
    "order": (Order, rows.ORDER_COLUMNS),
    "line": (OrderLine, rows.LINE_COLUMNS),
    "refund": (Refund, rows.REFUND_COLUMNS),
}


class GeneratorError(Exception):
    """The tenant holds data this run cannot continue from."""


@dataclass
class GenerateResult:
    tenant: Tenant
    owner_email: str
    owner_password: str = ""  # set when this run made the owner's login
    status: str = "generated"  # "generated" | "resumed" | "complete" (nothing left to do)
    timings: dict[str, float] = field(default_factory=dict)


def default_store_count(members: int) -> int:
    return max(3, min(300, members // 5000))


def tenant_generate(
    *,
    slug: str,
    members: int,
    orders: int,
    seed: int = 1,
    stores: int | None = None,
    catalog: str = "beauty",
    name: str = "",
    timeline: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> GenerateResult:
    """Create (or finish) tenant ``slug`` with ``members`` members and ``orders`` orders."""
    if members < 1 or orders < 0:
        raise GeneratorError("--members must be at least 1 and --orders at least 0")
    if catalog not in pools.CATALOGS:
        raise GeneratorError(f"unknown catalog {catalog!r}: {', '.join(pools.CATALOGS)}")
    timings: dict[str, float] = {}
    with _timed(timings, "plan"):
        plan = plan_build(seed=seed, members=members, orders=orders)
    with _timed(timings, "setup"):
        tenant, owner_email, password = _tenant_get_or_create(
            slug=slug, name=name or pools.CATALOGS[catalog].brand_name)
    result = GenerateResult(tenant=tenant, owner_email=owner_email, owner_password=password,
                            timings=timings)
    with tenant_scope(tenant):
        # Refuse (or stop) before adding anything to a tenant this run cannot continue.
        members_done, orders_done, complete = _resume_point(plan)
        if complete:
            result.status = "complete"
            return result
        if members_done or orders_done:
            result.status = "resumed"
        with _timed(timings, "setup"):
            if not Store.objects.exists():
                stores_and_staff_create(tenant=tenant, count=stores or default_store_count(
                    members), seed=seed)
        context = _context(tenant=tenant, slug=slug, seed=seed, catalog=catalog,
                           timeline=timeline)
        if workers is None:
            workers = min(4, (os.cpu_count() or 1) + 1) if (
                context.as_copy and members >= PARALLEL_FROM) else 0
        with _pipeline(workers) as run:
            with _timed(timings, "members"):
                _members_phase(plan, context, run, members_done, progress)
            with _timed(timings, "orders"):
                _orders_phase(plan, context, run, orders_done, progress)
        with _timed(timings, "stats"):
            member_stats_rebuild(tenant_id=tenant.pk)
        with _timed(timings, "member_no"):
            member_numbers_reset(tenant_id=tenant.pk)
        with _timed(timings, "derived"):
            signals.members_loaded.send(sender=Member, tenant_id=tenant.pk)
    return result


@contextmanager
def _timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - started


def _tenant_get_or_create(*, slug: str, name: str) -> tuple[Tenant, str, str]:
    owner_email = f"owner@{slug}.example"
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is not None:
        owner = tenant.memberships.filter(role=Role.OWNER).select_related("user").first()
        return tenant, owner.user.email if owner else owner_email, ""
    tenant, _owner, password = tenant_create(slug=slug, name=name, owner_email=owner_email)
    return tenant, owner_email, password


def _app_id(slug: str, app: str) -> str:
    return "wx" + hashlib.sha256(f"{slug}:{app}".encode()).hexdigest()[:16]


def _context(*, tenant: Tenant, slug: str, seed: int, catalog: str,
             timeline: bool) -> rows.ChunkContext:
    guides: dict[int, list[int]] = {}
    for store_id, guide_id in (StaffMembership.objects.filter(
            tenant=tenant, role=Role.GUIDE, is_active=True, store__isnull=False)
            .order_by("pk").values_list("store_id", "pk")):
        guides.setdefault(store_id, []).append(guide_id)
    city_index = {(city.province, city.name): i for i, city in enumerate(pools.CITIES)}
    stores = tuple(
        rows.StoreInfo(id=store.pk, code=store.code,
                       city_index=city_index.get((store.province, store.city), 0),
                       guide_ids=tuple(guides.get(store.pk, ())))
        for store in Store.objects.filter(is_active=True).order_by("pk")
    )
    return rows.ChunkContext(
        tenant_id=tenant.pk, seed=seed, now=int(time.time()), catalog=catalog, stores=stores,
        oa_app_id=_app_id(slug, "oa"), miniapp_app_id=_app_id(slug, "miniapp"),
        timeline=timeline, as_copy=connection.vendor == "postgresql",
    )


def _resume_point(plan: Plan) -> tuple[set[int], set[int], bool]:
    """The member chunks and orders chunks already committed, and whether all is done.

    Chunks commit whole, so each one is either absent or complete; anything else means the
    rows were not made by a run with these arguments."""
    members_done = Member.objects.count()
    orders_done = Order.objects.count()
    if members_done == 0 and orders_done == 0:
        return set(), set(), False
    expected = (f"the tenant has {members_done} members and {orders_done} orders, which a run "
                f"of generate_tenant with --members {plan.members} --orders {plan.orders} "
                f"--seed {plan.seed} does not leave behind. Use another slug.")
    member_chunks = _buckets(Member.objects.all(), "member_no", MEMBER_CHUNK)
    sizes = {index: min(MEMBER_CHUNK, plan.members - index * MEMBER_CHUNK)
             for index in range(plan.member_chunks)}
    if any(sizes.get(index) != count for index, count in member_chunks.items()):
        raise GeneratorError(expected)
    if orders_done == 0:
        return set(member_chunks), set(), False
    if len(member_chunks) != plan.member_chunks:
        raise GeneratorError(expected)
    order_chunks = (
        {index: total for index in range(plan.order_chunks)
         if (total := plan.order_offsets[index + 1] - plan.order_offsets[index])}
        if orders_done == plan.orders
        else _buckets(Order.objects.all(), "member__member_no", ORDER_CHUNK)
    )
    if any(plan.order_offsets[index + 1] - plan.order_offsets[index] != count
           for index, count in order_chunks.items()):
        raise GeneratorError(expected)
    complete = orders_done == plan.orders and MemberStats.objects.count() == plan.members
    return set(member_chunks), set(order_chunks), complete


def _buckets(queryset, number_field: str, size: int) -> dict[int, int]:
    bucket = ExpressionWrapper((F(number_field) - 1) / size, output_field=IntegerField())
    return dict(queryset.order_by().annotate(bucket=bucket).values("bucket")
                .annotate(rows=Count("pk")).values_list("bucket", "rows"))


def chunk_write(kind: str, context: rows.ChunkContext, chunk) -> int:
    """Generate one chunk and commit it (in a worker process, or in-process)."""
    generate = rows.members_generate if kind == "members" else order_chunks.orders_generate
    payloads = generate(context, chunk)
    with tenant_scope(context.tenant_id), transaction.atomic(), connection.cursor() as cursor:
        if context.as_copy:
            cursor.execute("SET LOCAL synchronous_commit = off")
        for table, payload in payloads.items():
            model, columns = TABLES[table]
            if context.as_copy:
                copy_insert(cursor, model=model, columns=columns, payload=payload)
            else:
                portable_insert(cursor, model=model, columns=columns, rows=payload)
    return len(chunk.ids)


class _Runner:
    """Generates and commits chunks in worker processes, each with its own connection, so
    both generation and PostgreSQL's inserts spread over the cores; or in-process."""

    def __init__(self, pool) -> None:
        self.pool = pool

    def run(self, kind: str, context: rows.ChunkContext, chunks: Iterator) -> Iterator[int]:
        if self.pool is None:
            for chunk in chunks:
                yield chunk_write(kind, context, chunk)
            return
        pending: deque = deque()
        for chunk in chunks:
            pending.append(self.pool.apply_async(worker.chunk_write, (kind, context, chunk)))
            if len(pending) > self.pool._processes:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


@contextmanager
def _pipeline(workers: int) -> Iterator[_Runner]:
    if workers <= 0:
        yield _Runner(None)
        return
    # Spawned, not forked: a forked child would share (and could close) our connection.
    database = dict(connection.settings_dict)
    pool = multiprocessing.get_context("spawn").Pool(
        workers, initializer=worker.worker_init, initargs=(database,))
    try:
        yield _Runner(pool)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _members_phase(plan: Plan, context: rows.ChunkContext, run: _Runner, done: set[int],
                   progress: bool) -> None:
    reserver = IdReserver(Member)
    todo = [index for index in range(plan.member_chunks) if index not in done]

    def chunks() -> Iterator[rows.MemberChunk]:
        for index in todo:
            start = index * MEMBER_CHUNK
            size = min(MEMBER_CHUNK, plan.members - start)
            yield rows.MemberChunk(index=index, first_no=start + 1,
                                   ids=reserver.reserve(size),
                                   joined_days_ago=plan.joined_days_ago[start:start + size])

    made = sum(min(MEMBER_CHUNK, plan.members - index * MEMBER_CHUNK) for index in done)
    with tqdm(total=plan.members, initial=made, desc="members", unit=" members",
              disable=not progress, smoothing=0.1) as bar:
        for count in run.run("members", context, chunks()):
            bar.update(count)


def _buyers(first_no: int, last_no: int) -> list[rows.BuyerRow]:
    found = [
        rows.BuyerRow(id=pk, member_no=number, store_id=store_id, source_channel=source,
                      joined_at=int(created_at.timestamp()))
        for pk, number, store_id, source, created_at in Member.objects.filter(
            member_no__gte=first_no, member_no__lte=last_no).order_by("member_no")
        .values_list("pk", "member_no", "store_id", "source_channel", "created_at")
    ]
    if len(found) != last_no - first_no + 1:
        raise GeneratorError(f"members {first_no}..{last_no} are incomplete")
    return found


def _orders_phase(plan: Plan, context: rows.ChunkContext, run: _Runner, done: set[int],
                  progress: bool) -> None:
    reserver = IdReserver(Order)

    def chunk_total(index: int) -> int:
        return plan.order_offsets[index + 1] - plan.order_offsets[index]

    todo = [index for index in range(plan.order_chunks)
            if index not in done and chunk_total(index)]

    def chunks() -> Iterator[rows.OrderChunk]:
        for index in todo:
            start = index * ORDER_CHUNK
            stop = min(start + ORDER_CHUNK, plan.members)
            pairs = [(buyer, count) for buyer, count in zip(
                _buyers(start + 1, stop), plan.order_counts[start:stop], strict=True) if count]
            yield rows.OrderChunk(index=index, first_order=plan.order_offsets[index],
                                  buyers=[buyer for buyer, _ in pairs],
                                  counts=[count for _, count in pairs],
                                  ids=reserver.reserve(chunk_total(index)))

    with tqdm(total=plan.orders, initial=sum(chunk_total(index) for index in done),
              desc="orders", unit=" orders", disable=not progress, smoothing=0.1) as bar:
        for count in run.run("orders", context, chunks()):
            bar.update(count)


def member_stats_rebuild(*, tenant_id: int) -> None:
    """Every member's stats from their orders in one set-based statement, with the same
    rules as ``member_stats_refresh`` (fully refunded orders do not count as orders)."""
    counted = [Order.Status.PAID.value, Order.Status.PARTIALLY_REFUNDED.value]
    stats, member, order = (connection.ops.quote_name(model._meta.db_table)
                            for model in (MemberStats, Member, Order))
    counted_sql = "status IN (%s, %s)"
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Fresh statistics after a bulk load, or the planner expects one row per table
            # and loops; ANALYZE only warns when the role does not own the tables.
            for model in (Member, Order, OrderLine, MemberIdentity):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        # Table names come from the models; every value is a parameter.
        cursor.execute(
            f"INSERT INTO {stats} (tenant_id, member_id, order_count, total_spent_fen, "  # noqa: S608
            f"refunded_fen, first_order_at, last_order_at, updated_at) "
            f"SELECT m.tenant_id, m.id, COALESCE(o.order_count, 0), "
            f"COALESCE(o.gross - o.refunded, 0), COALESCE(o.refunded, 0), o.first_at, "
            f"o.last_at, %s FROM {member} m LEFT JOIN ("
            f"  SELECT member_id, "
            f"  SUM(CASE WHEN {counted_sql} THEN 1 ELSE 0 END) AS order_count, "
            f"  SUM(amount_fen) AS gross, SUM(refunded_fen) AS refunded, "
            f"  MIN(CASE WHEN {counted_sql} THEN paid_at END) AS first_at, "
            f"  MAX(CASE WHEN {counted_sql} THEN paid_at END) AS last_at "
            f"  FROM {order} WHERE tenant_id = %s GROUP BY member_id"
            f") o ON o.member_id = m.id WHERE m.tenant_id = %s "
            f"ON CONFLICT (tenant_id, member_id) DO UPDATE SET "
            f"order_count = excluded.order_count, total_spent_fen = excluded.total_spent_fen, "
            f"refunded_fen = excluded.refunded_fen, first_order_at = excluded.first_order_at, "
            f"last_order_at = excluded.last_order_at, updated_at = excluded.updated_at",
            [timezone.now(), *counted, *counted, *counted, tenant_id, tenant_id],
        )
        if connection.vendor == "postgresql":
            # The stats just written: without them the guide's lists (joined to the stats)
            # are planned for an empty table and take seconds.
            cursor.execute(f"ANALYZE {stats}")


def stores_and_staff_create(*, tenant: Tenant, count: int, seed: int = 1,
                            guides_per_store: tuple[int, int] = GUIDES_PER_STORE) -> list[Store]:
    """``count`` stores across China's big cities, each with a manager and a few guides.
    The generated staff have no usable password: they are there to own members."""
    rng = random.Random(f"{seed}:stores")  # noqa: S311 - synthetic data, by seed
    brand = Brand.objects.order_by("pk").first()
    stores = Store.objects.bulk_create(_stores(tenant=tenant, brand=brand, count=count, rng=rng))
    user_model = get_user_model()
    staff = []  # (email, role, store, display name)
    for store in stores:
        staff.append((f"manager.{store.code.lower()}@{tenant.slug}.example",
                      Role.STORE_MANAGER, store, _staff_name(rng)))
        for number in range(1, rng.randint(*guides_per_store) + 1):
            staff.append((f"guide{number}.{store.code.lower()}@{tenant.slug}.example",
                          Role.GUIDE, store, _staff_name(rng)))
    user_model.objects.bulk_create(
        [user_model(username=email, email=email, password=make_password(None), is_staff=True)
         for email, *_ in staff], ignore_conflicts=True)
    users = user_model.objects.in_bulk([email for email, *_ in staff], field_name="username")
    StaffMembership.objects.bulk_create([
        StaffMembership(user=users[email], tenant=tenant, role=role, store=store,
                        display_name=display_name,
                        wecom_userid=email.split("@")[0].replace(".", "_"))
        for email, role, store, display_name in staff
    ], ignore_conflicts=True)
    return stores


def _stores(*, tenant: Tenant, brand: Brand | None, count: int,
            rng: random.Random) -> list[Store]:
    # Largest-remainder share of the stores by city weight: the big cities get most.
    total = sum(pools.CITY_WEIGHTS)
    quotas = [count * weight / total for weight in pools.CITY_WEIGHTS]
    shares = [int(quota) for quota in quotas]
    by_remainder = sorted(range(len(quotas)), key=lambda i: quotas[i] - shares[i], reverse=True)
    for index in by_remainder[: count - sum(shares)]:
        shares[index] += 1
    stores, names = [], set()
    for city, share in zip(pools.CITIES, shares, strict=True):
        for number in range(1, share + 1):
            district = city.districts[(number - 1) % len(city.districts)]
            name = f"{city.name}{district}{rng.choice(pools.MALLS)}店"
            while name in names:
                name = f"{city.name}{district}{rng.choice(pools.MALLS)}{rng.randint(2, 9)}号店"
            names.add(name)
            stores.append(Store(tenant=tenant, brand=brand, code=f"{city.code}{number:03d}",
                                name=name, region=city.region, province=city.province,
                                city=city.name))
    return stores


def _staff_name(rng: random.Random) -> str:
    surname = rng.choices(pools.SURNAMES, weights=pools.SURNAME_WEIGHTS)[0]
    given = pools.GIVEN_FEMALE_MODERN if rng.random() < 0.7 else pools.GIVEN_MALE_MODERN
    return surname + rng.choice(given)

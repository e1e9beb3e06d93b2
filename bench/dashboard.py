"""Server time of every dashboard page and guide page on a generated tenant.

    .venv/bin/python bench/dashboard.py --generate   # a fresh database scrm_bench_dashboard
                                                     # with 1M members and 10M orders (~8 min
                                                     # on an idle machine), then --seed
    .venv/bin/python bench/dashboard.py --seed       # loyalty and RFM on it (see below)
    .venv/bin/python bench/dashboard.py              # time the pages
    .venv/bin/python bench/dashboard.py --match /guide/   # only the pages whose URL has this

``--seed`` gives the generated tenant what the dashboard shows beyond members and orders:
a points lot and account per member (set-based SQL: bench data, not a use case), a tier
programme on spend (the real service, created inactive so that its sweep does not start;
the standings are then set by SQL, see SEED_TIERS), an RFM run and the lifecycle pass (the
real services), then a VACUUM ANALYZE of the database, which autovacuum would have done in a
deployment (it is off on the bench machines): without it the stats table has no planner
statistics and the guide's lists take seconds.

Each page is requested with Django's test client as the tenant's owner (the guide pages as a
guide): once with the dashboard cache empty ("cold") and then ``--repeat`` times ("warm",
the median).  Then the cache is emptied once more, the report warmer
(``scrm.tasks.reports_warm_task``, what the ``dashboard-reports-warm`` beat runs every few
minutes) runs for the tenant, and each page is requested once ("warmed": what a user meets
in a deployment whose beat is running).  The time is the test client's round trip in this
process: the view, its queries and the template, without a network; next to the cold and
warmed times, the CPU time they took in this process plus its PostgreSQL backend ("cpu",
which a busy machine inflates far less than the wall time).  The load average is printed
before and after: on a shared machine it says how far the figures are from an idle one.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE = "scrm_bench_dashboard"
SLUG = "big"
LIMIT_MS = 300


def setup(database: str) -> None:
    os.environ["DATABASE_URL"] = f"postgres://scrm@127.0.0.1:5432/{database}"
    os.environ.pop("REDIS_URL", None)  # the in-process cache: a cold start is a cold start
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrm.settings")
    django.setup()


def generate(database: str, members: int, orders: int) -> None:
    import subprocess

    from bench.common import PYTHON, database_create

    url = database_create(database)
    subprocess.run([PYTHON, "manage.py", "generate_tenant", SLUG, "--members", str(members),
                    "--orders", str(orders)], cwd=ROOT, env={**os.environ, "DATABASE_URL": url},
                   check=True)


SEED_POINTS = """
WITH earned AS (
    INSERT INTO points_pointsentry (tenant_id, member_id, kind, points, balance_after,
        shortfall_delta, reason, ref_type, ref_id, operator, created_at)
    SELECT tenant_id, id, 'earn', p, p, 0, 'bench', '', '', 'bench', now()
    FROM (SELECT tenant_id, id, 1 + (random() * 3000)::int AS p FROM members_member
          WHERE tenant_id = %(tenant)s AND status = 'active') m
    RETURNING id, tenant_id, member_id, points
), lots AS (
    INSERT INTO points_pointslot (tenant_id, member_id, earned, remaining, earned_at,
        expires_at, source_entry_id, status)
    SELECT tenant_id, member_id, points, points, now(),
           now() + make_interval(days => (random() * 400)::int), id, 'active' FROM earned
    RETURNING tenant_id, member_id, remaining
)
INSERT INTO points_pointsaccount (tenant_id, member_id, balance, shortfall, lifetime_earned,
    is_active, created_at, updated_at)
SELECT tenant_id, member_id, remaining, 0, remaining, true, now(), now() FROM lots
"""
# Every member's level from their spend, and each level's tag count, in two statements: the
# service's sweep places a million members correctly but takes the better part of an hour on
# a busy 2-core machine, and the dashboard reads only the result.
SEED_TIERS = """
UPDATE points_membertier t SET level_id = (
    SELECT l.id FROM points_tierlevel l WHERE l.program_id = t.program_id
    AND l.threshold <= COALESCE(s.total_spent_fen, 0) ORDER BY l.rank DESC LIMIT 1)
FROM members_memberstats s WHERE s.tenant_id = t.tenant_id AND s.member_id = t.member_id
AND t.tenant_id = %(tenant)s;
UPDATE tags_tag g SET member_count = (SELECT count(*) FROM points_membertier t
    WHERE t.tenant_id = g.tenant_id AND t.level_id = l.id)
FROM points_tierlevel l WHERE l.tag_id = g.id AND g.tenant_id = %(tenant)s
"""
LEVELS = [{"code": "silver", "name": "银卡", "threshold": 0},
          {"code": "gold", "name": "金卡", "threshold": 200_000, "points_multiplier": "1.2"},
          {"code": "platinum", "name": "白金", "threshold": 1_000_000,
           "points_multiplier": "1.5"},
          {"code": "diamond", "name": "黑钻", "threshold": 3_000_000, "points_multiplier": "2"}]


def seed() -> None:
    from django.db import connection

    from campaigns.rfm.services.lifecycle import lifecycle_pass
    from campaigns.rfm.services.runs import rfm_run_now
    from points.models import PointsAccount, TierProgram
    from points.services.tiers import tier_program_save
    from scrm.access import ALL_SCOPES, Actor
    from scrm.models import Tenant
    from scrm.tenancy import tenant_scope

    tenant = Tenant.objects.get(slug=SLUG)
    actor = Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))
    with tenant_scope(tenant):
        for label, step in (
            ("points", lambda: PointsAccount.objects.exists() or connection.cursor().execute(
                SEED_POINTS, {"tenant": tenant.pk})),
            ("tier programme", lambda: TierProgram.objects.exists() or tier_program_save(
                actor=actor, changes={"name": "会员等级", "basis": "spend", "window_days": 365,
                                      "is_active": False}, levels=LEVELS)),
            ("tier standings", lambda: _standings(tenant)),
            ("rfm and lifecycle", lambda: lifecycle_pass(rfm_run=rfm_run_now(actor=actor))),
        ):
            started = time.perf_counter()
            step()
            print(f"seed {label}: {time.perf_counter() - started:.1f}s", flush=True)
    # What autovacuum would have done by now in a deployment (it may be off here): planner
    # statistics for every bulk-loaded table (the generator's member stats, refunds and tags
    # among them) and visibility maps for index-only scans.
    started = time.perf_counter()
    connection.cursor().execute("VACUUM ANALYZE")
    print(f"seed vacuum analyze: {time.perf_counter() - started:.1f}s", flush=True)


def _standings(tenant) -> None:
    """Every member's standing, by SQL (see SEED_TIERS), and the programme switched on."""
    from django.db import connection

    from points.models import TierProgram

    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO points_membertier (tenant_id, program_id, member_id, "
                       "growth_total, is_override, override_reason, updated_at) "
                       "SELECT m.tenant_id, p.id, m.id, 0, false, '', now() FROM members_member m "
                       "JOIN points_tierprogram p ON p.tenant_id = m.tenant_id "
                       "WHERE m.tenant_id = %(tenant)s ON CONFLICT DO NOTHING",
                       {"tenant": tenant.pk})
        cursor.execute(SEED_TIERS, {"tenant": tenant.pk})
    TierProgram.objects.update(is_active=True)


def pages(tenant) -> tuple[list[str], list[str], list[tuple[str, dict]]]:
    from members.models import Member
    from scrm.models import Role, StaffMembership
    from scrm.tenancy import tenant_scope
    from tags.models import Tag

    with tenant_scope(tenant):
        member = Member.objects.order_by("-id").first()
        tag = Tag.objects.order_by("-member_count").first()
        store = member.store.code if member.store else ""
    operator = ["/dashboard/"]
    operator += [f"/dashboard/panels/{name}/?period={days}" for name in (
        "members", "channels") for days in (7, 30, 90)]
    operator += ["/dashboard/panels/loyalty/", "/dashboard/panels/rfm/",
                 "/dashboard/panels/campaigns/", "/members/", f"/members/?store={store}",
                 f"/members/?tag={tag.pk}" if tag else "/members/?created_after=2026-01-01",
                 f"/members/?store={store}&created_after=2026-06-01",
                 f"/members/{member.pk}/", f"/members/{member.pk}/tags/",
                 f"/members/{member.pk}/points/", f"/members/{member.pk}/rfm/",
                 f"/members/{member.pk}/wechat/", "/segments/new/", "/tags/", "/loyalty/tiers/",
                 "/jobs/", "/channels/"]
    guide = StaffMembership.objects.filter(tenant=tenant, role=Role.GUIDE).order_by("pk").first()
    with tenant_scope(tenant):
        customer = Member.objects.filter(guide=guide).order_by("-id").first()
    guide_pages = ["/guide/", "/guide/?quick=birthday", "/guide/?quick=dormant",
                   "/guide/?quick=high_value", "/guide/?quick=new", "/guide/tasks/",
                   "/guide/performance/?period=30", f"/guide/customers/{customer.pk}/"]
    posts = [("/segments/count/", {"expression": '{"all": [{"field": "city", "op": "eq", '
                                   '"value": "上海"}, {"field": "total_spent_fen", "op": "gte", '
                                   '"value": 100000}]}'}),
             ("/segments/count/", {"expression": '{"any": [{"field": "last_order_days", "op": '
                                   '"between", "value": [30, 90]}, {"not": {"field": "gender", '
                                   '"op": "eq", "value": "female"}}]}'})]
    return operator, guide_pages, posts


def _cpu_ms() -> float:
    """CPU ms so far of this process and of its PostgreSQL backend (/proc: the database runs
    on this machine)."""
    from django.db import connection

    from bench.orders_bulk import _cpu_seconds

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    return (time.process_time() + _cpu_seconds(backend)) * 1000


def timed(request) -> tuple[float, float, int]:
    """(wall ms, CPU ms, status) of one request."""
    cpu = _cpu_ms()
    started = time.perf_counter()
    response = request()
    wall = (time.perf_counter() - started) * 1000
    return wall, _cpu_ms() - cpu, response.status_code


def measure(label: str, request, repeat: int) -> dict:
    from django.core.cache import cache

    cache.clear()
    cold, cold_cpu, status = timed(request)
    warm = [timed(request)[0] for _ in range(repeat)]
    return {"page": label, "request": request, "status": status, "cold": cold,
            "cold_cpu": cold_cpu, "warm": statistics.median(warm)}


def measure_warmed(tenant, rows: list[dict]) -> None:
    """Each page's first request after the report warmer has run on an empty cache."""
    from django.core.cache import cache

    from scrm.tasks import reports_warm_task

    cache.clear()
    cpu, started = _cpu_ms(), time.perf_counter()
    warmed = reports_warm_task(tenant.pk)
    print(f"report warmer: {warmed} reports in {time.perf_counter() - started:.1f} s "
          f"(CPU {(_cpu_ms() - cpu) / 1000:.1f} s, process + PostgreSQL)", flush=True)
    for row in rows:
        row["warmed"], row["warmed_cpu"], _status = timed(row["request"])


def table(rows: list[dict]) -> None:
    if not rows:
        print("no page matches")
        return
    width = max(len(row["page"]) for row in rows)
    print(f"{'page':<{width}}  status  cold ms  (cpu)  warmed ms  (cpu)  warm ms")
    for row in rows:
        seen = max(row["warmed"], row["warm"])
        flag = "  > 300 ms" if seen > LIMIT_MS else (
            "  > 300 ms cold only" if row["cold"] > LIMIT_MS else "")
        print(f"{row['page']:<{width}}  {row['status']:>6}  {row['cold']:>7.0f}  "
              f"{row['cold_cpu']:>5.0f}  {row['warmed']:>9.0f}  {row['warmed_cpu']:>5.0f}  "
              f"{row['warm']:>7.0f}{flag}")
    for column in ("cold", "warmed", "warm"):
        slowest = max(rows, key=lambda row, c=column: row[c])
        print(f"slowest {column}: {slowest['page']} {slowest[column]:.0f} ms")


def audience_folded(tenant) -> None:
    """Fold the audience index's dirty members, as the every-minute ``audience-fold`` beat
    does in a deployment (none runs here): counts read the dirty members' rows one by one."""
    from scrm.tenancy import tenant_scope
    from tags.audience.index import audience_fold

    started = time.perf_counter()
    with tenant_scope(tenant):
        folded = audience_fold()
    print(f"audience index: {folded} dirty members folded in "
          f"{time.perf_counter() - started:.1f}s", flush=True)


def bench(repeat: int, slug: str, match: str = "") -> None:
    from django.test import Client

    from scrm.models import Role, StaffMembership, Tenant

    tenant = Tenant.objects.get(slug=slug)
    audience_folded(tenant)
    operator, guide_pages, posts = pages(tenant)
    operator = [url for url in operator if match in url]
    guide_pages = [url for url in guide_pages if match in url]
    posts = [(url, data) for url, data in posts if match in url]
    owner = StaffMembership.objects.filter(tenant=tenant, role=Role.OWNER).first()
    guide = StaffMembership.objects.filter(tenant=tenant, role=Role.GUIDE).order_by("pk").first()
    as_owner, as_guide = Client(), Client()
    as_owner.force_login(owner.user)
    as_guide.force_login(guide.user)
    as_owner.get("/dashboard/")  # the process's first request: imports, URL resolver
    rows = [measure(url, lambda u=url: as_owner.get(u), repeat) for url in operator]
    rows += [measure(f"POST {url} {data['expression'][:40]}…",
                     lambda u=url, d=data: as_owner.post(u, d), repeat) for url, data in posts]
    rows += [measure(url, lambda u=url: as_guide.get(u), repeat) for url in guide_pages]
    measure_warmed(tenant, rows)
    table(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--generate", action="store_true")
    parser.add_argument("--seed", action="store_true")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--slug", default=SLUG, help="the tenant (scrm_bench_rfm: bench)")
    parser.add_argument("--match", default="", help="only the pages whose URL contains this")
    options = parser.parse_args()
    if options.generate:
        generate(options.database, options.members, options.orders)
    setup(options.database)
    if options.generate or options.seed:
        seed()
    before = os.getloadavg()
    print(f"load average before: {before[0]:.2f} {before[1]:.2f} {before[2]:.2f} "
          f"({os.cpu_count()} cores)")
    bench(options.repeat, options.slug, options.match)
    after = os.getloadavg()
    print(f"load average after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")


if __name__ == "__main__":
    main()

"""Audience selection at scale: counts, snapshots, bulk tagging, index size.

    .venv/bin/python bench/audience.py --members 10000000 --tags 6000

Builds a tenant in a fresh PostgreSQL database (scrm_bench_audience, role scrm, so row-level
security is on as in production): members with random attributes and stats, 6,000 tags whose
sizes follow a Zipf curve from 50% down to 0.01% of members, then measures:
- the audience index rebuild (time, size);
- counts of random 5-clause expressions through the index (p50/p99) against the same
  expressions as plain SQL;
- a snapshot of a ~3M-member (30%) segment;
- bulk tagging of 1M members through the job runner.
"""

import argparse
import io
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
DB = os.environ.get("BENCH_DB", "scrm_bench_audience")
CITIES = ["上海", "北京", "杭州", "广州", "深圳", "成都", "南京", "武汉", "西安", "重庆",
          "苏州", "天津", "长沙", "郑州", "青岛"]


def prepare_database(reuse: bool = False) -> None:
    import psycopg2

    from scrm.devdb import postgres_prepare

    url = postgres_prepare()
    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        if not reuse:
            cursor.execute(f"DROP DATABASE IF EXISTS {DB}")
            cursor.execute(f"CREATE DATABASE {DB} OWNER scrm")
    conn.close()
    os.environ["DATABASE_URL"] = url.rsplit("/", 1)[0] + f"/{DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrm.settings")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    os.environ.pop("REDIS_URL", None)


def timed(label: str):
    class Timer:
        def __enter__(self):
            self.start = time.perf_counter()
            return self

        def __exit__(self, *exc):
            self.seconds = time.perf_counter() - self.start
            print(f"{label}: {self.seconds:.2f} s", flush=True)

    return Timer()


def generate(tenant, members: int, tags: int, rng: np.random.Generator):
    from django.db import connection, transaction

    from members.services.numbers import member_numbers_reset
    from tags.models import Tag, TagGroup

    cities = "ARRAY[" + ",".join(f"'{c}'" for c in CITIES) + "]"
    with timed(f"members ({members:,}) and stats"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO members_member (tenant_id, member_no, name, gender, birthday, province,
                city, phone_encrypted, phone_hash, phone_masked, source_channel, first_touch,
                marketing_consent, status, created_at, updated_at)
            SELECT %s, g, 'M' || g, (ARRAY['male','female','female','unknown'])[1 + (g %% 4)],
                CASE WHEN g %% 5 = 0 THEN NULL
                     ELSE DATE '1960-01-01' + ((g::bigint * 7919) %% 16000)::int END,
                '', ({cities})[1 + (g * 31) %% {len(CITIES)}], '', '', '',
                (ARRAY['wechat_oa','wecom','miniapp','store','tmall'])[1 + (g %% 5)], '{{}}',
                g %% 3 <> 0, 'active', now() - ((g * 13) %% 730) * interval '1 day', now()
            FROM generate_series(1, %s) g""", [tenant.pk, members])
        cursor.execute("""
            INSERT INTO members_memberstats (tenant_id, member_id, order_count, total_spent_fen,
                refunded_fen, first_order_at, last_order_at, updated_at)
            SELECT m.tenant_id, m.id, c, c * (5000 + (m.member_no * 17) %% 60000), 0,
                CASE WHEN c > 0 THEN now() - ((m.member_no * 7) %% 700 + 30) * interval '1 day' END,
                CASE WHEN c > 0 THEN now() - ((m.member_no * 11) %% 700) * interval '1 day' END,
                now()
            FROM (SELECT *, (ARRAY[0,0,1,1,1,2,2,3,5,12])[1 + (member_no * 37) %% 10] AS c
                  FROM members_member WHERE tenant_id = %s) m""", [tenant.pk])
        member_numbers_reset(tenant_id=tenant.pk)
    group = TagGroup.objects.create(tenant=tenant, name="偏好")
    tag_rows = Tag.objects.bulk_create([Tag(tenant=tenant, group=group, name=f"标签{i}")
                                        for i in range(tags)])
    # Zipf sizes from 50% down to 0.01% of members.
    exponent = np.log(5000) / np.log(tags)
    sizes = (0.5 * members / np.arange(1, tags + 1) ** exponent).astype(np.int64)
    with connection.cursor() as cursor:
        cursor.execute("SELECT member_no, id FROM members_member WHERE tenant_id = %s "
                       "ORDER BY member_no", [tenant.pk])
        ids = np.array([row[1] for row in cursor.fetchall()], dtype=np.int64)
    total = int(sizes.sum())
    with timed(f"member tags ({total:,} rows)"):
        for start in range(0, tags, 200):
            buffer = io.StringIO()
            for tag, size in zip(tag_rows[start:start + 200], sizes[start:start + 200],
                                 strict=True):
                chosen = rng.choice(members, size=int(size), replace=False) if size < members / 4 \
                    else np.flatnonzero(rng.random(members) < size / members)
                lines = "\n".join(f"{tenant.pk}\t{member_id}\t{tag.pk}\tmanual\t\t2026-11-01"
                                  for member_id in ids[chosen])
                if lines:
                    buffer.write(lines + "\n")
            buffer.seek(0)
            # Row-level security refuses COPY into the table itself: stage, then insert.
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("CREATE TEMP TABLE stage_membertag (tenant_id bigint, "
                               "member_id bigint, tag_id bigint, source text, tagged_by text, "
                               "created_at timestamptz) ON COMMIT DROP")
                cursor.copy_expert("COPY stage_membertag FROM STDIN", buffer)
                cursor.execute("INSERT INTO tags_membertag (tenant_id, member_id, tag_id, "
                               "source, tagged_by, created_at) SELECT * FROM stage_membertag")
    # Fresh statistics, as autovacuum would give production: without them the planner takes a
    # large tag for a one-row one, and the plain-SQL comparison never finishes.
    with connection.cursor() as cursor:
        for table in ("members_member", "members_memberstats", "tags_membertag"):
            cursor.execute(f"ANALYZE {table}")
    return tag_rows, sizes


def expression(rng: random.Random, tags, sizes) -> dict:
    big = [t.pk for t, s in zip(tags, sizes, strict=True) if s > 0.05 * sizes[0] * 2]
    return {"all": [
        {"tag": rng.choice(big)},
        {"any": [{"tag": rng.choice(tags).pk}, {"tag": rng.choice(tags).pk}]},
        {"not": {"tag": rng.choice(tags[:50]).pk}},
        {"field": "city", "op": "in", "value": rng.sample(CITIES, 3)},
        {"field": "total_spent_fen", "op": "gte", "value": rng.choice([10000, 50000, 100000])},
    ]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--tags", type=int, default=6000)
    parser.add_argument("--counts", type=int, default=200)
    parser.add_argument("--sql-counts", type=int, default=5)
    parser.add_argument("--bulk", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the database of the last run and measure again")
    args = parser.parse_args()
    prepare_database(reuse=args.reuse)
    import django

    django.setup()
    from django.core.management import call_command
    from pyroaring import BitMap

    from members.models import Member
    from scrm.access import ALL_SCOPES, Actor
    from scrm.services import tenant_create
    from scrm.tenancy import tenant_scope
    from tags.audience.expressions import Parser
    from tags.audience.index import (
        _bitmaps,
        _payloads,
        audience_bitmap,
        audience_index_size,
        audience_rebuild,
    )
    from tags.audience.sql import to_q
    from tags.models import Segment, Tag
    from tags.services.segments import segment_snapshot
    from tags.services.tagging import tag_bulk_job_create

    call_command("migrate", verbosity=0)
    if args.reuse:
        from scrm.models import Tenant

        tenant = Tenant.objects.get(slug="bench")
    else:
        tenant, _owner, _pw = tenant_create(slug="bench", name="Bench",
                                            owner_email="b@bench.cn")
    actor = Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))
    rng = random.Random(1)
    with tenant_scope(tenant):
        if args.reuse:
            tags = list(Tag.objects.filter(group__name="偏好").order_by("pk"))
            sizes = [tag.member_count for tag in tags]
            Tag.objects.filter(name="bulk").delete()
        else:
            tags, sizes = generate(tenant, args.members, args.tags, np.random.default_rng(1))
            with timed("audience index rebuild"):
                built = audience_rebuild()
            print("index:", built, flush=True)
        print("index size:", audience_index_size(), flush=True)
        expressions = [Parser().parse(expression(rng, tags, sizes)) for _ in range(args.counts)]
        audience_bitmap(expressions[0])  # warm the process cache once
        latencies = []
        for node in expressions:
            start = time.perf_counter()
            count = len(audience_bitmap(node))
            latencies.append((time.perf_counter() - start) * 1000)
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"index count, 5 clauses: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
              f"(n={len(latencies)}, last count {count:,})", flush=True)
        sql_times = []
        for node in expressions[:args.sql_counts]:
            start = time.perf_counter()
            sql_count = Member.objects.filter(status="active").filter(to_q(node)).count()
            sql_times.append((time.perf_counter() - start) * 1000)
            assert sql_count == len(audience_bitmap(node)), "index and SQL disagree"
        sql_median = statistics.median(sql_times)
        print(f"plain SQL count, same expressions: median {sql_median:.0f} ms "
              f"-> index is {sql_median / p50:.0f}x faster (answers identical)", flush=True)
        cached = sum(len(b.serialize()) for b in _bitmaps.values()) + sum(
            v.nbytes + n.nbytes for v, n in _payloads.values())
        print(f"process cache: {len(_bitmaps)} bitmaps, {cached / 1e6:.1f} MB; "
              f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB")
        big = next(t for t, s in zip(tags, sizes, strict=True) if s <= 0.3 * args.members)
        segment = Segment.objects.create(tenant=tenant, name="30%", expression={"any": [
            {"tag": big.pk}, {"field": "city", "op": "eq", "value": "上海"}]})
        with timed("snapshot") as timer:
            snapshot = segment_snapshot(actor=actor, segment=segment)
        print(f"snapshot of {snapshot.member_count:,} members: {timer.seconds:.2f} s, "
              f"{len(bytes(snapshot.bitmap)) / 1e6:.2f} MB", flush=True)
        new_tag = Tag.objects.create(tenant=tenant, group=tags[0].group, name="bulk")
        targets = BitMap(range(1, min(args.bulk, args.members) + 1))
        with timed(f"bulk tagging {len(targets):,} members") as timer:
            # Celery runs eagerly here: the job runs as soon as it is queued.
            job = tag_bulk_job_create(actor=actor, tag=new_tag, action="add",
                                      member_nos=targets)
        job.refresh_from_db()
        print(f"bulk job: {job.result}, {len(targets) / timer.seconds:,.0f} members/s")
        assert len(audience_bitmap(Parser().parse({"tag": new_tag.pk}))) == len(targets)


if __name__ == "__main__":
    main()

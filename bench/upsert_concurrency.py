"""Latency and throughput of ``POST /api/v1/members/upsert/`` under concurrent clients.

    .venv/bin/python bench/upsert_concurrency.py [--clients 16] [--seconds 20]

Uses the database and server helpers of ``bench/orders_bulk.py``: a fresh ``scrm_bench``
database, a tenant with an API key, gunicorn on 127.0.0.1.  Seeds ``--known`` members
through the bulk order endpoint, then ``--clients`` threads upsert for ``--seconds`` seconds:
``--existing`` of the calls name a known member (by phone, or by openid, sometimes with a
new city), the others a new person (phone and openid).  Prints requests/s, p50/p95/p99
latency and the server's CPU time per request.  Each client stops at the deadline or after
``--max-requests``, whichever comes first.
"""

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.orders_bulk import (  # noqa: E402
    HOST,
    CpuMeter,
    batches_make,
    cpu_report,
    database_create,
    gunicorn,
    phone_for,
    post_all,
    tenant_setup,
)

SEED_BUYER = 0  # the known members are buyers 0 .. --known - 1
NEW_BUYER = 5 * 10**8  # each client's new people start at NEW_BUYER + client * 10**7
CITIES = ("上海", "杭州", "北京", "深圳")


def payload(rng: random.Random, *, known: int, existing: float, new_number: int) -> bytes:
    if rng.random() < existing:
        number = SEED_BUYER + rng.randrange(known)
        if rng.random() < 0.5:
            identities = [{"kind": "phone", "value": phone_for(number)}]
        else:
            identities = [
                {"kind": "wechat_openid", "app_id": "wxbench", "value": f"o{number:012d}"}
            ]
        body = {"identities": identities, "name": f"顾客{number}"}
        if rng.random() < 0.2:
            body["city"] = rng.choice(CITIES)
    else:
        body = {
            "identities": [
                {"kind": "phone", "value": phone_for(new_number)},
                {"kind": "wechat_openid", "app_id": "wxbench", "value": f"o{new_number:012d}"},
            ],
            "name": f"新客{new_number}",
            "city": rng.choice(CITIES),
        }
    return json.dumps(body, ensure_ascii=False).encode()


def client_run(
    *, index: int, port: int, secret: str, args: argparse.Namespace, deadline: float,
    latencies: list[float], failures: list[str],
) -> None:  # fmt: skip
    rng = random.Random(index)
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    new_number = NEW_BUYER + index * 10**7
    for _ in range(args.max_requests):
        if time.perf_counter() >= deadline:
            break
        body = payload(rng, known=args.known, existing=args.existing, new_number=new_number)
        new_number += 1
        started = time.perf_counter()
        connection.request("POST", "/api/v1/members/upsert/", body=body, headers=headers)
        response = connection.getresponse()
        text = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status not in (200, 201):
            failures.append(f"{response.status} {text[:200]!r}")
    connection.close()


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=1000)[int(share * 1000) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--known", type=int, default=5000, help="members seeded before")
    parser.add_argument("--existing", type=float, default=0.5, help="share naming a known one")
    parser.add_argument("--max-requests", type=int, default=100_000, help="per client")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--mute-receivers", action="store_true",
                        help="diagnostic: disconnect other apps' after-commit receivers")
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 1 <= args.seconds <= 300:
        raise SystemExit("--clients must be 1..64 and --seconds 1..300")
    if not 1 <= args.known <= 10**6:
        raise SystemExit("--known must be 1..1,000,000")

    url = database_create()
    secret = tenant_setup(url)
    seed = batches_make(
        batches=-(-args.known // 1000), size=min(args.known, 1000), repeat=0, stores=20,
        prefix="S", first_buyer=SEED_BUYER,
    )  # fmt: skip
    with gunicorn(
        url, port=args.port, workers=args.workers, threads=args.threads,
        mute_receivers=args.mute_receivers,
    ) as server:  # fmt: skip
        post_all(server.base, secret, seed, clients=2)
        port = int(server.base.rsplit(":", 1)[1])
        latencies: list[float] = []
        failures: list[str] = []
        meter = CpuMeter(server)
        started = time.perf_counter()
        deadline = started + args.seconds
        threads = [
            threading.Thread(
                target=client_run,
                kwargs={
                    "index": index, "port": port, "secret": secret, "args": args,
                    "deadline": deadline, "latencies": latencies, "failures": failures,
                },
            )  # fmt: skip
            for index in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        spent = meter.spent()
    count = len(latencies)
    print(
        f"gunicorn: {server.settings}; {args.clients} clients for {elapsed:.1f} s; "
        f"{args.existing:.0%} known members (of {args.known}), the rest new"
    )
    print(f"{count} requests, {len(failures)} failed: {count / elapsed:,.0f} requests/s")
    print(
        "latency: p50 {:.1f} ms, p95 {:.1f} ms, p99 {:.1f} ms, max {:.1f} ms".format(
            *(percentile(latencies, share) * 1000 for share in (0.5, 0.95, 0.99)),
            max(latencies) * 1000,
        )
    )
    print(cpu_report(spent, count, "request"))
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for failure in failures[:5]:
        print("failure:", failure, file=sys.stderr)


if __name__ == "__main__":
    main()

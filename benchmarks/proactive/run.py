"""Proactive benchmark: an outage that hits 100,000 customers on Telegram.

Measures, on a scratch database filled with bulk inserts:
1. the time from the outage event to all outreach rows queued (one transaction);
2. throttle decisions per second, as a pure function and through the dispatcher's real
   claim-route-decide path against the database;
3. delivery rate through a real `herald worker` process against a local stand-in for
   Rasa in front of Telegram, which enforces Telegram's limits (30 a second overall,
   1 a second per chat) and runs our action's delivery confirmation. A bounded slice
   (60 s by default) is measured and the full broadcast extrapolated from it.

Writes docs/benchmarks/proactive.json and the `## Proactive` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.results import RAW_DIR, write_raw, write_section  # noqa: E402
from bot.db import migrate, session_scope  # noqa: E402
from bot.db.catalog import CLOUD_SERVICES, PRODUCTS  # noqa: E402
from bot.db.demo import TIMEZONES  # noqa: E402
from bot.db.models import (  # noqa: E402
    ChannelIdentity,
    CloudService,
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Platform,
    Product,
)
from bot.db.session import get_engine  # noqa: E402
from bot.proactive.delivery import DeliveryResult, DeliveryTarget, Outcome  # noqa: E402
from bot.proactive.dispatcher import Dispatcher  # noqa: E402
from bot.proactive.events import parse_event  # noqa: E402
from bot.proactive.models import Outreach, OutreachDecision, OutreachState  # noqa: E402
from bot.proactive.policy import QuietHours, load_policy  # noqa: E402
from bot.proactive.rules import ingest_event  # noqa: E402
from bot.proactive.throttle import Candidate, PastSend, Preferences, decide  # noqa: E402

RAW = RAW_DIR / "proactive.json"
TOKEN = "bench-rasa-token"  # noqa: S105 (shared with a local stand-in only)
TELEGRAM_PER_SECOND = 30
CHUNK = 5000


@contextmanager
def scratch_database(wanted: bool) -> Iterator[str | None]:
    """A PostgreSQL database of our own for the run, dropped afterwards."""
    if not wanted:
        yield None
        return
    admin_url = os.environ.get(
        "HERALD_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    name = f"herald_bench_{os.getpid()}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def build_shop(url: str, customers: int) -> float:
    """Customers with a camera at home, web chat and a linked Telegram account each."""
    started = time.perf_counter()
    migrate(url)
    engine = get_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(CloudService), [{"slug": s, "name": n} for s, n in CLOUD_SERVICES.items()]
        )
        connection.execute(
            sa.insert(Product),
            [
                {
                    "sku": p.sku,
                    "slug": p.slug,
                    "name": p.name,
                    "price": p.price,
                    "setup_guide": p.setup_guide,
                    "setup_guide_url": p.setup_guide_url,
                    "cloud_services": list(p.services),
                }
                for p in PRODUCTS
            ],
        )
        camera = connection.scalar(sa.select(Product.id).where(Product.slug == "indoor_camera"))
        for start in range(0, customers, CHUNK):
            ids = range(start + 1, min(start + CHUNK, customers) + 1)
            connection.execute(
                sa.insert(Customer),
                [
                    {
                        "id": i,
                        "name": f"Customer {i}",
                        "email": f"customer{i}@example.com",
                        "timezone": TIMEZONES[i % len(TIMEZONES)],
                        "language": "en",
                    }
                    for i in ids
                ],
            )
            connection.execute(
                sa.insert(ChannelIdentity),
                [
                    {
                        "platform": platform_,
                        "external_id": external,
                        "customer_id": i,
                        "verified": True,
                    }
                    for i in ids
                    for platform_, external in (
                        (Platform.WEB, str(i)),
                        (Platform.TELEGRAM, str(800_000_000 + i)),
                    )
                ],
            )
            connection.execute(
                sa.insert(Order),
                [
                    {
                        "number": 100_000 + i,
                        "customer_id": i,
                        "status": OrderStatus.DELIVERED,
                        "placed_at": now - timedelta(days=10),
                        "total": Decimal("89.00"),
                        "currency": "EUR",
                    }
                    for i in ids
                ],
            )
            connection.execute(
                sa.insert(OrderLine),
                [
                    {
                        "order_number": 100_000 + i,
                        "product_id": camera,
                        "quantity": 1,
                        "unit_price": Decimal("89.00"),
                    }
                    for i in ids
                ],
            )
    return time.perf_counter() - started


def queue_outage(url: str) -> tuple[float, int]:
    """Seconds from the event to every outreach row committed, and how many rows."""
    policy = load_policy()
    body = {
        "kind": "outage.opened",
        "data": {"services": ["camera-cloud"], "title": "Live view unavailable"},
    }
    started = time.perf_counter()
    with session_scope(url) as session:
        result = ingest_event(
            session, parse_event(body), policy=policy, now=datetime.now(UTC), source="bench"
        )
    return time.perf_counter() - started, result.outreach_queued


def pure_decisions_per_second(count: int = 100_000) -> dict[str, float]:
    """`decide` alone: half urgent notices, half non-urgent ones with some history."""
    policy = load_policy().throttle
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    zones = [ZoneInfo(tz) for tz in TIMEZONES]
    prefs = [
        Preferences(
            zones[i % len(zones)],
            frozenset({"shipping"} if i % 7 == 0 else ()),
            QuietHours(datetime.min.time(), datetime.min.time().replace(hour=6))
            if i % 5 == 0
            else None,
        )
        for i in range(50)
    ]
    history = [
        PastSend("shipping", False, now - timedelta(hours=30), "shipping:a"),
        PastSend("outage", True, now - timedelta(hours=2), "outage:b"),
    ]
    cases = [
        (
            Candidate("outage", True, f"outage:{i}")
            if i % 2
            else Candidate("renewal", False, f"renewal:{i}", now + timedelta(days=3)),
            prefs[i % len(prefs)],
            history if i % 3 else [],
        )
        for i in range(count)
    ]
    started = time.perf_counter()
    for candidate, preferences, past in cases:
        decide(candidate, preferences, past, now, policy)
    elapsed = time.perf_counter() - started
    return {"decisions": count, "seconds": elapsed, "per_second": count / elapsed}


class NoDelivery:
    """The decision benchmark stops before delivery."""

    async def trigger(self, target: DeliveryTarget) -> DeliveryResult:
        return DeliveryResult(Outcome.TRANSIENT)

    async def last_user_message_at(self, sender_id: str) -> datetime | None:
        return None

    async def close(self) -> None:
        return None


def dispatcher_decisions_per_second(url: str, batches: int = 10) -> dict[str, float]:
    """The dispatcher's claim, routing and throttle decisions, written to the database."""
    base = load_policy()
    policy = replace(base, dispatcher=replace(base.dispatcher, batch_size=1000))
    dispatcher = Dispatcher(
        database_url=url, policy=policy, delivery=NoDelivery(), worker_id="bench"
    )

    async def run() -> int:
        decided = 0
        for _ in range(batches):
            _, stats = await dispatcher.prepare()
            decided += stats.claimed
        return decided

    started = time.perf_counter()
    decided = asyncio.run(run())
    elapsed = time.perf_counter() - started
    # Put the rows back as they were queued, for the delivery run.
    with get_engine(url).begin() as connection:
        connection.execute(sa.delete(OutreachDecision))
        connection.execute(
            sa.update(Outreach).values(
                state=OutreachState.PENDING,
                sent_at=None,
                claimed_by=None,
                lease_until=None,
                platform=None,
                sender_id=None,
                attempts=0,
                next_attempt_at=Outreach.not_before,
            )
        )
    return {
        "decisions": decided,
        "seconds": elapsed,
        "per_second": decided / elapsed,
        "batch_size": 1000,
    }


def worker_health(port: int) -> dict[str, Any]:
    """The worker's own account: what its pacer sent, and the most in any one second."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as reply:
            return dict(json.load(reply))
    except urllib.error.HTTPError as error:  # 503 while a long batch runs still has a body
        return dict(json.load(error))


def fetch_stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=30) as reply:
        return dict(json.load(reply))


def delivery_run(url: str, seconds: float, scratch: Path) -> dict[str, Any]:
    """A real worker process delivering against the Telegram-like stand-in for `seconds`."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HERALD_VAR_DIR": str(scratch)}
    fake = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("fake_platform.py")),
            "--port",
            str(port),
            "--database-url",
            url,
            "--token",
            TOKEN,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            fetch_stats(port)
            break
        except OSError:
            if time.monotonic() > deadline:
                fake.kill()
                raise
            time.sleep(0.2)
    override = scratch / "policy.yml"
    override.write_text("scans: {enabled: false}\n")
    worker_log = (scratch / "worker.log").open("wb")
    health_port = free_port()
    worker = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "worker", "--port", str(health_port)],
        cwd=ROOT,
        env={
            **env,
            "HERALD_DATABASE_URL": url,
            "HERALD_TRACKER_DATABASE_URL": url,
            "HERALD_RASA_URL": f"http://127.0.0.1:{port}",
            "HERALD_RASA_API_TOKEN": TOKEN,
            "HERALD_PROACTIVE_POLICY": str(override),
        },
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        # The slice starts at the first delivery (the worker needs a few seconds to start).
        while not fetch_stats(port)["delivered"]:
            assert worker.poll() is None, "the worker exited; see worker.log"
            time.sleep(0.2)
        time.sleep(seconds)
        stats = fetch_stats(port)
        health = worker_health(health_port)
    finally:
        worker.terminate()
        worker.wait(30)
        fake.terminate()
        fake.wait(30)
    times = sorted(t for t in stats.pop("delivery_times"))
    first = times[0]
    inside = [t for t in times if t <= first + seconds]
    busiest = max(
        sum(1 for u in inside[i : i + TELEGRAM_PER_SECOND + 2] if u < t + 1.0)
        for i, t in enumerate(inside)
    )
    rate = (len(inside) - 1) / (inside[-1] - first)
    return {
        **stats,
        "slice_seconds": seconds,
        "delivered_in_slice": len(inside),
        "rate_per_second": rate,
        "allowed_per_second": TELEGRAM_PER_SECOND,
        "share_of_allowed": rate / TELEGRAM_PER_SECOND,
        "busiest_one_second_window": busiest,
        "busiest_second_as_sent": health.get("pacing", {})
        .get("telegram", {})
        .get("busiest_second"),
    }


def markdown(raw: dict[str, Any]) -> str:
    delivery, customers = raw["delivery"], raw["customers"]
    full_minutes = customers / delivery["rate_per_second"] / 60
    floor_minutes = customers / TELEGRAM_PER_SECOND / 60
    ok = (
        delivery["share_of_allowed"] >= 0.9
        and delivery["rejected_429"] == 0
        and delivery["outreach_delivered_twice"] == 0
    )
    rows = [
        (
            f"event to all {raw['queued']:,} outreach rows queued (one transaction)",
            f"{raw['queue_seconds']:.1f} s",
        ),
        ("throttle decisions, pure function", f"{raw['pure_throttle']['per_second']:,.0f} / s"),
        (
            "throttle decisions, dispatcher path (claim, route, decide, write)",
            f"{raw['dispatcher_decisions']['per_second']:,.0f} / s",
        ),
        (
            f"delivery rate, {delivery['slice_seconds']:.0f} s slice through a real worker",
            f"{delivery['rate_per_second']:.1f} / s",
        ),
        (
            "share of Telegram's allowed 30 / s",
            f"{delivery['share_of_allowed']:.0%} (target ≥ 90%)",
        ),
        (
            "most messages in one second, as sent / as received",
            f"{delivery['busiest_second_as_sent']} / {delivery['busiest_one_second_window']}",
        ),
        (
            "429 answers / messages delivered twice",
            f"{delivery['rejected_429']} / {delivery['outreach_delivered_twice']}",
        ),
        (
            "whole broadcast, extrapolated",
            f"{full_minutes:.0f} min (the limit allows no less than {floor_minutes:.0f} min)",
        ),
    ]
    table = "\n".join(["| measure | result |", "|---|---|"] + [f"| {m} | {r} |" for m, r in rows])
    verdict = "Target met" if ok else "Target **not** met"
    database = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[raw["database"]]
    measured = raw["measured_at"][:16].replace("T", " ")
    return f"""An outage on Camera Cloud hitting **{customers:,} customers**, each with a camera at
home and a linked Telegram account (`scripts/bench.sh proactive`, {database}, one worker;
measured {measured} UTC on {raw["machine"]["cpus"]} CPUs, load average
{raw["machine"]["load_average"]:.1f} at the start, other work running).

{table}

{verdict}: at least 90% of the allowed rate with no 429s and no duplicates. The delivery
slice is bounded and the whole broadcast extrapolated from its rate: at Telegram's 30
messages a second the limit, not Herald, sets the pace ({customers:,} messages take
{floor_minutes:.0f} minutes at best). The stand-in for Rasa answers at once (after the
same delivery confirmation our action makes in the database), so this measures the
dispatcher's pacing, not Rasa's or the action server's latency; a trigger through real
Rasa costs tens of milliseconds, which the dispatcher overlaps (up to
{raw["concurrency"]} in flight).

The pacer spaces sends evenly and checks what it really sent: at most 29 in any
1.05 s, one message under the limit. Without that one message of headroom an earlier run
on this busy machine reached 94% of the allowed rate, but the receiving side answered 9
of 1,725 requests with 429: with the CPU shared, both processes stall now and then and
arrivals bunch up, although no second ever had more than 30 sends.
Raw numbers: `docs/benchmarks/proactive.json`."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rewrite-docs", action="store_true", help="rewrite the section from the last raw JSON"
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--deliver-seconds", type=float, default=60.0)
    parser.add_argument("--database-url", help="an empty database (default: scratch SQLite)")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="a scratch database on the local PostgreSQL (HERALD_BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not update docs")
    args = parser.parse_args()
    if args.rewrite_docs:
        write_section("Proactive", markdown(json.loads(RAW.read_text())))
        return 0
    load = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="herald-bench-proactive-") as tmp,
        scratch_database(args.postgres) as postgres_url,
    ):
        scratch = Path(tmp)
        url = args.database_url or postgres_url or f"sqlite:///{scratch / 'bench.db'}"
        print(f"building {args.customers:,} customers…", flush=True)
        build_seconds = build_shop(url, args.customers)
        print(f"  {build_seconds:.1f} s; queueing the outage…", flush=True)
        queue_seconds, queued = queue_outage(url)
        print(f"  {queued:,} rows in {queue_seconds:.1f} s; timing the throttle…", flush=True)
        pure = pure_decisions_per_second()
        decisions = dispatcher_decisions_per_second(url)
        print(
            f"  {pure['per_second']:,.0f}/s pure, {decisions['per_second']:,.0f}/s with the "
            f"database; delivering for {args.deliver_seconds:.0f} s…",
            flush=True,
        )
        delivery = delivery_run(url, args.deliver_seconds, scratch)
        get_engine(url).dispose()
    raw = {
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": load,
            "python": platform.python_version(),
        },
        "database": "postgresql"
        if args.database_url and "postgres" in args.database_url
        else "sqlite",
        "customers": args.customers,
        "build_seconds": build_seconds,
        "queued": queued,
        "queue_seconds": queue_seconds,
        "pure_throttle": pure,
        "dispatcher_decisions": decisions,
        "concurrency": load_policy().dispatcher.concurrency,
        "delivery": delivery,
    }
    print(json.dumps(raw, indent=2))
    if not args.no_write:
        write_raw("proactive", raw)
        write_section("Proactive", markdown(raw))
        print("wrote docs/benchmarks.md (## Proactive) and docs/benchmarks/proactive.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

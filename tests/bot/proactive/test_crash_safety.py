"""Real worker processes: killed mid-batch and restarted, or two at once on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from proactive_fakes import FakeRasa, free_port
from proactive_shop import add_customer, add_order
from sqlalchemy import select

from bot.db import session_scope
from bot.db.models import OrderStatus
from bot.proactive.events import parse_event
from bot.proactive.models import DecisionKind, Outreach, OutreachDecision, OutreachState
from bot.proactive.policy import Policy
from bot.proactive.rules import ingest_event
from bot.settings import PROJECT_ROOT

# Small batches, few deliveries in flight and a short lease: a kill lands mid-batch and a
# restarted worker takes the dead one's rows over within seconds.
WORKER_POLICY = """
scans: {enabled: false}
dispatcher: {batch_size: 10, concurrency: 2, lease: 2s, poll_interval: 0.2s}
"""


def camera_owners(url: str, count: int) -> None:
    """`count` customers in web chat with a camera at home."""
    with session_scope(url) as session:
        for index in range(count):
            customer = add_customer(session, f"Customer {index}")
            add_order(
                session,
                customer,
                ("indoor_camera",),
                status=OrderStatus.DELIVERED,
                at=datetime.now(UTC),
            )


def outage_now(url: str, policy: Policy) -> list[int]:
    """An outage that hits every camera owner, stamped with the real clock the workers use."""
    now = datetime.now(UTC)
    with session_scope(url) as session:
        body = {"kind": "outage.opened", "data": {"services": ["camera-cloud"], "title": "Down"}}
        ingest_event(session, parse_event(body), policy=policy, now=now, source="test")
    with session_scope(url) as session:
        return list(session.scalars(select(Outreach.id).order_by(Outreach.id)))


def affected_customers(url: str, policy: Policy, count: int) -> list[int]:
    camera_owners(url, count)
    return outage_now(url, policy)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    policy_file = tmp_path / "policy.yml"
    policy_file.write_text(WORKER_POLICY)
    started: list[subprocess.Popen[bytes]] = []

    def start(url: str, fake: FakeRasa, health_port: int | None = None) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "HERALD_DATABASE_URL": url,
            "HERALD_TRACKER_DATABASE_URL": url,
            "HERALD_RASA_URL": fake.url,
            "HERALD_RASA_API_TOKEN": "rasa-token",
            "HERALD_PROACTIVE_POLICY": str(policy_file),
            "HERALD_VAR_DIR": str(tmp_path),
        }
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        health = ["--port", str(health_port)] if health_port else ["--no-health"]
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker", *health],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(15)


def responds(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.1)


def states(url: str) -> Counter[OutreachState]:
    with session_scope(url) as session:
        return Counter(session.scalars(select(Outreach.state)))


def test_a_worker_killed_mid_batch_and_restarted_delivers_each_message_once(
    shop: str,
    policy: Policy,
    start_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    ids = affected_customers(shop, policy, 40)
    fake = FakeRasa(shop, delay=0.15).start()
    try:
        worker = start_worker(shop, fake)
        wait_until(lambda: len(fake.calls) >= 14)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)

        # The kill left claimed rows behind: some approved, some not yet decided.
        left = states(shop)
        assert left[OutreachState.SENDING] > 0, left
        assert left[OutreachState.SENT] < len(ids)

        start_worker(shop, fake)
        wait_until(lambda: states(shop)[OutreachState.SENT] == len(ids))
    finally:
        fake.stop()

    # As the customers see it: every message exactly once.
    seen = Counter(fake.delivered_ids())
    assert sorted(seen) == ids
    assert set(seen.values()) == {1}
    with session_scope(shop) as session:
        delivered = session.scalars(
            select(OutreachDecision.outreach_id).where(
                OutreachDecision.kind == DecisionKind.DELIVERED
            )
        ).all()
    assert sorted(delivered) == ids


@pytest.mark.parametrize("shop", ["postgresql"], indirect=True)
def test_two_workers_on_postgresql_never_send_the_same_row(
    shop: str,
    policy: Policy,
    start_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    camera_owners(shop, 120)
    fake = FakeRasa(shop, delay=0.02).start()
    try:
        # Both workers are up and polling before the outage arrives, so both get a share.
        ports = [free_port(), free_port()]
        for port in ports:
            start_worker(shop, fake, port)
        wait_until(lambda: all(responds(f"http://127.0.0.1:{port}/health") for port in ports))
        ids = outage_now(shop, policy)
        wait_until(lambda: states(shop)[OutreachState.SENT] == len(ids))
    finally:
        fake.stop()

    # Not even a second request for a row: the claims never overlapped.
    calls = Counter(call.outreach_id for call in fake.calls)
    assert sorted(calls) == ids and set(calls.values()) == {1}
    with session_scope(shop) as session:
        workers = set(
            session.scalars(
                select(OutreachDecision.worker).where(OutreachDecision.kind == DecisionKind.SEND)
            )
        )
    assert len(workers) == 2, "both workers should have taken a share"

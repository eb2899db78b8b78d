"""Load generators (Locust for REST, an asyncio socket.io client) and their statistics."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio

from benchmarks.conversation.script import SimulatedCustomer, save_customers
from bot.settings import PROJECT_ROOT

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
LOCUST = Path(sys.executable).with_name("locust")
# A reply slower than this counts as an error, like a customer giving up.
REPLY_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class LoadSettings:
    """How long and how hard: `customers` talking at once, each pausing `think` seconds."""

    customers: int
    seconds: float = 20.0
    warmup_seconds: float = 5.0
    think_seconds: float = 0.25


@dataclass
class Sample:
    """One message: when it was sent, how long until the reply (ms), whether one came."""

    started: float
    latency_ms: float
    ok: bool
    step: str


@dataclass
class LoadResult:
    settings: LoadSettings
    samples: list[Sample] = field(default_factory=list)
    window: tuple[float, float] = (0.0, 0.0)

    def summary(self) -> dict[str, Any]:
        """Percentiles over replies to messages sent after the warm-up; rate over the window."""
        start, end = self.window
        measured = [s for s in self.samples if start <= s.started < end]
        ok = sorted(s.latency_ms for s in measured if s.ok)
        completed = [
            s for s in self.samples if s.ok and start <= s.started + s.latency_ms / 1000 < end
        ]
        steps: dict[str, list[float]] = {}
        for sample in measured:
            if sample.ok:
                steps.setdefault(sample.step, []).append(sample.latency_ms)
        return {
            "customers": self.settings.customers,
            "messages": len(ok),
            "errors": len(measured) - len(ok),
            "seconds": round(end - start, 2),
            "messages_per_second": round(len(completed) / (end - start), 2) if end > start else 0,
            "p50_ms": percentile(ok, 50),
            "p95_ms": percentile(ok, 95),
            "p99_ms": percentile(ok, 99),
            "mean_ms": round(sum(ok) / len(ok), 1) if ok else None,
            "p95_ms_by_step": {
                step: percentile(sorted(v), 95) for step, v in sorted(steps.items())
            },
        }


def percentile(ordered: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return round(ordered[rank - 1], 1)


def run_rest_load(
    base_url: str, customers: list[SimulatedCustomer], settings: LoadSettings
) -> LoadResult:
    """Locust, headless, for warm-up plus the measured seconds; in-flight replies are awaited."""
    with tempfile.TemporaryDirectory(prefix="herald-locust-") as work:
        customers_file = Path(work) / "customers.json"
        samples_file = Path(work) / "samples.json"
        save_customers(customers[: settings.customers], customers_file)
        env = {
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "BENCH_CUSTOMERS": str(customers_file),
            "BENCH_SAMPLES": str(samples_file),
            "BENCH_THINK_SECONDS": str(settings.think_seconds),
        }
        total = settings.warmup_seconds + settings.seconds
        started = time.time()
        subprocess.run(
            [
                str(LOCUST),
                "-f",
                str(LOCUSTFILE),
                "--headless",
                "--users",
                str(settings.customers),
                "--spawn-rate",
                str(settings.customers),
                "--run-time",
                f"{math.ceil(total)}s",
                "--stop-timeout",
                str(int(REPLY_TIMEOUT_SECONDS)),
                "--host",
                base_url,
                "--only-summary",
                "--loglevel",
                "ERROR",
                "--skip-log-setup",
            ],
            env=env,
            cwd=PROJECT_ROOT,
            check=False,  # Locust exits 1 when any request failed; errors are counted instead.
            stdout=subprocess.DEVNULL,
            timeout=total + REPLY_TIMEOUT_SECONDS + 60,
        )
        raw = json.loads(samples_file.read_text()) if samples_file.exists() else []
    samples = [Sample(started, latency, ok, step) for started, latency, ok, step in raw]
    window = (started + settings.warmup_seconds, started + total)
    return LoadResult(settings, samples, window)


async def _socketio_customer(
    url: str,
    customer: SimulatedCustomer,
    settings: LoadSettings,
    deadline: float,
    samples: list[Sample],
) -> None:
    """Connect, then talk until the deadline; latency is the time to the first bot message.

    The rest of a reply (some are several messages) arrives during the pause before the
    next message, as a customer would read it.
    """
    client = socketio.AsyncClient(reconnection=False)
    replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    confirmed = asyncio.Event()
    client.on("bot_uttered", replies.put_nowait)
    client.on("session_confirm", lambda *_: confirmed.set())
    auth = {"token": customer.token} if customer.token else None
    try:
        await client.connect(
            url,
            auth=auth,
            socketio_path="/socket.io",
            transports=["websocket"],
            wait_timeout=int(REPLY_TIMEOUT_SECONDS),
        )
        # Herald confirms the verified session on connect; Rasa's socketio channel when
        # asked. A message sent before that would have no conversation to go to.
        await client.emit("session_request", {"session_id": customer.sender})
        await asyncio.wait_for(confirmed.wait(), REPLY_TIMEOUT_SECONDS)
    except (socketio.exceptions.ConnectionError, TimeoutError):
        samples.append(Sample(time.time(), 0.0, False, "connect"))
        await client.disconnect()
        return
    turn = 0
    try:
        while time.time() < deadline:
            step, text = customer.message(turn)
            turn += 1
            sent_at = time.time()
            clock = time.perf_counter()
            await client.emit("user_uttered", {"message": text, "session_id": customer.sender})
            try:
                await asyncio.wait_for(replies.get(), REPLY_TIMEOUT_SECONDS)
            except TimeoutError:
                samples.append(Sample(sent_at, REPLY_TIMEOUT_SECONDS * 1000, False, step))
                continue
            samples.append(Sample(sent_at, (time.perf_counter() - clock) * 1000, True, step))
            await asyncio.sleep(settings.think_seconds)
            while not replies.empty():
                replies.get_nowait()
    finally:
        await client.disconnect()


async def _socketio_load(
    url: str, customers: list[SimulatedCustomer], settings: LoadSettings
) -> LoadResult:
    started = time.time()
    total = settings.warmup_seconds + settings.seconds
    samples: list[Sample] = []
    tasks = []
    # Customers arrive over the first second, as Locust spawns them on the REST side.
    for customer in customers[: settings.customers]:
        tasks.append(
            asyncio.create_task(
                _socketio_customer(url, customer, settings, started + total, samples)
            )
        )
        await asyncio.sleep(1.0 / settings.customers)
    await asyncio.gather(*tasks)
    return LoadResult(settings, samples, (started + settings.warmup_seconds, started + total))


def run_socketio_load(
    url: str, customers: list[SimulatedCustomer], settings: LoadSettings
) -> LoadResult:
    return asyncio.run(_socketio_load(url, customers, settings))

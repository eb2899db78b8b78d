"""Locust user for the REST channel: each simulated customer holds a support conversation.

Run by benchmarks/conversation/load.py, which passes its settings in the environment and
reads back every request's timing from BENCH_SAMPLES.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task

from benchmarks.conversation.script import SimulatedCustomer, load_customers

CUSTOMERS = load_customers(Path(os.environ["BENCH_CUSTOMERS"]))
SAMPLES_PATH = Path(os.environ["BENCH_SAMPLES"])
THINK_SECONDS = float(os.environ.get("BENCH_THINK_SECONDS", "0.25"))

_next_customer = itertools.count()
_samples: list[tuple[float, float, bool, str]] = []
_samples_lock = threading.Lock()


@events.request.add_listener  # type: ignore[untyped-decorator]
def record(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    exception: BaseException | None = None,
    start_time: float | None = None,
    **_: Any,
) -> None:
    with _samples_lock:
        _samples.append((start_time or 0.0, response_time, exception is None, name))


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def write_samples(**_: Any) -> None:
    SAMPLES_PATH.write_text(json.dumps(_samples))


class SupportCustomer(FastHttpUser):
    """One customer, one conversation: a message, the reply, a short pause, the next one."""

    wait_time = constant(THINK_SECONDS)

    def on_start(self) -> None:
        self.customer: SimulatedCustomer = CUSTOMERS[next(_next_customer) % len(CUSTOMERS)]
        self.turn = 0

    @task
    def say_next(self) -> None:
        step, text = self.customer.message(self.turn)
        self.turn += 1
        body: dict[str, str] = {"message": text}
        headers = {}
        if self.customer.token:
            headers["Authorization"] = f"Bearer {self.customer.token}"
        else:
            body["sender"] = self.customer.sender
        with self.client.post(
            "/webhooks/rest/webhook", json=body, headers=headers, name=step, catch_response=True
        ) as reply:
            if reply.status_code != 200:
                reply.failure(f"HTTP {reply.status_code}")
            elif not reply.json():
                reply.failure("no reply")

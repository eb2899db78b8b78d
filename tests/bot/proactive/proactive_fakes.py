"""Stand-ins at the outside seam: a fake Rasa HTTP API and a settable clock."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from bot.db import session_scope
from bot.db.session import get_engine
from bot.proactive.outbox import confirm_delivery


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Clock:
    """The dispatcher's idea of now; tests move it."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass(frozen=True)
class Trigger:
    sender_id: str
    intent: str
    outreach_id: int
    output_channel: str
    at: float


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: {"tracker": {}})
    headers: dict[str, str] = field(default_factory=dict)
    # Whether Rasa got as far as running our action (which confirms the delivery).
    runs_action: bool = True


class FakeRasa:
    """Rasa's trigger_intent and tracker endpoints, with our action's delivery check behind it.

    Where real Rasa would run the EXTERNAL_* action, this calls the same
    `confirm_delivery` the action calls; a confirmed trigger is a message the customer
    sees (`deliveries`), every request is a trigger (`calls`). Scripted replies stand in
    for Rasa's errors; `trackers` holds each conversation's events for the tracker GET.
    """

    def __init__(self, database_url: str, *, delay: float = 0.0) -> None:
        self.database_url = database_url
        self.delay = delay
        self.port = free_port()
        self.calls: list[Trigger] = []
        self.deliveries: list[Trigger] = []
        self.tracker_reads: list[str] = []
        self.trackers: dict[str, list[dict[str, Any]]] = {}
        self.script: deque[Reply] = deque()
        self.token_seen: set[str] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def delivered_ids(self) -> list[int]:
        with self._lock:
            return [d.outreach_id for d in self.deliveries]

    def user_said(self, sender_id: str, at: datetime) -> None:
        self.trackers.setdefault(sender_id, []).append(
            {"event": "user", "text": "hello", "timestamp": at.timestamp()}
        )

    async def _trigger(self, request: web.Request) -> web.Response:
        self.token_seen.add(request.query.get("token", ""))
        body = await request.json()
        trigger = Trigger(
            request.match_info["sender"],
            body["name"],
            int(body["entities"]["outreach_id"]),
            request.query.get("output_channel", ""),
            time.monotonic(),
        )
        with self._lock:
            self.calls.append(trigger)
            reply = self.script.popleft() if self.script else Reply()
        if self.delay:
            await asyncio.sleep(self.delay)
        if reply.runs_action:
            confirmed = await asyncio.to_thread(self._confirm, trigger)
            if confirmed and reply.status == 200 and "messages" not in reply.body:
                with self._lock:
                    self.deliveries.append(trigger)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)

    def _confirm(self, trigger: Trigger) -> bool:
        with session_scope(self.database_url) as session:
            return (
                confirm_delivery(
                    session,
                    trigger.outreach_id,
                    trigger.sender_id,
                    trigger.intent.removeprefix("EXTERNAL_"),
                    datetime.now(UTC),
                )
                is not None
            )

    async def _tracker(self, request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        with self._lock:
            self.tracker_reads.append(sender)
        return web.json_response({"sender_id": sender, "events": self.trackers.get(sender, [])})

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/conversations/{sender}/trigger_intent", self._trigger)
        app.router.add_get("/conversations/{sender}/tracker", self._tracker)
        return app

    def start(self) -> FakeRasa:
        """Serve from a thread of its own, so sync tests and other processes can call it."""
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            self._runner = web.AppRunner(self._app(), access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            self._loop.run_until_complete(site.start())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


# Rasa's SQL tracker store table, as Rasa 3.6 creates it (rasa/core/tracker_store.py).
_tracker_metadata = sa.MetaData()
TRACKER_EVENTS = sa.Table(
    "events",
    _tracker_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)


def tracker_event(
    database_url: str,
    sender_id: str,
    at: datetime,
    *,
    type_name: str = "user",
    intent: str | None = "greet",
) -> None:
    """Write one event the way Rasa's tracker store would."""
    engine = get_engine(database_url)
    _tracker_metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            TRACKER_EVENTS.insert().values(
                sender_id=sender_id,
                type_name=type_name,
                timestamp=at.timestamp(),
                intent_name=intent,
                data=json.dumps({"event": type_name, "timestamp": at.timestamp()}),
            )
        )

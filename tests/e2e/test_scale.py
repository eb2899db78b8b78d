"""Scale-out on PostgreSQL and Redis: replicas behind nginx keep every conversation whole."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from sqlalchemy import func, select

from bot.db import migrate, session_scope
from bot.db.demo import load_demo_data
from bot.db.models import Order
from bot.identity.tokens import sign_customer_token
from bot.scale import ScaleConfig, ScaleStack, running_scale_stack
from bot.stack import ensure_local_secrets
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.e2e.conftest import PROACTIVE_ENV, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

ORDER_NUMBER = re.compile(r"\b[1-9][0-9]{4}\b")
# Failures a web client sees while a replica dies under it; it sends the message again.
RETRYABLE_STATUSES = {502, 503, 504}


@dataclass
class ScaleHerald:
    stack: ScaleStack
    database_url: str
    # Each test talks as customers and about order numbers no other test used.
    customers_taken: int = 0
    unknown_numbers: Iterator[int] = field(default_factory=lambda: iter(range(90001, 99999)))

    @property
    def config(self) -> ScaleConfig:
        return self.stack.config

    @property
    def replica_urls(self) -> list[str]:
        return [self.config.replica_url(port) for port in self.config.rasa_replica_ports]

    def token_for(self, customer_id: int) -> str:
        return sign_customer_token(customer_id, self.config.secrets["HERALD_CUSTOMER_TOKEN_SECRET"])

    def api(self, base_url: str, path: str) -> str:
        return f"{base_url}{path}?token={self.config.secrets['HERALD_RASA_API_TOKEN']}"


@pytest.fixture(scope="module")
def scale_herald(
    trained_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScaleHerald]:
    """Two Rasa replicas and two action servers behind nginx, two proactive workers, on a
    fresh PostgreSQL database."""
    database_url = create_postgres_database()
    try:
        migrate(database_url)
        with session_scope(database_url) as session:
            load_demo_data(session)
        var_dir = tmp_path_factory.mktemp("herald-scale")
        config = ScaleConfig(
            database_url=database_url,
            var_dir=var_dir,
            secrets=ensure_local_secrets(var_dir),
            model=trained_model,
            rasa_port=free_port(),
            action_port=free_port(),
            app_port=free_port(),
            rasa_replica_ports=[free_port(), free_port()],
            action_server_ports=[free_port(), free_port()],
            worker_ports=[free_port(), free_port()],
            namespace=f"test{uuid.uuid4().hex[:10]}",
            # Scans off: they would message the demo customers these tests talk as.
            extra_env=PROACTIVE_ENV,
        )
        with running_scale_stack(config) as stack:
            yield ScaleHerald(stack, database_url)
    finally:
        drop_postgres_database(database_url)


def customers_with_orders(herald: ScaleHerald, count: int) -> list[tuple[int, int]]:
    """(customer id, one of their order numbers) for `count` customers new to the tests."""
    with session_scope(herald.database_url) as session:
        rows = session.execute(
            select(Order.customer_id, func.min(Order.number))
            .group_by(Order.customer_id)
            .order_by(Order.customer_id)
            .offset(herald.customers_taken)
            .limit(count)
        ).all()
    assert len(rows) == count
    herald.customers_taken += count
    return [(customer_id, number) for customer_id, number in rows]


def unknown_order_numbers(herald: ScaleHerald) -> Iterator[int]:
    """Five-digit numbers no order has: the bot answers that it cannot find them."""
    with session_scope(herald.database_url) as session:
        highest = session.scalar(select(func.max(Order.number)))
    assert highest is not None and highest < 90000
    return herald.unknown_numbers


async def say(
    http: aiohttp.ClientSession, base_url: str, token: str, text: str
) -> tuple[int, list[dict[str, Any]]]:
    async with http.post(
        f"{base_url}/webhooks/rest/webhook",
        json={"message": text},
        headers={"Authorization": f"Bearer {token}"},
    ) as reply:
        body = await reply.json(content_type=None) if reply.status == 200 else []
        return reply.status, list(body)


async def tracker_turns(
    herald: ScaleHerald, http: aiohttp.ClientSession, sender_id: str
) -> list[tuple[str, list[str]]]:
    """The conversation as Rasa stored it: each user message with the bot's replies to it.

    Proactive messages (external intents the workers may send meanwhile) are left out.
    """
    url = herald.api(herald.config.rasa_url, f"/conversations/{sender_id}/tracker")
    async with http.get(url) as reply:
        assert reply.status == 200
        events = (await reply.json())["events"]
    turns: list[tuple[str, list[str]]] = []
    proactive = False
    for event in events:
        if event["event"] == "user":
            proactive = bool((event.get("metadata") or {}).get("is_external"))
            if not proactive:
                turns.append((event["text"], []))
        elif event["event"] == "bot" and turns and not proactive:
            turns[-1][1].append(event.get("text") or "")
    return turns


def assert_each_reply_answers_its_message(turns: list[tuple[str, list[str]]]) -> None:
    """Every message is followed by its own reply, and no reply to another message."""
    asked = {number for text, _ in turns for number in ORDER_NUMBER.findall(text)}
    for text, replies in turns:
        (number,) = ORDER_NUMBER.findall(text)
        assert replies, f"no reply stored after {text!r}"
        assert number in replies[0], (text, replies)
        mentioned = set(ORDER_NUMBER.findall(" ".join(replies)))
        assert mentioned & asked == {number}, (text, replies)


async def test_a_burst_across_replicas_keeps_one_conversation_whole(
    scale_herald: ScaleHerald,
) -> None:
    ((customer_id, own_order),) = customers_with_orders(scale_herald, 1)
    token = scale_herald.token_for(customer_id)
    # Their own order (the action reads it from PostgreSQL), then numbers nobody has.
    numbers = itertools.chain([own_order], unknown_order_numbers(scale_herald))
    rounds: list[list[str]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        for _ in range(4):
            # Two messages to every replica at the same moment, straight to its port.
            batch = [
                (replica, f"where is order {next(numbers)}")
                for replica in scale_herald.replica_urls
                for _ in range(2)
            ]
            replies = await asyncio.gather(*(say(http, url, token, text) for url, text in batch))
            for (_, text), (status, messages) in zip(batch, replies, strict=True):
                assert status == 200
                assert text.split()[-1] in " ".join(m.get("text", "") for m in messages)
            rounds.append([text for _, text in batch])
        turns = await tracker_turns(scale_herald, http, f"web:{customer_id}")

    stored = [text for text, _ in turns]
    sent = [text for batch in rounds for text in batch]
    assert sorted(stored) == sorted(sent), "a message is missing or stored twice"
    position = {text: index for index, text in enumerate(stored)}
    for earlier, later in zip(rounds, rounds[1:], strict=False):
        assert max(position[t] for t in earlier) < min(position[t] for t in later)
    assert_each_reply_answers_its_message(turns)


async def test_a_browser_on_one_replica_gets_what_another_replica_sends(
    scale_herald: ScaleHerald,
) -> None:
    """A proactive message (trigger_intent) goes through Redis to the replica holding the socket."""
    ((customer_id, _),) = customers_with_orders(scale_herald, 1)
    browser_replica, sending_replica = scale_herald.replica_urls[1], scale_herald.replica_urls[0]
    client = socketio.AsyncClient(reconnection=False)
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    confirmed = asyncio.Event()
    client.on("session_confirm", lambda _: confirmed.set())
    client.on("bot_uttered", received.put_nowait)
    await client.connect(
        browser_replica,
        auth={"token": scale_herald.token_for(customer_id)},
        socketio_path="/socket.io",
        transports=["websocket"],
    )
    try:
        await asyncio.wait_for(confirmed.wait(), 10)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            url = scale_herald.api(
                sending_replica, f"/conversations/web:{customer_id}/trigger_intent"
            )
            async with http.post(f"{url}&output_channel=webchat", json={"name": "greet"}) as reply:
                assert reply.status == 200
        message = await asyncio.wait_for(received.get(), 30)
        assert "Herald" in message["text"]
    finally:
        await client.disconnect()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_web_chat_works_through_the_proxy(scale_herald: ScaleHerald, transport: str) -> None:
    ((customer_id, number),) = customers_with_orders(scale_herald, 1)
    client = socketio.AsyncClient(reconnection=False)
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sessions: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    client.on("session_confirm", sessions.put_nowait)
    client.on("bot_uttered", received.put_nowait)
    await client.connect(
        scale_herald.config.rasa_url,
        auth={"token": scale_herald.token_for(customer_id)},
        socketio_path="/socket.io",
        transports=[transport],
    )
    try:
        session = await asyncio.wait_for(sessions.get(), 10)
        assert session["sender_id"] == f"web:{customer_id}"
        await client.emit("user_uttered", {"message": f"where is order {number}?"})
        message = await asyncio.wait_for(received.get(), 60)
        assert f"Order {number}" in message["text"]
    finally:
        await client.disconnect()


async def test_a_replica_killed_under_load_loses_no_conversation(
    scale_herald: ScaleHerald,
) -> None:
    """Runs last in this module: it leaves one replica dead."""
    customers = customers_with_orders(scale_herald, 6)
    unknown = unknown_order_numbers(scale_herald)
    scripts = {
        customer_id: [f"where is order {n}" for n in [own, *itertools.islice(unknown, 7)]]
        for customer_id, own in customers
    }
    answered: dict[int, list[str]] = {customer_id: [] for customer_id in scripts}
    retried: set[str] = set()
    under_way = asyncio.Event()

    async def converse(http: aiohttp.ClientSession, customer_id: int) -> None:
        token = scale_herald.token_for(customer_id)
        for text in scripts[customer_id]:
            for _ in range(60):
                try:
                    status, messages = await say(http, scale_herald.config.rasa_url, token, text)
                except aiohttp.ClientError:
                    status, messages = 502, []
                if status not in RETRYABLE_STATUSES:
                    break
                retried.add(text)
                await asyncio.sleep(1)
            assert status == 200, (text, status)
            assert text.split()[-1] in " ".join(m.get("text", "") for m in messages)
            answered[customer_id].append(text)
            if sum(len(done) for done in answered.values()) >= 2 * len(scripts):
                under_way.set()

    async def kill_a_replica() -> None:
        await under_way.wait()
        os.killpg(scale_herald.stack.processes["rasa-2"].pid, signal.SIGKILL)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90)) as http:
        await asyncio.gather(kill_a_replica(), *(converse(http, c) for c in scripts))
        assert scale_herald.stack.processes["rasa-2"].poll() is not None
        for customer_id, script in scripts.items():
            assert answered[customer_id] == script
            turns = await tracker_turns(scale_herald, http, f"web:{customer_id}")
            # A message whose reply was cut off by the kill may have been stored before the
            # replica died and again when the client sent it once more: never lost.
            stored = [text for text, _ in turns]
            deduplicated = [t for i, t in enumerate(stored) if i == 0 or t != stored[i - 1]]
            assert deduplicated == script
            assert all(t in retried for i, t in enumerate(stored) if i and t == stored[i - 1])
            assert_each_reply_answers_its_message(turns)

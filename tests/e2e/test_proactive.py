"""Proactive support through every layer: events API, worker, Rasa, actions, web chat."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import socketio
from sqlalchemy import select

from bot.db import session_scope
from bot.db.models import (
    ChannelIdentity,
    Customer,
    NotificationPreference,
    Order,
    OrderStatus,
    Platform,
)
from bot.proactive.models import DecisionKind, Outreach, OutreachDecision, OutreachState
from tests.e2e.conftest import Herald

pytestmark = pytest.mark.e2e

# How long a message may take through worker, Rasa and actions on a busy 2-core machine.
DELIVERY_TIMEOUT = 90.0
# How long we watch for a message that must not come.
QUIET_PERIOD = 6.0


class WebChat:
    """A customer's open web chat tab: socket.io with the shop-signed token."""

    def __init__(self, herald: Herald, customer_id: int) -> None:
        self.herald = herald
        self.customer_id = customer_id
        self.client = socketio.AsyncClient(reconnection=False)
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.client.on("bot_uttered", self.messages.put_nowait)

    async def connect(self) -> None:
        confirmed: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.client.on(
            "session_confirm", lambda data: confirmed.done() or confirmed.set_result(data)
        )
        await self.client.connect(
            self.herald.config.rasa_url,
            auth={"token": self.herald.token_for(self.customer_id)},
            socketio_path="/socket.io",
            transports=["websocket"],
        )
        session = await asyncio.wait_for(confirmed, 30)
        assert session["sender_id"] == f"web:{self.customer_id}"

    async def say(self, text: str) -> None:
        await self.client.emit(
            "user_uttered", {"message": text, "session_id": f"web:{self.customer_id}"}
        )

    async def next_message(self, timeout: float = DELIVERY_TIMEOUT) -> dict[str, Any]:
        return await asyncio.wait_for(self.messages.get(), timeout)

    async def nothing_more(self, seconds: float = QUIET_PERIOD) -> list[dict[str, Any]]:
        """Whatever arrives in the next `seconds` (a test expects nothing)."""
        await asyncio.sleep(seconds)
        extra = []
        while not self.messages.empty():
            extra.append(self.messages.get_nowait())
        return extra


@asynccontextmanager
async def web_chats(herald: Herald, customer_ids: list[int]) -> AsyncIterator[list[WebChat]]:
    chats = [WebChat(herald, customer_id) for customer_id in customer_ids]
    try:
        await asyncio.gather(*(chat.connect() for chat in chats))
        yield chats
    finally:
        await asyncio.gather(*(chat.client.disconnect() for chat in chats))


async def post_event(herald: Herald, body: dict[str, Any], key: str) -> tuple[int, Any]:
    headers = {
        "Authorization": f"Bearer {herald.config.secrets['HERALD_API_EVENTS_KEY']}",
        "Idempotency-Key": key,
    }
    async with (
        aiohttp.ClientSession() as client,
        client.post(f"{herald.config.app_url}/events", json=body, headers=headers) as reply,
    ):
        return reply.status, await reply.json()


def web_only_customers(herald: Herald) -> list[Customer]:
    """Customers whose only channel is web chat, newest first (other tests take the oldest)."""
    with session_scope(herald.database_url) as session:
        linked = select(ChannelIdentity.customer_id).where(ChannelIdentity.platform != Platform.WEB)
        return list(
            session.scalars(
                select(Customer).where(Customer.id.not_in(linked)).order_by(Customer.id.desc())
            )
        )


# Customers a test of this module already took: each test gets its own, so one test's
# message cannot use up another's daily cap or opt-outs.
TAKEN: set[int] = set()


def take_order(herald: Herald, status: OrderStatus, avoid: set[int] | None = None) -> Order:
    """The newest order in `status` of a web-only customer no other test here uses."""
    candidates = {c.id for c in web_only_customers(herald)} - TAKEN - (avoid or set())
    with session_scope(herald.database_url) as session:
        order = session.scalars(
            select(Order)
            .where(Order.status == status, Order.customer_id.in_(candidates))
            .order_by(Order.number.desc())
        ).first()
        assert order is not None
        for line in order.lines:
            _ = line.product  # loaded while the session is open
        _ = order.shipments
        TAKEN.add(order.customer_id)
        return order


def owners_of(herald: Herald, service: str) -> set[int]:
    """Who has a delivered device that needs `service`, straight from orders and products."""
    with session_scope(herald.database_url) as session:
        return {
            order.customer_id
            for order in session.scalars(select(Order).where(Order.status == OrderStatus.DELIVERED))
            if any(service in line.product.cloud_services for line in order.lines)
        }


def quiet_hours_elsewhere(herald: Herald, customer_id: int) -> None:
    """The customer's own quiet hours, set well away from now, so the test does not depend
    on the time of day in their time zone (the default quiet hours would apply otherwise)."""
    with session_scope(herald.database_url) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        local = datetime.now(UTC).astimezone(ZoneInfo(customer.timezone))
        start = (local + timedelta(hours=8)).strftime("%H:%M")
        end = (local + timedelta(hours=9)).strftime("%H:%M")
        session.add(
            NotificationPreference(
                customer_id=customer_id, topic="all", quiet_start=start, quiet_end=end
            )
        )


def outreach_rows(herald: Herald, *conditions: Any) -> list[Outreach]:
    with session_scope(herald.database_url) as session:
        rows = session.scalars(select(Outreach).where(*conditions).order_by(Outreach.id)).all()
        for row in rows:
            _ = row.decisions  # loaded while the session is open
        return list(rows)


def wait_for(condition: Callable[[], bool], timeout: float = DELIVERY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def text_of(message: dict[str, Any]) -> str:
    return str(message.get("text", ""))


async def test_an_outage_reaches_each_affected_customer_once_and_nobody_else(
    herald: Herald,
) -> None:
    affected = owners_of(herald, "voice")
    web_only = [c.id for c in web_only_customers(herald) if c.id not in TAKEN]
    watching = [c for c in web_only if c in affected][:3]
    bystander = next(c for c in web_only if c not in affected)
    assert len(watching) == 3
    TAKEN.update([*watching, bystander])
    body = {
        "kind": "outage.opened",
        "data": {
            "services": ["voice"],
            "title": "Voice commands failing",
            "details": "Voice assistants cannot reach your devices.",
        },
    }

    async with web_chats(herald, [*watching, bystander]) as chats:
        status, created = await post_event(herald, body, "e2e-outage-voice")
        assert status == 201 and created["outreach_queued"] == len(affected)

        for chat in chats[:3]:
            message = await chat.next_message()
            assert "Voice assistant integrations" in text_of(message)
            assert "Voice assistants cannot reach your devices." in text_of(message)
            assert message.get("quick_replies")

        # The same event again: no second message to anyone.
        status, again = await post_event(herald, body, "e2e-outage-voice")
        assert status == 200 and again["duplicate"] is True
        extra = await asyncio.gather(*(chat.nothing_more() for chat in chats))
        assert extra == [[], [], [], []]

    incident_rows = outreach_rows(herald, Outreach.event_id == created["event_id"])
    wait_for(
        lambda: all(
            r.state is OutreachState.SENT
            for r in outreach_rows(herald, Outreach.event_id == created["event_id"])
        )
    )
    incident_rows = outreach_rows(herald, Outreach.event_id == created["event_id"])
    assert sorted(r.customer_id for r in incident_rows) == sorted(affected)
    with session_scope(herald.database_url) as session:
        for row in incident_rows:
            delivered = session.scalars(
                select(OutreachDecision).where(
                    OutreachDecision.outreach_id == row.id,
                    OutreachDecision.kind == DecisionKind.DELIVERED,
                )
            ).all()
            assert len(delivered) == 1
            # On a channel of their own: a verified identity of that very customer.
            identity = session.scalars(
                select(ChannelIdentity).where(
                    ChannelIdentity.customer_id == row.customer_id,
                    ChannelIdentity.platform == row.platform,
                    ChannelIdentity.verified.is_(True),
                )
            ).first()
            assert identity is not None and row.sender_id == identity.sender_id
    assert {r.platform for r in incident_rows if r.customer_id in watching} == {Platform.WEB}


async def test_a_shipment_changing_state_three_times_in_ten_minutes_gives_one_message(
    herald: Herald,
) -> None:
    order = take_order(herald, OrderStatus.SHIPPED)
    customer_id, number = order.customer_id, order.number
    tracking = order.shipments[-1].tracking_number
    quiet_hours_elsewhere(herald, customer_id)
    now = datetime.now(UTC)
    updates = [(9, "delayed"), (4, "out_for_delivery"), (0, "delivered")]

    async with web_chats(herald, [customer_id]) as (chat,):
        for minutes_ago, status in updates:
            body = {
                "kind": "shipment.status_changed",
                "data": {"order_number": number, "status": status, "location": "Local depot"},
                "occurred_at": (now - timedelta(minutes=minutes_ago)).isoformat(),
            }
            code, _ = await post_event(herald, body, f"e2e-ship-{number}-{status}")
            assert code == 201

        message = await chat.next_message()
        assert f"Order {number} has been delivered" in text_of(message)
        assert tracking in text_of(message)
        assert await chat.nothing_more() == []

    rows = outreach_rows(herald, Outreach.customer_id == customer_id, Outreach.topic == "shipping")
    assert [r.state for r in rows] == [
        OutreachState.SUPPRESSED,
        OutreachState.SUPPRESSED,
        OutreachState.SENT,
    ]
    assert [d.reason for r in rows[:2] for d in r.decisions] == ["superseded", "superseded"]


async def test_a_reply_to_the_setup_tip_continues_the_conversation(herald: Herald) -> None:
    order = take_order(herald, OrderStatus.DELIVERED, avoid=owners_of(herald, "voice"))
    customer_id, number = order.customer_id, order.number
    product = order.lines[0].product
    name, guide = product.name, product.setup_guide
    quiet_hours_elsewhere(herald, customer_id)

    async with web_chats(herald, [customer_id]) as (chat,):
        body = {"kind": "device.delivered", "data": {"order_number": number}}
        code, _ = await post_event(herald, body, f"e2e-delivered-{number}")
        assert code == 201

        tip = await chat.next_message()
        assert name in text_of(tip) and "walk you through" in text_of(tip)
        yes = next(b for b in tip["quick_replies"] if b["payload"] == "/affirm")

        # The customer taps "Yes, show me the steps": the web page sends the payload.
        await chat.say(yes["payload"])

        steps = await chat.next_message(60)
        assert f"Setting up your {name}" in text_of(steps)
        assert guide.splitlines()[-1] in text_of(steps)


async def test_stop_shipping_updates_in_chat_and_the_next_one_is_not_sent(
    herald: Herald,
) -> None:
    order = take_order(herald, OrderStatus.OUT_FOR_DELIVERY)
    customer_id, number = order.customer_id, order.number
    quiet_hours_elsewhere(herald, customer_id)

    async with web_chats(herald, [customer_id]) as (chat,):
        await chat.say("stop sending me shipping updates")
        reply = await chat.next_message(60)
        assert "no more shipping updates" in text_of(reply)

        body = {
            "kind": "shipment.status_changed",
            "data": {"order_number": number, "status": "delivered"},
        }
        code, created = await post_event(herald, body, f"e2e-optout-{number}")
        assert code == 201

        def decided() -> bool:
            rows = outreach_rows(
                herald, Outreach.event_id == created["event_id"], Outreach.topic == "shipping"
            )
            return bool(rows) and rows[0].state is OutreachState.SUPPRESSED

        await asyncio.to_thread(wait_for, decided)
        assert await chat.nothing_more(2) == []

    (row,) = outreach_rows(
        herald, Outreach.event_id == created["event_id"], Outreach.topic == "shipping"
    )
    assert [(d.kind, d.reason) for d in row.decisions] == [(DecisionKind.SUPPRESS, "opted_out")]

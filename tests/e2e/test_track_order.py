"""A customer asks where their order is, over REST and socket.io, through every layer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import requests
import socketio
from sqlalchemy import select

from bot.db import session_scope
from bot.db.models import Order, OrderStatus
from tests.e2e.conftest import Herald

pytestmark = pytest.mark.e2e


def shipped_order(herald: Herald) -> tuple[int, int, str, str, int]:
    """(owner, order number, carrier, tracking number, another customer's order number)."""
    with session_scope(herald.database_url) as session:
        order = session.scalars(
            select(Order).where(Order.status == OrderStatus.SHIPPED).order_by(Order.number)
        ).first()
        assert order is not None
        other = session.scalars(
            select(Order).where(Order.customer_id != order.customer_id).order_by(Order.number)
        ).first()
        assert other is not None
        shipment = order.shipments[-1]
        return (
            order.customer_id,
            order.number,
            shipment.carrier,
            shipment.tracking_number,
            other.number,
        )


def say_rest(
    herald: Herald, text: str, token: str | None = None, sender: str | None = None
) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body: dict[str, Any] = {"message": text}
    if sender:
        body["sender"] = sender
    reply = requests.post(herald.rest_url, json=body, headers=headers, timeout=60)
    reply.raise_for_status()
    return list(reply.json())


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


def test_rest_where_is_order_answers_with_the_real_shipment(herald: Herald) -> None:
    owner, number, carrier, tracking, _ = shipped_order(herald)

    reply = texts(say_rest(herald, f"where is order {number}?", herald.token_for(owner)))

    assert f"Order {number}" in reply
    assert "shipped" in reply and carrier in reply and tracking in reply
    assert "Expected delivery" in reply


def test_rest_someone_elses_order_is_not_found(herald: Herald) -> None:
    owner, _, _, _, other_number = shipped_order(herald)

    reply = texts(say_rest(herald, f"where is my order {other_number}", herald.token_for(owner)))

    assert f"couldn't find order {other_number}" in reply
    assert "tracking number" not in reply


def test_rest_anonymous_visitor_is_asked_to_sign_in(herald: Herald) -> None:
    _, number, _, tracking, _ = shipped_order(herald)

    reply = texts(say_rest(herald, f"where is order {number}?", sender="visitor-abcdef12"))

    assert "sign in" in reply
    assert tracking not in reply


def test_rest_forged_token_is_an_anonymous_visitor(herald: Herald) -> None:
    owner, number, _, tracking, _ = shipped_order(herald)
    forged = herald.token_for(owner)[:-4] + "AAAA"

    reply = texts(say_rest(herald, f"where is order {number}?", forged))

    assert tracking not in reply and "sign in" in reply


async def _socket_conversation(herald: Herald, token: str, text: str) -> tuple[dict, list[dict]]:
    client = socketio.AsyncClient(reconnection=False)
    replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    confirmed: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    client.on("session_confirm", lambda data: confirmed.done() or confirmed.set_result(data))
    client.on("bot_uttered", replies.put_nowait)
    await client.connect(
        herald.config.rasa_url,
        auth={"token": token},
        socketio_path="/socket.io",
        transports=["websocket"],
    )
    try:
        session = await asyncio.wait_for(confirmed, 10)
        await client.emit("user_uttered", {"message": text, "session_id": "web:1"})
        messages = [await asyncio.wait_for(replies.get(), 60)]
        while True:
            try:
                messages.append(await asyncio.wait_for(replies.get(), 1.5))
            except TimeoutError:
                break
        return session, messages
    finally:
        await client.disconnect()


def test_socketio_where_is_my_order_answers_the_token_holder(herald: Herald) -> None:
    owner, number, carrier, tracking, _ = shipped_order(herald)

    session, messages = asyncio.run(
        _socket_conversation(herald, herald.token_for(owner), f"where's order #{number}")
    )

    assert session == {"sender_id": f"web:{owner}", "verified": True}
    reply = texts(messages)
    assert f"Order {number}" in reply and carrier in reply and tracking in reply
    assert any(m.get("quick_replies") for m in messages)


def test_socketio_someone_elses_order_is_not_found(herald: Herald) -> None:
    owner, _, _, _, other_number = shipped_order(herald)

    _, messages = asyncio.run(
        _socket_conversation(herald, herald.token_for(owner), f"track order {other_number}")
    )

    assert f"couldn't find order {other_number}" in texts(messages)

"""Multi-turn conversations over REST through every layer, checked against the database."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from bot.db import session_scope
from bot.db.models import Order, OrderStatus, Refund, RefundStatus, SupportTicket
from tests.e2e.conftest import Herald

pytestmark = pytest.mark.e2e


class Chat:
    """One customer's (or visitor's) conversation with Herald's REST channel."""

    def __init__(self, herald: Herald, token: str | None = None) -> None:
        self.herald = herald
        self.token = token
        # Without a token the REST connector makes this an anonymous web:anon-<sender> chat.
        self.sender = f"e2e{uuid.uuid4().hex[:12]}"

    def say(self, text: str) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        reply = requests.post(
            self.herald.rest_url,
            json={"message": text, "sender": self.sender},
            headers=headers,
            timeout=60,
        )
        reply.raise_for_status()
        return list(reply.json())

    def says(self, text: str) -> str:
        return "\n".join(m.get("text", "") for m in self.say(text))


def unshipped_order(herald: Herald) -> tuple[int, int]:
    """(customer, order number) of a paid order that has not shipped, and has no refunds."""
    with session_scope(herald.database_url) as session:
        order = session.scalars(
            select(Order)
            .where(Order.status == OrderStatus.PAID, ~Order.refunds.any())
            .order_by(Order.number.desc())
        ).first()
        assert order is not None
        return order.customer_id, order.number


def test_cancel_an_unshipped_order_after_confirming(herald: Herald) -> None:
    customer, number = unshipped_order(herald)
    chat = Chat(herald, herald.token_for(customer))

    question = chat.say(f"please cancel my order {number}")
    asked = "\n".join(m.get("text", "") for m in question)
    assert f"Order {number}" in asked and "Shall I cancel it?" in asked
    assert [b["payload"] for m in question for b in m.get("buttons", [])] == ["/affirm", "/deny"]

    # The customer presses "Yes", which sends the button's payload.
    done = chat.says("/affirm")

    assert f"order {number} is cancelled" in done
    assert "refund" in done
    with session_scope(herald.database_url) as session:
        order = session.get(Order, number)
        assert order is not None and order.status is OrderStatus.CANCELLED
        assert [r.status for r in order.refunds] == [RefundStatus.APPROVED]


def test_someone_elses_order_cannot_be_cancelled(herald: Herald) -> None:
    customer, _ = unshipped_order(herald)
    with session_scope(herald.database_url) as session:
        theirs = session.scalars(
            select(Order.number)
            .where(Order.customer_id != customer, Order.status == OrderStatus.PAID)
            .order_by(Order.number)
        ).first()
    chat = Chat(herald, herald.token_for(customer))

    reply = chat.says(f"cancel order {theirs}")

    assert f"couldn't find order {theirs}" in reply
    with session_scope(herald.database_url) as session:
        assert session.get(Order, theirs).status is OrderStatus.PAID  # type: ignore[union-attr]
    # The form still waits for one of their own orders; leave the conversation tidy.
    assert "nothing was changed" in chat.says("no")


def test_changing_ones_mind_in_the_middle_of_a_return(herald: Herald) -> None:
    with session_scope(herald.database_url) as session:
        order = session.scalars(
            select(Order)
            .where(Order.status == OrderStatus.DELIVERED, ~Order.refunds.any())
            .order_by(Order.number)
        ).first()
        assert order is not None
        customer = order.customer_id
        before = session.scalar(select(func.count()).select_from(Refund))
    chat = Chat(herald, herald.token_for(customer))

    question = chat.says("I want to return an item")
    assert "?" in question  # which order / which device / why

    stopped = chat.says("no, leave it")

    assert "nothing was changed" in stopped
    with session_scope(herald.database_url) as session:
        assert session.scalar(select(func.count()).select_from(Refund)) == before
    # The conversation goes on normally afterwards.
    assert "order" in chat.says("where is my order?").lower()


def test_two_messages_not_understood_then_a_person_opens_a_ticket(herald: Herald) -> None:
    chat = Chat(herald)

    first = chat.says("vrrm glonk spatuliferous wibbly")
    second_messages = chat.say("zzkt plorb yeeble frunk")
    second = "\n".join(m.get("text", "") for m in second_messages)

    assert "say it another way" in first
    assert "hand you to a person" in second
    button = next(
        b for m in second_messages for b in m.get("buttons", []) if b["title"] == "Talk to a person"
    )
    handed = chat.says(button["payload"])

    assert "I've opened ticket #" in handed
    number = int(handed.split("ticket #", 1)[1].split()[0])
    with session_scope(herald.database_url) as session:
        ticket = session.get(SupportTicket, number)
        assert ticket is not None
        assert ticket.customer_id is None
        assert ticket.sender_id == f"web:anon-{chat.sender}"
        assert ticket.channel == "rest"
        assert "Customer: vrrm glonk spatuliferous wibbly" in ticket.summary
        assert "Herald: Sorry, I didn't quite get that" in ticket.summary

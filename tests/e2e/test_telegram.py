"""Telegram end to end: updates as Telegram sends them, through Rasa, to a fake Bot API."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from sqlalchemy import select

from bot.db import session_scope
from bot.db.models import Order, OrderStatus, Platform
from tests.e2e.conftest import Herald
from tests.fakes.channels import (
    E2E_CHAT_INTERVAL,
    linked_identities,
    trigger_intent,
    unreachable_at,
)
from tests.fakes.telegram import (
    callback_update,
    inline_keyboard,
    message_update,
    next_update_id,
    post_update,
)

pytestmark = pytest.mark.e2e

OPEN = {
    OrderStatus.PAID,
    OrderStatus.PACKED,
    OrderStatus.SHIPPED,
    OrderStatus.OUT_FOR_DELIVERY,
    OrderStatus.DELAYED,
}


def webhook_url(herald: Herald) -> str:
    return f"{herald.config.rasa_url}/webhooks/telegram/webhook"


def secret(herald: Herald) -> str:
    return herald.config.secrets["HERALD_TELEGRAM_WEBHOOK_SECRET"]


def telegram_user(herald: Herald, slot: int, *, open_orders: bool | None = None) -> tuple[int, int]:
    """(customer id, user id) for one test: each test talks in a conversation of its own.

    This module takes linked customers from the 40th on (other modules take the first
    ones); a test asking for `open_orders` gets the first of ten reserved for that.
    """
    mine = linked_identities(herald.database_url, Platform.TELEGRAM)[40:]
    if open_orders is None:
        customer_id, external_id = mine[10 + slot]
        return customer_id, int(external_id)
    with session_scope(herald.database_url) as session:
        for customer_id, external_id in mine[:10]:
            statuses = set(
                session.scalars(select(Order.status).where(Order.customer_id == customer_id))
            )
            if bool(statuses & OPEN) == open_orders:
                return customer_id, int(external_id)
    raise AssertionError("no linked customer with those orders in the demo shop")


def say(herald: Herald, update: dict[str, Any]) -> requests.Response:
    reply = post_update(webhook_url(herald), secret(herald), update)
    assert reply.status_code == 200, reply.text
    return reply


def test_a_conversation_with_buttons_end_to_end(herald: Herald) -> None:
    customer_id, user = telegram_user(herald, 0, open_orders=False)
    fake = herald.telegram

    # Other tests share the demo shop: an outage notice may have reached this customer.
    before = len(fake.sent_messages(user))
    say(herald, message_update(user, "where is my order?"))

    [choices] = fake.sent_messages(user)[before:]
    buttons = inline_keyboard(choices)
    track = [b for b in buttons if "track_order" in b.get("callback_data", "")]
    assert track, f"expected order buttons, got {buttons}"
    assert fake.calls("sendChatAction", chat_id=user, action="typing")

    say(herald, callback_update(user, track[0]["callback_data"], choices.params["text"]))

    payload = track[0]["callback_data"]
    number = json.loads(payload[payload.index("{") :])["order_number"]
    answer = fake.sent_messages(user)[-1].params["text"]
    assert f"Order {number}" in answer
    assert fake.calls("answerCallbackQuery")
    with session_scope(herald.database_url) as session:
        order = session.scalar(select(Order).where(Order.number == int(number)))
        assert order is not None and order.customer_id == customer_id


def test_an_update_without_the_secret_token_is_refused_before_parsing(herald: Herald) -> None:
    _, user = telegram_user(herald, 1)
    update = message_update(user, "where is my order?")
    before = herald.telegram.sent_messages(user)

    for presented in (None, "wrong-secret", secret(herald)[:-1]):
        reply = post_update(webhook_url(herald), presented, update)
        assert reply.status_code == 403
    # Not even a malformed body gets past the secret.
    assert post_update(webhook_url(herald), None, b"{not json").status_code == 403

    assert herald.telegram.sent_messages(user) == before


def test_a_repeated_update_is_processed_once(herald: Herald) -> None:
    _, user = telegram_user(herald, 2)
    update = message_update(user, "hello", update_id=next_update_id())

    first = say(herald, update)
    answered = len(herald.telegram.sent_messages(user))
    second = say(herald, update)

    assert first.json() == {"status": "ok"} and second.json() == {"status": "duplicate"}
    assert answered >= 1
    assert len(herald.telegram.sent_messages(user)) == answered


def test_a_malformed_update_with_the_secret_is_a_bad_request(herald: Herald) -> None:
    reply = post_update(webhook_url(herald), secret(herald), b"[1, 2]")
    assert reply.status_code == 400


def test_a_proactive_message_is_delivered(herald: Herald) -> None:
    _, user = telegram_user(herald, 3)

    reply = trigger_intent(
        herald.config.rasa_url,
        herald.config.secrets["HERALD_RASA_API_TOKEN"],
        f"telegram:{user}",
        "greet",
        "telegram",
    )

    assert reply.status_code == 200, reply.text
    texts = herald.telegram.texts(user)
    assert any("Herald" in text for text in texts), texts


def test_100_messages_to_one_chat_respect_the_rate_limits(herald: Herald) -> None:
    _, user = telegram_user(herald, 4)
    token = herald.config.secrets["HERALD_RASA_API_TOKEN"]

    def greet(_: int) -> int:
        return trigger_intent(
            herald.config.rasa_url, token, f"telegram:{user}", "greet", "telegram"
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(greet, range(100))) == {200}

    sends = herald.telegram.wait_for(
        lambda: (s := herald.telegram.sent_messages(user)) and len(s) >= 100 and s, timeout=120
    )
    assert len(sends) >= 100
    times = sorted(call.at for call in sends)
    assert min(b - a for a, b in zip(times, times[1:], strict=False)) >= float(E2E_CHAT_INTERVAL)
    # Telegram's overall limit: never more than 30 in any one second.
    assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) <= 30


def test_a_user_who_blocked_the_bot_is_reported_unreachable(herald: Herald) -> None:
    probe = requests.post(
        f"{herald.config.app_url}/internal/identities/unreachable",
        json={},
        headers={"Authorization": "Bearer " + herald.config.secrets["HERALD_INTERNAL_API_KEY"]},
        timeout=10,
    )
    if probe.status_code == 404:
        pytest.skip("the app has no /internal/identities/unreachable endpoint yet")
    _, user = telegram_user(herald, 5)
    herald.telegram.block(user)

    trigger_intent(
        herald.config.rasa_url,
        herald.config.secrets["HERALD_RASA_API_TOKEN"],
        f"telegram:{user}",
        "greet",
        "telegram",
    )

    assert herald.telegram.wait_for(
        lambda: unreachable_at(herald.database_url, Platform.TELEGRAM, str(user)), timeout=30
    )

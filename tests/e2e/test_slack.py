"""Slack end to end: signed requests as Slack sends them, through Rasa, to a fake Web API."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import select

from bot.db import session_scope
from bot.db.models import Order, OrderStatus, Platform
from tests.e2e.conftest import Herald
from tests.fakes.channels import (
    E2E_CHAT_INTERVAL,
    SLACK_SIGNING_SECRET,
    linked_identities,
    trigger_intent,
    unreachable_at,
)
from tests.fakes.server import Call
from tests.fakes.slack import (
    BOT_USER_ID,
    block_actions,
    block_texts,
    button_values,
    dm_channel,
    dm_event,
    event_callback,
    mention_event,
    post_event,
    post_interaction,
    sign,
)

pytestmark = pytest.mark.e2e

OPEN = {
    OrderStatus.PAID,
    OrderStatus.PACKED,
    OrderStatus.SHIPPED,
    OrderStatus.OUT_FOR_DELIVERY,
    OrderStatus.DELAYED,
}


def events_url(herald: Herald) -> str:
    return f"{herald.config.rasa_url}/webhooks/slack/events"


def interactions_url(herald: Herald) -> str:
    return f"{herald.config.rasa_url}/webhooks/slack/interactions"


def slack_user(herald: Herald, slot: int, *, open_orders: bool | None = None) -> tuple[int, str]:
    """(customer id, user id) for one test: each test talks in a conversation of its own.

    This module takes linked customers from the 40th on (other modules take the first
    ones); a test asking for `open_orders` gets the first of ten reserved for that.
    """
    mine = linked_identities(herald.database_url, Platform.SLACK)[40:]
    if open_orders is None:
        customer_id, external_id = mine[10 + slot]
        return customer_id, external_id
    with session_scope(herald.database_url) as session:
        for customer_id, external_id in mine[:10]:
            statuses = set(
                session.scalars(select(Order.status).where(Order.customer_id == customer_id))
            )
            if bool(statuses & OPEN) == open_orders:
                return customer_id, external_id
    raise AssertionError("no linked customer with those orders in the demo shop")


def send_event(herald: Herald, payload: dict[str, object], **kwargs: int) -> requests.Response:
    reply = post_event(events_url(herald), SLACK_SIGNING_SECRET, payload, **kwargs)
    assert reply.status_code == 200, reply.text
    return reply


def posts_after(herald: Herald, channel: str, count: int) -> list[Call]:
    """Wait for `count` posts to `channel`: the bot answers after acknowledging Slack."""
    return herald.slack.wait_for(
        lambda: len(herald.slack.posts(channel)) >= count and herald.slack.posts(channel), 90
    )


def test_a_dm_conversation_with_buttons_end_to_end(herald: Herald) -> None:
    customer_id, user = slack_user(herald, 0, open_orders=False)
    channel = dm_channel(user)

    send_event(herald, dm_event(user, "where is my order?"))

    [choices] = posts_after(herald, channel, 1)
    track = [v for v in button_values(choices) if "track_order" in v]
    assert track, f"expected order buttons, got {button_values(choices)}"
    assert choices.params.get("thread_ts") is None  # a DM is answered in the DM

    index = button_values(choices).index(track[0])
    clicked = post_interaction(
        interactions_url(herald), SLACK_SIGNING_SECRET, block_actions(user, choices, index)
    )
    assert clicked.status_code == 200

    answer = posts_after(herald, channel, 2)[-1]
    number = json.loads(track[0][track[0].index("{") :])["order_number"]
    assert f"Order {number}" in block_texts(answer)
    # The clicked message now shows the choice instead of live buttons.
    assert herald.slack.wait_for(lambda: herald.slack.calls("chat.update", channel=channel), 30)
    with session_scope(herald.database_url) as session:
        order = session.scalar(select(Order).where(Order.number == int(number)))
        assert order is not None and order.customer_id == customer_id


def test_a_mention_in_a_channel_is_answered_in_its_thread(herald: Herald) -> None:
    _, user = slack_user(herald, 1)
    payload = mention_event(user, "C0SUPPORT01", "hello there")

    send_event(herald, payload)

    [reply] = posts_after(herald, "C0SUPPORT01", 1)
    assert reply.params["thread_ts"] == payload["event"]["ts"]  # type: ignore[index]


def test_url_verification_answers_the_challenge(herald: Herald) -> None:
    reply = send_event(
        herald,
        {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        },
    )
    assert reply.json()["challenge"] == "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"


def test_forged_stale_and_malformed_requests_get_401_and_nothing_happens(herald: Herald) -> None:
    _, user = slack_user(herald, 2)
    payload = dm_event(user, "where is my order?")
    body = json.dumps(payload).encode()
    now = int(time.time())
    attempts = {
        "forged": sign(body, "not-our-signing-secret", now),
        "stale": sign(body, SLACK_SIGNING_SECRET, now - 600),
        "unsigned": {},
        "malformed timestamp": {
            **sign(body, SLACK_SIGNING_SECRET, now),
            "X-Slack-Request-Timestamp": "yesterday",
        },
        "malformed signature": {
            **sign(body, SLACK_SIGNING_SECRET, now),
            "X-Slack-Signature": "v0=zz",
        },
    }
    for name, headers in attempts.items():
        reply = requests.post(
            events_url(herald),
            data=body,
            timeout=30,
            headers={"Content-Type": "application/json", **headers},
        )
        assert reply.status_code == 401, name
    tampered = body.replace(b"where is my order?", b"cancel my order!!!")
    reply = requests.post(
        events_url(herald),
        data=tampered,
        timeout=30,
        headers={"Content-Type": "application/json", **sign(body, SLACK_SIGNING_SECRET)},
    )
    assert reply.status_code == 401

    time.sleep(2)  # long enough for a wrongly accepted event to have been answered
    assert herald.slack.posts(dm_channel(user)) == []


def test_a_retried_event_is_processed_once(herald: Herald) -> None:
    _, user = slack_user(herald, 3)
    payload = dm_event(user, "hello")

    send_event(herald, payload)
    posts_after(herald, dm_channel(user), 1)
    time.sleep(1)  # the whole answer, if it has several parts
    answered = len(herald.slack.posts(dm_channel(user)))
    send_event(herald, payload, retry_num=1)
    send_event(herald, payload, retry_num=2)

    time.sleep(2)  # long enough for a wrongly accepted retry to have been answered
    assert len(herald.slack.posts(dm_channel(user))) == answered


def test_the_bots_own_messages_are_ignored(herald: Herald) -> None:
    _, user = slack_user(herald, 4)
    own = event_callback(
        {
            "type": "message",
            "channel": dm_channel(user),
            "user": BOT_USER_ID,
            "text": "Hi! I'm Herald",
            "ts": "1.1",
            "channel_type": "im",
        }
    )
    other_bot = event_callback(
        {
            "type": "message",
            "channel": dm_channel(user),
            "bot_id": "B0OTHER",
            "subtype": "bot_message",
            "text": "beep",
            "ts": "1.2",
            "channel_type": "im",
        }
    )
    send_event(herald, own)
    send_event(herald, other_bot)
    time.sleep(2)
    assert herald.slack.posts(dm_channel(user)) == []


def test_a_proactive_message_opens_a_dm_and_is_delivered(herald: Herald) -> None:
    _, user = slack_user(herald, 5)

    reply = trigger_intent(
        herald.config.rasa_url,
        herald.config.secrets["HERALD_RASA_API_TOKEN"],
        f"slack:{user}",
        "greet",
        "slack",
    )

    assert reply.status_code == 200, reply.text
    assert herald.slack.calls("conversations.open", users=user)
    texts = [block_texts(post) for post in herald.slack.posts(dm_channel(user))]
    assert any("Herald" in text for text in texts), texts


def test_100_messages_to_one_channel_are_spaced(herald: Herald) -> None:
    _, user = slack_user(herald, 6)
    token = herald.config.secrets["HERALD_RASA_API_TOKEN"]

    def greet(_: int) -> int:
        return trigger_intent(
            herald.config.rasa_url, token, f"slack:{user}", "greet", "slack"
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(greet, range(100))) == {200}

    posts = posts_after(herald, dm_channel(user), 100)
    assert len(posts) >= 100
    times = sorted(p.at for p in posts)
    assert min(b - a for a, b in zip(times, times[1:], strict=False)) >= float(E2E_CHAT_INTERVAL)


def test_a_user_who_left_is_reported_unreachable(herald: Herald) -> None:
    probe = requests.post(
        f"{herald.config.app_url}/internal/identities/unreachable",
        json={},
        headers={"Authorization": "Bearer " + herald.config.secrets["HERALD_INTERNAL_API_KEY"]},
        timeout=10,
    )
    if probe.status_code == 404:
        pytest.skip("the app has no /internal/identities/unreachable endpoint yet")
    _, user = slack_user(herald, 7)
    herald.slack.fail_user(user, "account_inactive")

    trigger_intent(
        herald.config.rasa_url,
        herald.config.secrets["HERALD_RASA_API_TOKEN"],
        f"slack:{user}",
        "greet",
        "slack",
    )

    assert herald.slack.wait_for(
        lambda: unreachable_at(herald.database_url, Platform.SLACK, user), timeout=30
    )

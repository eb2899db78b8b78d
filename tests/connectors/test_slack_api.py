"""Slack: signatures as Slack makes them, events and clicks, and slack_sdk against a fake API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest

from connectors.messages import Button, OutgoingMessage
from connectors.pacing import Pacer
from connectors.slack_api import (
    Outcome,
    SlackDelivery,
    build_client,
    parse_block_action,
    parse_event,
    signature_is_valid,
)
from connectors.unreachable import UnreachableReporter
from tests.connectors.conftest import INTERNAL_KEY, ReportInbox
from tests.fakes.slack import (
    BOT_ID,
    BOT_USER_ID,
    FakeSlack,
    block_actions,
    button_values,
    dm_channel,
    dm_event,
    mention_event,
    sign,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
USER = "U0001123456"
TRACK = '/track_order{"order_number":"10042"}'
BODY = json.dumps(dm_event(USER, "hi")).encode()


def test_a_request_signed_as_slack_signs_it_is_valid() -> None:
    headers = sign(BODY, SECRET)
    assert signature_is_valid(
        SECRET, BODY, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        ("stale", None),
        ("forged", None),
        ("not-a-number", "v0=abc"),
        (None, "v0=abc"),
        ("now", None),
        ("now", "v1=abc"),
        ("now", "v0=ünïcode"),
        ("now", ""),
    ],
)
def test_stale_forged_or_malformed_signatures_are_invalid(
    timestamp: str | None, signature: str | None
) -> None:
    now = int(time.time())
    if timestamp == "stale":
        headers = sign(BODY, SECRET, now - 301)
    elif timestamp == "forged":
        headers = sign(BODY, "some-other-secret", now)
    else:
        headers = {"X-Slack-Request-Timestamp": str(now) if timestamp == "now" else timestamp}
    ts = headers.get("X-Slack-Request-Timestamp")
    sig = signature if signature is not None or timestamp == "now" else headers["X-Slack-Signature"]
    assert not signature_is_valid(SECRET, BODY, ts, sig)


def test_a_signature_for_another_body_is_invalid() -> None:
    headers = sign(BODY, SECRET)
    tampered = BODY.replace(b"hi", b"yo")
    assert not signature_is_valid(
        SECRET, tampered, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )


def test_no_signing_secret_means_nothing_is_valid() -> None:
    headers = sign(BODY, "")
    assert not signature_is_valid(
        "", BODY, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )


def test_direct_messages_are_answered_in_the_dm() -> None:
    inbound = parse_event(
        dm_event(USER, "where is order 10042 &amp; the refund?")["event"], BOT_USER_ID
    )
    assert inbound is not None
    assert inbound.sender_id == f"slack:{USER}"
    assert inbound.channel == dm_channel(USER) and inbound.thread_ts is None
    assert inbound.text == "where is order 10042 & the refund?"


def test_mentions_in_channels_are_answered_in_a_thread_without_the_mention() -> None:
    event = mention_event(USER, "C0SUPPORT1", "where is my order?")["event"]
    inbound = parse_event(event, BOT_USER_ID)
    assert inbound is not None
    assert inbound.text == "where is my order?"
    assert inbound.channel == "C0SUPPORT1" and inbound.thread_ts == event["ts"]


@pytest.mark.parametrize(
    ("typed", "text"),
    [
        ("my email is <mailto:ada@example.com|ada@example.com>", "my email is ada@example.com"),
        (
            "see <https://lumen.example/o/10042|my order> &amp; <https://x.example>",
            "see my order & https://x.example",
        ),
        ("<!here> ask <#C0SUPPORT1|support> or <@U0002222222>", "@here ask #support or"),
        ("a &lt;b&gt; c", "a <b> c"),
    ],
)
def test_slack_markup_becomes_what_the_customer_typed(typed: str, text: str) -> None:
    inbound = parse_event(dm_event(USER, typed)["event"], BOT_USER_ID)
    assert inbound is not None and inbound.text == text


@pytest.mark.parametrize(
    "change",
    [
        {"user": BOT_USER_ID},  # our own message
        {"bot_id": BOT_ID},  # any bot's message
        {"subtype": "message_changed"},  # edits, joins, deletions
        {"channel_type": "channel"},  # channel chatter without a mention
        {"user": None},
    ],
)
def test_the_bots_own_and_other_non_customer_messages_are_ignored(
    change: dict[str, object],
) -> None:
    event = {**dm_event(USER, "hello")["event"], **change}
    assert parse_event(event, BOT_USER_ID) is None


async def test_a_click_comes_back_as_the_buttons_payload(fake_slack: FakeSlack) -> None:
    delivery = SlackDelivery(
        build_client(fake_slack.token, fake_slack.api_url), Pacer(0), _reporter()
    )
    await delivery.send(
        USER, OutgoingMessage(text="Which?", buttons=(Button("Order 10042", TRACK),))
    )
    posted = fake_slack.posts()[0]

    click = parse_block_action(block_actions(USER, posted))

    assert click is not None
    assert click.inbound.text == TRACK and click.inbound.sender_id == f"slack:{USER}"
    assert click.title == "Order 10042"
    assert parse_block_action({"type": "view_submission"}) is None


def _reporter() -> UnreachableReporter:
    return UnreachableReporter("", "")


@pytest.fixture
async def delivery(
    fake_slack: FakeSlack, reporter: UnreachableReporter
) -> AsyncIterator[SlackDelivery]:
    yield SlackDelivery(build_client(fake_slack.token, fake_slack.api_url), Pacer(0.01), reporter)


async def test_a_proactive_message_opens_the_dm_first_then_posts_block_kit(
    delivery: SlackDelivery, fake_slack: FakeSlack
) -> None:
    message = OutgoingMessage(
        text="Outage in your region", buttons=(Button("Status", "/outage_status"),)
    )

    assert await delivery.send(USER, message) is Outcome.SENT
    assert await delivery.send(USER, OutgoingMessage(text="Fixed now")) is Outcome.SENT

    assert [c.method for c in fake_slack.calls()] == [
        "conversations.open",
        "chat.postMessage",
        "chat.postMessage",  # the DM channel is remembered
    ]
    first = fake_slack.posts(dm_channel(USER))[0]
    assert first.params["text"] == "Outage in your region"
    assert button_values(first) == ["/outage_status"]


async def test_a_reply_to_a_mention_goes_into_its_thread(
    delivery: SlackDelivery, fake_slack: FakeSlack
) -> None:
    await delivery.send(USER, OutgoingMessage(text="On its way"), "C0SUPPORT1", "1700000000.000100")
    [post] = fake_slack.posts("C0SUPPORT1")
    assert post.params["thread_ts"] == "1700000000.000100"
    assert not fake_slack.calls("conversations.open")


async def test_429_retry_after_is_honoured_and_the_message_still_arrives(
    delivery: SlackDelivery, fake_slack: FakeSlack
) -> None:
    fake_slack.rate_limit("chat.postMessage", 1)

    assert await delivery.send(USER, OutgoingMessage(text="hello"), "C0SUPPORT1") is Outcome.SENT

    refused, delivered = fake_slack.posts("C0SUPPORT1")
    assert delivered.at - refused.at >= 1.0


@pytest.mark.parametrize("error", ["user_not_found", "account_inactive", "is_archived"])
async def test_permanent_failures_report_the_user_unreachable(
    delivery: SlackDelivery, fake_slack: FakeSlack, inbox: ReportInbox, error: str
) -> None:
    fake_slack.fail_user(USER, error)

    assert await delivery.send(USER, OutgoingMessage(text="Renewal due")) is Outcome.UNREACHABLE

    assert inbox.reports() == [
        {"platform": "slack", "external_id": USER, "authorization": f"Bearer {INTERNAL_KEY}"}
    ]


async def test_messages_to_one_channel_are_spaced(
    delivery: SlackDelivery, fake_slack: FakeSlack
) -> None:
    delivery.pacer = Pacer(0.05)
    await asyncio.gather(
        *(delivery.send(USER, OutgoingMessage(text=f"m{n}"), "C0SUPPORT1") for n in range(8))
    )
    posts = fake_slack.posts("C0SUPPORT1")
    assert [p.params["text"] for p in posts] == [f"m{n}" for n in range(8)]
    assert min(b.at - a.at for a, b in zip(posts, posts[1:], strict=False)) >= 0.05


async def test_a_clicked_message_shows_the_choice_instead_of_the_buttons(
    delivery: SlackDelivery, fake_slack: FakeSlack
) -> None:
    await delivery.send(
        USER, OutgoingMessage(text="Which?", buttons=(Button("Order 10042", TRACK),))
    )
    click = parse_block_action(block_actions(USER, fake_slack.posts()[0]))
    assert click is not None

    await delivery.mark_chosen(click)

    [update] = fake_slack.calls("chat.update")
    kinds = [b["type"] for b in update.params["blocks"]]
    assert kinds == ["section", "context"]
    assert "Order 10042" in update.params["blocks"][1]["elements"][0]["text"]

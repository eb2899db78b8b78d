"""The running servers are closed, tokens are checked end to end, and chats link by email code.

Against the real stack: Rasa's HTTP API, the action server and the app API refuse calls
without their credentials; web chat treats forged, expired and tampered tokens as an
anonymous visitor; a Telegram user links their account with the code from the email
(through the fake Bot API and a local SMTP server), is locked out after wrong codes,
and unlinks again.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from sqlalchemy import select

from bot.db import session_scope
from bot.db.models import ChannelIdentity, Customer, Order, Platform
from bot.identity.tokens import sign_customer_token
from tests.e2e.conftest import Herald
from tests.e2e.test_track_order import _socket_conversation, say_rest, shipped_order, texts
from tests.fakes.telegram import message_update, post_update

pytestmark = pytest.mark.e2e


# --- Rasa's HTTP API ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/conversations/web:1/tracker", None),
        ("POST", "/conversations/web:1/trigger_intent", {"name": "greet"}),
        ("POST", "/conversations/web:1/messages", {"text": "hi", "sender": "user"}),
        ("PUT", "/conversations/web:1/tracker/events", []),
        ("GET", "/conversations/web:1/story", None),
        ("POST", "/model/parse", {"text": "where is my order"}),
        ("GET", "/status", None),
        ("GET", "/domain", None),
    ],
)
def test_rasa_api_refuses_calls_without_the_token(
    herald: Herald, method: str, path: str, body: Any
) -> None:
    url = f"{herald.config.rasa_url}{path}"
    for params in ({}, {"token": "wrong"}, {"token": ""}):
        reply = requests.request(method, url, params=params, json=body, timeout=30)
        assert reply.status_code in (401, 403), (path, params, reply.status_code)
        assert "events" not in reply.text


def test_rasa_api_answers_with_the_token(herald: Herald) -> None:
    token = herald.config.secrets["HERALD_RASA_API_TOKEN"]
    reply = requests.get(
        f"{herald.config.rasa_url}/conversations/web:1/tracker",
        params={"token": token},
        timeout=30,
    )
    assert reply.status_code == 200
    assert reply.json()["sender_id"] == "web:1"


# --- the action server -------------------------------------------------------------------------

MARKER = "tracker-marker-7f3a"


def action_call(action: str, tracker: Any) -> dict[str, Any]:
    return {
        "next_action": action,
        "sender_id": "web:1",
        "tracker": tracker,
        "domain": {},
        "version": "3.6.21",
    }


def good_tracker() -> dict[str, Any]:
    return {
        "sender_id": "web:1",
        "slots": {"secret_note": MARKER},
        "latest_message": {"intent": {"name": "track_order"}, "entities": [], "text": MARKER},
        "events": [{"event": "user", "text": MARKER}],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": "action_listen",
    }


def test_action_server_refuses_calls_without_the_shared_secret(herald: Herald) -> None:
    url = f"{herald.config.action_url}/webhook"
    secret = herald.config.secrets["HERALD_ACTION_SERVER_TOKEN"]
    for headers in ({}, {"X-Herald-Action-Token": "wrong"}, {"X-Herald-Action-Token": secret[:-1]}):
        reply = requests.post(
            url, json=action_call("action_track_order", good_tracker()), headers=headers, timeout=30
        )
        assert reply.status_code == 401
        assert MARKER not in reply.text
    listing = requests.get(f"{herald.config.action_url}/actions", timeout=30)
    assert listing.status_code == 401
    assert requests.get(f"{herald.config.action_url}/health", timeout=30).status_code == 200


def test_action_server_errors_never_echo_the_tracker(herald: Herald) -> None:
    url = f"{herald.config.action_url}/webhook"
    headers = {"X-Herald-Action-Token": herald.config.secrets["HERALD_ACTION_SERVER_TOKEN"]}
    broken = good_tracker()
    broken["latest_message"] = MARKER  # a string where an object belongs: the action crashes
    broken["events"] = MARKER
    for call in (
        action_call("action_track_order", broken),
        action_call("action_that_does_not_exist", good_tracker()),
        {"next_action": "action_track_order", "tracker": MARKER},
    ):
        reply = requests.post(url, json=call, headers=headers, timeout=30)
        assert reply.status_code >= 400, reply.text
        assert MARKER not in reply.text
    bad_json = requests.post(
        url,
        data=f'{{"tracker": "{MARKER}"',
        headers={**headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert bad_json.status_code >= 400 and MARKER not in bad_json.text


# --- the app API -------------------------------------------------------------------------------


def test_app_api_endpoints_need_keys_with_their_scope(herald: Herald) -> None:
    app = herald.config.app_url
    events_key = herald.config.secrets["HERALD_API_EVENTS_KEY"]
    event = {"kind": "order.paid", "data": {"order_number": 10001}}
    assert requests.post(f"{app}/events", json=event, timeout=30).status_code == 401
    assert requests.get(f"{app}/reports/outreach", timeout=30).status_code == 401
    unreachable = f"{app}/internal/identities/unreachable"
    assert requests.post(unreachable, json={}, timeout=30).status_code == 401
    with_events_key = {"Authorization": f"Bearer {events_key}"}
    assert (
        requests.get(f"{app}/reports/outreach", headers=with_events_key, timeout=30).status_code
        == 403
    )
    assert (
        requests.post(unreachable, json={}, headers=with_events_key, timeout=30).status_code == 403
    )
    admin = {"Authorization": f"Bearer {herald.config.secrets['HERALD_API_ADMIN_KEY']}"}
    assert requests.get(f"{app}/reports/outreach", headers=admin, timeout=30).status_code == 200


# --- web chat tokens, end to end ---------------------------------------------------------------


def bad_tokens(herald: Herald, owner: int) -> dict[str, str]:
    secret = herald.config.secrets["HERALD_CUSTOMER_TOKEN_SECRET"]
    good = herald.token_for(owner)
    header, _, signature = good.split(".")
    other_payload = jwt.encode(
        {"sub": str(owner + 1), "aud": "herald-webchat", "exp": int(time.time()) + 600},
        "x" * 32,
        algorithm="HS256",
    ).split(".")[1]
    return {
        "expired": sign_customer_token(owner, secret, ttl_seconds=60, now=time.time() - 3600),
        "tampered": ".".join([header, other_payload, signature]),
        "signed by someone else": sign_customer_token(owner, "an-attackers-secret-0123456789ab"),
        "unsigned": jwt.encode(
            {"sub": str(owner), "aud": "herald-webchat", "exp": int(time.time()) + 600},
            None,
            algorithm="none",
        ),
    }


def test_rest_bad_tokens_are_anonymous_visitors(herald: Herald) -> None:
    owner, number, _, tracking, _ = shipped_order(herald)
    for why, token in bad_tokens(herald, owner).items():
        reply = texts(say_rest(herald, f"where is order {number}?", token))
        assert tracking not in reply, why
        assert "sign in" in reply, why


def test_socketio_bad_tokens_are_anonymous_visitors(herald: Herald) -> None:
    owner, number, _, tracking, _ = shipped_order(herald)
    for why, token in bad_tokens(herald, owner).items():
        session, messages = asyncio.run(
            _socket_conversation(herald, token, f"where is order {number}?")
        )
        assert session["verified"] is False, why
        assert session["sender_id"].startswith("web:anon-"), why
        assert tracking not in texts(messages), why


# --- linking a Telegram account ----------------------------------------------------------------


def telegram_says(herald: Herald, user: int, text: str) -> str:
    """Send one message as a Telegram user; Herald's replies to it, joined."""
    before = len(herald.telegram.sent_messages(user))
    reply = post_update(
        f"{herald.config.rasa_url}/webhooks/telegram/webhook",
        herald.config.secrets["HERALD_TELEGRAM_WEBHOOK_SECRET"],
        message_update(user, text),
    )
    assert reply.status_code == 200, reply.text
    herald.telegram.wait_for(lambda: herald.telegram.sent_messages(user)[before:], 60)
    # A turn may have several bubbles, paced out: wait until no more arrive.
    count = 0
    while count != len(herald.telegram.sent_messages(user)):
        count = len(herald.telegram.sent_messages(user))
        time.sleep(0.5)
    return "\n".join(m.params.get("text", "") for m in herald.telegram.sent_messages(user)[before:])


def unlinked_customer(herald: Herald, nth: int) -> tuple[int, str, int]:
    """(customer id, email, newest order number) of a customer with no Telegram account."""
    with session_scope(herald.database_url) as session:
        has_chat = select(ChannelIdentity.customer_id).where(
            ChannelIdentity.platform != Platform.WEB, ChannelIdentity.customer_id.is_not(None)
        )
        customer = session.scalars(
            select(Customer)
            .where(Customer.id.not_in(has_chat), Customer.forgotten_at.is_(None))
            .order_by(Customer.id.desc())
        ).all()[nth]
        order = session.scalars(
            select(Order).where(Order.customer_id == customer.id).order_by(Order.number.desc())
        ).first()
        assert order is not None
        return customer.id, customer.email, order.number


def test_a_telegram_user_links_with_the_emailed_code_and_unlinks(herald: Herald) -> None:
    customer_id, email, number = unlinked_customer(herald, 0)
    user = 810_000_001

    before = telegram_says(herald, user, f"where is order {number}?")
    assert f"Order {number} (" not in before and "link my account" in before
    assert "email address" in telegram_says(herald, user, "link my account")
    asked = telegram_says(herald, user, email)
    assert f"{email[0]}***@example.com" in asked and "6-digit code" in asked
    code = herald.mailbox.latest_code(email)
    assert code not in asked

    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert "4 more times" in telegram_says(herald, user, wrong)
    assert "now linked" in telegram_says(herald, user, code)

    answer = telegram_says(herald, user, f"where is order {number}?")
    assert f"Order {number}" in answer
    assert "no longer linked" in telegram_says(herald, user, "unlink my account")
    after = telegram_says(herald, user, f"where is order {number}?")
    assert f"Order {number} (" not in after
    with session_scope(herald.database_url) as session:
        row = session.scalars(
            select(ChannelIdentity).where(ChannelIdentity.external_id == str(user))
        ).one()
        assert (row.customer_id, row.verified) == (customer_id, False)


def test_an_unknown_email_gets_the_same_reply_and_no_email(herald: Herald) -> None:
    _, email, _ = unlinked_customer(herald, 1)
    known, unknown = 810_000_002, 810_000_003
    telegram_says(herald, known, "link my account")
    telegram_says(herald, unknown, "link my account")

    said_known = telegram_says(herald, known, email)
    said_unknown = telegram_says(herald, unknown, "n" + email)

    assert said_known.replace(f"{email[0]}***", "X***") == said_unknown.replace("n***", "X***")
    herald.mailbox.wait_for(email)
    herald.mailbox.settle()
    assert herald.mailbox.to("n" + email) == []


def test_wrong_codes_lock_linking_for_the_chat(herald: Herald) -> None:
    _, email, number = unlinked_customer(herald, 2)
    user = 810_000_004
    telegram_says(herald, user, "link my account")
    telegram_says(herald, user, email)
    code = herald.mailbox.latest_code(email)
    guesses = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 6)]

    replies = [telegram_says(herald, user, guess) for guess in guesses]

    assert "too many wrong codes" in replies[-1]
    assert "too many wrong codes" in telegram_says(herald, user, "link my account")
    assert f"Order {number} (" not in telegram_says(herald, user, f"where is order {number}?")


def test_web_chat_visitors_are_told_to_sign_in_instead_of_linking(herald: Herald) -> None:
    reply = texts(say_rest(herald, "link my account", sender="visitor-linking1"))
    assert "sign in" in reply.lower()
    signed_in = texts(say_rest(herald, "link my account", herald.token_for(1)))
    assert "already know" in signed_in


def test_rasa_trigger_intent_with_the_token_reaches_only_that_conversation(herald: Herald) -> None:
    """What proactive delivery uses: authenticated, and it speaks in the named conversation."""
    token = herald.config.secrets["HERALD_RASA_API_TOKEN"]
    reply = requests.post(
        f"{herald.config.rasa_url}/conversations/web:anon-trigger01/trigger_intent",
        params={"token": token},
        json={"name": "greet", "entities": {}},
        timeout=60,
    )
    assert reply.status_code == 200
    body = reply.json()
    assert body["tracker"]["sender_id"] == "web:anon-trigger01"
    assert json.dumps(body["messages"])


def test_no_secret_is_on_a_command_line(herald: Herald) -> None:
    """Arguments are readable by every local user (ps); secrets travel in the environment."""
    secrets = [v for v in herald.config.secrets.values() if len(v) >= 16]
    for name, process in herald.stack.processes.items():
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode(errors="replace")
        assert not [s for s in secrets if s in cmdline], f"a secret is in {name}'s arguments"

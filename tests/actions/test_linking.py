"""Linking a Telegram or Slack chat by email and code, as the action server runs it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.linking import (
    ActionCancelLinking,
    ActionCheckLinking,
    ActionFinishLinking,
    ActionUnlinkAccount,
    ValidateLinkAccountForm,
)
from actions.orders import ActionTrackOrder
from bot.db import session_scope
from bot.db.models import ChannelIdentity, Customer, Order, Platform
from bot.identity.customers import verified_customer
from bot.settings import get_settings
from tests.actions.conftest import ActionResult, Conversation, run_action
from tests.mailbox import Mailbox, running_mailbox

LINK_SECRET = "link-secret-for-action-tests-0123456789"


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with running_mailbox() as box:
        yield box


@pytest.fixture
def shop(
    demo_settings: str, tmp_path: Path, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A private copy of the demo shop (linking writes), with SMTP pointed at the mailbox."""
    copy = tmp_path / "herald.db"
    # The backup API copies what is still in the write-ahead log, too.
    with sqlite3.connect(demo_settings.split("///", 1)[1]) as source, sqlite3.connect(copy) as dest:
        source.backup(dest)
    url = f"sqlite:///{copy}"
    monkeypatch.setenv("HERALD_DATABASE_URL", url)
    monkeypatch.setenv("HERALD_LINK_CODE_SECRET", LINK_SECRET)
    monkeypatch.setenv("HERALD_SMTP_HOST", mailbox.host)
    monkeypatch.setenv("HERALD_SMTP_PORT", str(mailbox.port))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def customer_without_chat(url: str, index: int = 0) -> tuple[int, str]:
    """(id, email) of a demo customer who has linked neither Telegram nor Slack."""
    with session_scope(url) as session:
        linked = select(ChannelIdentity.customer_id).where(ChannelIdentity.platform != Platform.WEB)
        customers = session.scalars(
            select(Customer).where(Customer.id.not_in(linked)).order_by(Customer.id)
        ).all()
        return customers[index].id, customers[index].email


def form_turn(
    action: Action,
    sender_id: str,
    requested_slot: str | None,
    candidates: dict[str, Any],
    text: str = "",
) -> ActionResult:
    """Run the form's validation the way Rasa calls it: candidates as the latest slot events."""
    events: list[dict[str, Any]] = [
        {"event": "user", "text": text},
        {"event": "action", "name": "link_account_form"},
        *({"event": "slot", "name": k, "value": v} for k, v in candidates.items()),
    ]
    tracker = Tracker(
        sender_id,
        {"requested_slot": requested_slot, **candidates},
        {"intent": {"name": "inform", "confidence": 0.9}, "entities": [], "text": text},
        events,
        False,
        None,
        {"name": "link_account_form"},
        "action_listen",
    )
    dispatcher = CollectingDispatcher()
    result = asyncio.run(action.run(dispatcher, tracker, {}))
    return ActionResult(dispatcher.messages, result)


def give_email(sender_id: str, email: str) -> ActionResult:
    return form_turn(ValidateLinkAccountForm(), sender_id, "link_email", {"link_email": email})


def give_code(sender_id: str, code: str) -> ActionResult:
    return form_turn(ValidateLinkAccountForm(), sender_id, "link_code", {"link_code": code})


def linked_to(url: str, sender_id: str) -> int | None:
    with session_scope(url) as session:
        customer = verified_customer(session, sender_id)
        return customer.id if customer else None


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_a_telegram_customer_links_with_the_emailed_code(shop: str, mailbox: Mailbox) -> None:
    customer_id, email = customer_without_chat(shop)
    sender = "telegram:91000001"

    check = run_action(ActionCheckLinking(), Conversation(sender, intent="link_account"))
    assert check.slot("linking_allowed") is True and check.messages == []

    sent = give_email(sender, email.upper())
    assert sent.responses == ["utter_link_code_sent"]
    assert sent.messages[0]["masked_email"] == email[0] + "***@example.com"
    assert sent.messages[0]["minutes"] == 10
    assert sent.slot("link_email") == email[0] + "***@example.com"  # never the address itself
    code = mailbox.latest_code(email)

    wrong_try = give_code(sender, wrong(code))
    assert wrong_try.responses == ["utter_link_code_wrong"]
    assert wrong_try.messages[0]["tries"] == "4 more times"
    assert wrong_try.slot("link_code") is None and wrong_try.slot("requested_slot") == "unset"
    assert linked_to(shop, sender) is None

    done = give_code(sender, f"the code is {code}")
    assert done.responses == ["utter_link_done"]
    assert done.slot("requested_slot") is None
    assert done.slot("link_email") is None and done.slot("link_code") is None
    assert linked_to(shop, sender) == customer_id

    # Now the chat sees this customer's own orders, and nobody else's.
    track = run_action(ActionTrackOrder(), Conversation(sender))
    with session_scope(shop) as session:
        numbers = set(session.scalars(select(Order.number).where(Order.customer_id == customer_id)))
    shown = " ".join(track.texts + [b["payload"] for b in track.buttons])
    assert any(str(n) in shown for n in numbers)
    assert "utter_sign_in_needed" not in track.responses


def test_an_unknown_email_gets_the_same_reply_and_no_email(shop: str, mailbox: Mailbox) -> None:
    _, email = customer_without_chat(shop, 1)
    known = give_email("slack:U0KNOWN01", email)
    unknown = give_email("slack:U0UNKNOWN", "x" + email)

    def shape(result: ActionResult) -> list[dict[str, Any]]:
        return [{k: v for k, v in m.items() if k != "masked_email"} for m in result.messages]

    assert shape(unknown) == shape(known)
    assert unknown.events == [
        {**e, "value": "x***@example.com"} if e["name"] == "link_email" else e for e in known.events
    ]
    mailbox.wait_for(email)
    mailbox.settle()
    assert mailbox.to("x" + email) == []
    # Whatever is typed next is simply wrong: no hint that the email was unknown.
    assert give_code("slack:U0UNKNOWN", "123456").responses == ["utter_link_code_wrong"]


def test_typos_get_a_hint_and_do_not_cost_a_try(shop: str, mailbox: Mailbox) -> None:
    _, email = customer_without_chat(shop, 2)
    sender = "telegram:91000003"

    not_email = give_email(sender, "my email is maria at example")
    assert not_email.responses == ["utter_link_email_invalid"]
    assert not_email.slot("link_email") is None

    give_email(sender, email)
    code = mailbox.latest_code(email)
    for _ in range(6):
        assert give_code(sender, "where is my order").responses == ["utter_link_code_invalid"]
    assert give_code(sender, code).responses == ["utter_link_done"]


def test_five_wrong_codes_lock_linking_for_this_chat(shop: str, mailbox: Mailbox) -> None:
    _, email = customer_without_chat(shop, 3)
    sender = "telegram:91000004"
    give_email(sender, email)
    code = mailbox.latest_code(email)

    replies = [give_code(sender, wrong(code)) for _ in range(5)]

    assert [r.messages[0].get("tries") for r in replies[:4]] == [
        "4 more times",
        "3 more times",
        "2 more times",
        "1 more time",
    ]
    assert replies[4].responses == ["utter_link_locked"]
    assert replies[4].messages[0]["minutes"] == 15
    assert replies[4].slot("requested_slot") is None
    # The right code no longer helps, and asking again is refused up front.
    check = run_action(ActionCheckLinking(), Conversation(sender, intent="link_account"))
    assert check.responses == ["utter_link_locked"]
    assert check.slot("linking_allowed") is False
    assert linked_to(shop, sender) is None


def test_a_new_email_mid_form_sends_a_new_code(shop: str, mailbox: Mailbox) -> None:
    _, first = customer_without_chat(shop, 4)
    customer_id, second = customer_without_chat(shop, 5)
    sender = "slack:U0CHANGE1"
    give_email(sender, first)
    mailbox.wait_for(first)

    again = form_turn(
        ValidateLinkAccountForm(),
        sender,
        "link_code",
        {"link_email": second, "link_code": f"sorry, it's {second}"},
    )
    assert again.responses == ["utter_link_code_sent"]
    assert again.slot("link_code") is None

    assert give_code(sender, mailbox.latest_code(second)).responses == ["utter_link_done"]
    assert linked_to(shop, sender) == customer_id


def test_web_chat_is_told_to_sign_in_instead(shop: str) -> None:
    signed_in = run_action(ActionCheckLinking(), Conversation("web:5", intent="link_account"))
    assert signed_in.responses == ["utter_link_web_signed_in"]
    assert signed_in.slot("linking_allowed") is False

    anonymous = run_action(
        ActionCheckLinking(), Conversation("web:anon-abcdef12", intent="link_account")
    )
    assert anonymous.responses == ["utter_link_web_sign_in"]

    forced = give_email("web:anon-abcdef12", "someone@example.com")
    assert forced.responses == ["utter_link_web_sign_in"]
    assert forced.slot("requested_slot") is None


def test_an_already_linked_chat_is_told_to_unlink_first(shop: str) -> None:
    with session_scope(shop) as session:
        identity = session.scalars(
            select(ChannelIdentity).where(ChannelIdentity.platform == Platform.TELEGRAM)
        ).first()
        assert identity is not None
        sender = identity.sender_id

    check = run_action(ActionCheckLinking(), Conversation(sender, intent="link_account"))

    assert check.responses == ["utter_link_already_linked"]
    assert check.slot("linking_allowed") is False


def test_unlinking_ends_access_until_linked_again(shop: str) -> None:
    with session_scope(shop) as session:
        identity = session.scalars(
            select(ChannelIdentity).where(ChannelIdentity.platform == Platform.SLACK)
        ).first()
        assert identity is not None
        sender = identity.sender_id

    done = run_action(ActionUnlinkAccount(), Conversation(sender, intent="unlink_account"))
    assert done.responses == ["utter_unlink_done"]
    assert linked_to(shop, sender) is None
    assert run_action(ActionTrackOrder(), Conversation(sender)).responses == [
        "utter_sign_in_needed"
    ]

    again = run_action(ActionUnlinkAccount(), Conversation(sender, intent="unlink_account"))
    assert again.responses == ["utter_unlink_not_linked"]
    web = run_action(ActionUnlinkAccount(), Conversation("web:5", intent="unlink_account"))
    assert web.responses == ["utter_unlink_web"]
    assert linked_to(shop, "web:5") == 5


def test_finishing_or_cancelling_clears_what_was_typed(shop: str) -> None:
    for action in (ActionFinishLinking(), ActionCancelLinking()):
        result = run_action(action, Conversation("telegram:91000009", intent="deny"))
        assert result.slot("link_email") is None
        assert result.slot("link_code") is None
        assert result.slot("linking_allowed") is None
    cancelled = run_action(ActionCancelLinking(), Conversation("telegram:91000009"))
    assert cancelled.responses == ["utter_link_cancelled"]


def test_without_a_code_key_linking_says_it_is_unavailable(
    shop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_LINK_CODE_SECRET", "")
    get_settings.cache_clear()
    _, email = customer_without_chat(shop, 6)

    result = give_email("telegram:91000010", email)

    assert result.responses == ["utter_service_unavailable"]
    assert result.slot("requested_slot") is None

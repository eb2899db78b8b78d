"""Someone else's order or invoice number gets exactly the reply a number nobody has gets.

Every action of the package is run as one verified customer with another customer's
number (as an entity, as a slot, and mid-form while the form asks for it) and with a
number that does not exist; the replies and slot events must be the same apart from
the number itself, and each refused lookup must be logged. New actions are swept in
automatically.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from bot.db import session_scope
from bot.db.models import ChannelIdentity, Customer, Invoice, Order, OrderStatus, Platform
from bot.settings import get_settings
from tests.actions.test_ownership_guard import IDENTITY_ACTIONS, action_classes, qualname

UNKNOWN_ORDER = "99999"
UNKNOWN_INVOICE = "INV-999999"
REFUSED = "refused"
# Actions left out of the sweep, with the reason.
NOT_SWEPT = {
    "action_unlink_account": "changes whom the chat belongs to; tests/actions/test_linking.py",
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, demo_database: str) -> str:
    """A private copy of the demo shop: some actions write (tickets) even when refusing."""
    copy = tmp_path_factory.mktemp("cross-customer") / "herald.db"
    with sqlite3.connect(demo_database.split("///", 1)[1]) as source, sqlite3.connect(copy) as dest:
        source.backup(dest)
    return f"sqlite:///{copy}"


@pytest.fixture(autouse=True)
def _private_shop(shop: str, demo_settings: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HERALD_DATABASE_URL", shop)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@dataclass(frozen=True)
class Cast:
    """The customer asking, and another customer's numbers they try."""

    customer_id: int
    sender_ids: tuple[str, ...]
    victim_order: str
    victim_invoice: str
    victim_secrets: tuple[str, ...]


@pytest.fixture(scope="module")
def cast(shop: str) -> Cast:
    with session_scope(shop) as session:
        telegram = session.scalars(
            select(ChannelIdentity)
            .where(ChannelIdentity.platform == Platform.TELEGRAM, ChannelIdentity.verified)
            .order_by(ChannelIdentity.id)
        ).first()
        assert telegram is not None and telegram.customer_id is not None
        me = telegram.customer_id
        # The victim's order is in a state every order action acts on (paid: cancellable).
        order = session.scalars(
            select(Order)
            .where(Order.customer_id != me, Order.status == OrderStatus.PAID)
            .order_by(Order.number)
        ).first()
        assert order is not None
        invoice = session.scalars(
            select(Invoice).where(Invoice.customer_id == order.customer_id)
        ).first()
        assert invoice is not None
        victim = session.get(Customer, order.customer_id)
        assert victim is not None
        secrets = (victim.name, victim.email, str(order.total), invoice.pdf_url)
        return Cast(
            me,
            (f"web:{me}", telegram.sender_id),
            str(order.number),
            invoice.number,
            secrets,
        )


def concrete_actions() -> list[type[Action]]:
    found = []
    for action in action_classes():
        cls = action.cls
        if inspect.isabstract(cls) or qualname(cls) in IDENTITY_ACTIONS:
            continue
        try:
            instance = cls()
        except TypeError:
            continue
        if instance.name() not in NOT_SWEPT:
            found.append(cls)
    return found


def run(
    action: Action,
    sender_id: str,
    *,
    intent: str,
    entities: dict[str, str],
    slots: dict[str, Any],
    candidates: dict[str, Any] | None = None,
    active_loop: str | None = None,
) -> tuple[str, str]:
    """(what the customer sees and the slot events, refusal log lines) for one call."""
    events: list[dict[str, Any]] = [{"event": "user", "text": " ".join(entities.values())}]
    if candidates is not None:
        events.append({"event": "action", "name": active_loop})
        events += [{"event": "slot", "name": k, "value": v} for k, v in candidates.items()]
    tracker = Tracker(
        sender_id,
        {**slots, **(candidates or {})},
        {
            "intent": {"name": intent, "confidence": 0.99},
            "entities": [{"entity": k, "value": v} for k, v in entities.items()],
            "text": " ".join(entities.values()),
        },
        events,
        False,
        None,
        {"name": active_loop} if active_loop else {},
        "action_listen",
    )
    dispatcher = CollectingDispatcher()
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        result: Any = asyncio.run(action.run(dispatcher, tracker, {}))
    except Exception as error:  # the same failure for both numbers is still no leak
        result = f"raised {type(error).__name__}"
    finally:
        logging.getLogger().removeHandler(handler)
    seen = json.dumps({"messages": dispatcher.messages, "events": result}, sort_keys=True)
    refusals = " ".join(r.getMessage() for r in records if REFUSED in r.getMessage())
    return seen, refusals


def normalised(seen: str, number: str) -> str:
    digits = re.sub(r"\D", "", number)
    return seen.replace(number, "<N>").replace(digits, "<N>")


def compare(
    cast: Cast,
    label: str,
    attempt: tuple[str, str],
    unknown: tuple[str, str],
    victim_number: str,
    unknown_number: str,
) -> list[str]:
    problems = []
    seen, refusals = attempt
    if normalised(seen, victim_number) != normalised(unknown[0], unknown_number):
        problems.append(f"{label}: someone else's number answered differently")
    leaked = [s for s in cast.victim_secrets if s in seen]
    if leaked:
        problems.append(f"{label}: leaked {leaked}")
    if "not_found" in unknown[0] and not refusals:
        problems.append(f"{label}: refused lookup was not logged")
    return problems


PROBES = (
    ("order_number", "victim_order", UNKNOWN_ORDER),
    ("invoice_number", "victim_invoice", UNKNOWN_INVOICE),
)


def probe(cast: Cast, label: str, ask: Any, victim_number: str, unknown_number: str) -> list[str]:
    """Unknown number, then the victim's, then unknown again; compare the last two.

    The first call absorbs what any call changes (a ticket opened, a form step taken),
    so the comparison is between two calls made in the same state.
    """
    ask(unknown_number)
    attempt = ask(victim_number)
    return compare(cast, label, attempt, ask(unknown_number), victim_number, unknown_number)


def test_every_action_answers_someone_elses_number_like_an_unknown_one(cast: Cast) -> None:
    problems: list[str] = []
    for cls in concrete_actions():
        action = cls()
        for slot, attribute, unknown_number in PROBES:
            for sender in cast.sender_ids:
                for how in ("entity", "slot"):

                    def ask(
                        number: str,
                        action: Action = action,
                        sender: str = sender,
                        slot: str = slot,
                        how: str = how,
                    ) -> tuple[str, str]:
                        return run(
                            action,
                            sender,
                            intent="inform",
                            entities={slot: number} if how == "entity" else {},
                            slots={slot: number},
                        )

                    label = f"{action.name()} ({slot} as {how}, {sender})"
                    problems += probe(cast, label, ask, getattr(cast, attribute), unknown_number)
    assert not problems, "\n".join(sorted(set(problems)))


def test_mid_form_someone_elses_number_is_an_unknown_one(cast: Cast) -> None:
    problems: list[str] = []
    validators = [cls for cls in concrete_actions() if cls().name().startswith("validate_")]
    assert validators, "no form validation actions found"
    for cls in validators:
        action = cls()
        form = action.name().removeprefix("validate_")
        for slot, attribute, unknown_number in PROBES:
            for requested in (slot, None):  # asked for it, or given with the opening message

                def ask(
                    number: str,
                    action: Action = action,
                    slot: str = slot,
                    requested: str | None = requested,
                    form: str = form,
                ) -> tuple[str, str]:
                    return run(
                        action,
                        cast.sender_ids[0],
                        intent="inform",
                        entities={slot: number},
                        slots={"requested_slot": requested},
                        candidates={slot: number},
                        active_loop=form,
                    )

                label = f"{action.name()} (mid-form, {slot}, requested={requested})"
                problems += probe(cast, label, ask, getattr(cast, attribute), unknown_number)
    assert not problems, "\n".join(sorted(set(problems)))


def test_guessing_order_numbers_reveals_nothing(cast: Cast, shop: str) -> None:
    """Walk the numbers around someone else's order: each one is 'not found', and logged."""
    from actions.orders import ActionTrackOrder

    with session_scope(shop) as session:
        mine = set(
            session.scalars(select(Order.number).where(Order.customer_id == cast.customer_id))
        )
        existing = set(session.scalars(select(Order.number)))
    highest = max(existing)
    start = int(cast.victim_order)
    guesses = [n for n in range(start - 10, start + 30) if n not in mine] + [highest + 1]
    unknown = run(
        ActionTrackOrder(),
        cast.sender_ids[1],
        intent="track_order",
        entities={"order_number": UNKNOWN_ORDER},
        slots={},
    )
    problems: list[str] = []
    for number in guesses:
        attempt = run(
            ActionTrackOrder(),
            cast.sender_ids[1],
            intent="track_order",
            entities={"order_number": str(number)},
            slots={},
        )
        if normalised(attempt[0], str(number)) != normalised(unknown[0], UNKNOWN_ORDER):
            problems.append(f"guess {number} answered differently")
        if number in existing and not attempt[1]:
            problems.append(f"guess {number} (someone's order) was not logged")
    assert not problems, problems


def test_an_unlinked_chat_sees_nobodys_data(cast: Cast) -> None:
    """A Telegram account nobody linked: every action treats it as a stranger."""
    leaks = []
    for cls in concrete_actions():
        seen, _ = run(
            cls(),
            "telegram:123450000",
            intent="track_order",
            entities={"order_number": cast.victim_order},
            slots={},
        )
        leaks += [f"{cls().name()} leaked {s}" for s in cast.victim_secrets if s in seen]
    assert not leaks, leaks

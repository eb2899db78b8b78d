"""Form validation for a verified customer: pure slot checks, order lookups, early stops."""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actions.base import EventList
from actions.formatting import clip, looks_like_card_number, parse_order_number
from bot.db import session_scope
from bot.db.models import Customer, Order, OrderStatus
from bot.identity.customers import verified_customer
from bot.identity.ownership import find_owned
from bot.logging import set_conversation

logger = logging.getLogger(__name__)

REQUESTED_SLOT = "requested_slot"
# Every slot a form of ours fills; cleared when a form ends so nothing leaks into the next.
FORM_SLOTS = (
    "order_number",
    "product",
    "reason",
    "address_street",
    "address_city",
    "address_postcode",
    "address_country",
    "confirmed",
)
# Slots whose value may come with the message that starts a form ("cancel order 10042").
ENTITY_SLOTS = frozenset({"order_number", "product"})

# Countries Lumen Home delivers to; the delivery policy lists them from here too.
SHIPPING_COUNTRIES: dict[str, str] = {
    "AT": "Austria",
    "AU": "Australia",
    "BE": "Belgium",
    "BR": "Brazil",
    "CA": "Canada",
    "CH": "Switzerland",
    "DE": "Germany",
    "DK": "Denmark",
    "ES": "Spain",
    "FR": "France",
    "GB": "United Kingdom",
    "IE": "Ireland",
    "IN": "India",
    "IT": "Italy",
    "JP": "Japan",
    "NL": "Netherlands",
    "NO": "Norway",
    "PL": "Poland",
    "PT": "Portugal",
    "SE": "Sweden",
    "US": "United States",
}
COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "usa": "US",
    "u.s.": "US",
    "u.s.a.": "US",
    "america": "US",
    "united states of america": "US",
    "the netherlands": "NL",
    "holland": "NL",
    "deutschland": "DE",
    "españa": "ES",
    "espana": "ES",
    "the uk": "GB",
    "the us": "US",
    "the usa": "US",
}
POSTCODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]{1,9}")
REASON_LIMIT = 300


@dataclass(frozen=True)
class Verdict:
    """What a slot check decided: the slot values to set, and what to tell the customer."""

    slots: dict[str, Any]
    response: str | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def tell(self, dispatcher: CollectingDispatcher) -> dict[str, Any]:
        if self.response:
            dispatcher.utter_message(response=self.response, **self.values)
        return self.slots


def _free_text(value: object) -> str:
    return " ".join(str(value or "").split())


def _refuse_card_number(slot: str, text: str) -> Verdict | None:
    if looks_like_card_number(text):
        return Verdict({slot: None}, "utter_no_card_numbers")
    return None


def validate_address_street(value: object) -> Verdict:
    """Street and house number: one line, letters in it, not a card number or an essay."""
    text = _free_text(value)
    if refused := _refuse_card_number("address_street", text):
        return refused
    full = parse_full_address(text)
    if full is not None:
        return Verdict(full)
    if len(text) > 120:
        return Verdict({"address_street": None}, "utter_address_too_long")
    if len(text) < 3 or not re.search(r"[^\W\d_]", text):
        return Verdict({"address_street": None}, "utter_invalid_street")
    return Verdict({"address_street": text})


def validate_address_city(value: object) -> Verdict:
    text = _free_text(value).strip(",. ")
    if len(text) > 80:
        return Verdict({"address_city": None}, "utter_address_too_long")
    if len(text) < 2 or not re.fullmatch(r"[^\W\d_][^\W\d_ .'\-]*(?:[ .'\-]+[^\W\d_]+)*\.?", text):
        return Verdict({"address_city": None}, "utter_invalid_city")
    return Verdict({"address_city": text})


def validate_address_postcode(value: object) -> Verdict:
    text = _free_text(value).strip(",. ").upper()
    if refused := _refuse_card_number("address_postcode", text):
        return refused
    if not POSTCODE.fullmatch(text) or not any(ch.isdigit() for ch in text):
        return Verdict({"address_postcode": None}, "utter_invalid_postcode")
    return Verdict({"address_postcode": text})


def country_code(value: object) -> str | None:
    """The ISO code of a country we deliver to, from a code or a name as people write it."""
    text = _free_text(value).strip(",. ").lower()
    if not text:
        return None
    if text.upper() in SHIPPING_COUNTRIES:
        return text.upper()
    if text in COUNTRY_ALIASES:
        return COUNTRY_ALIASES[text]
    return next((code for code, name in SHIPPING_COUNTRIES.items() if name.lower() == text), None)


def validate_address_country(value: object) -> Verdict:
    code = country_code(value)
    if code is None:
        return Verdict(
            {"address_country": None},
            "utter_invalid_country",
            {"countries": ", ".join(sorted(SHIPPING_COUNTRIES.values()))},
        )
    return Verdict({"address_country": code})


def parse_full_address(text: str) -> dict[str, str] | None:
    """A whole address in one message: 'street, postcode city, country' (or city first)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if len(parts) != 3:
        return None
    street, place, country = parts
    code = country_code(country)
    if code is None:
        return None
    words = place.split()
    for postcode, city in (
        (" ".join(words[:1]), " ".join(words[1:])),
        (" ".join(words[-1:]), " ".join(words[:-1])),
        (" ".join(words[-2:]), " ".join(words[:-2])),
        (" ".join(words[:2]), " ".join(words[2:])),
    ):
        checks = (
            validate_address_street(street) if "," not in street else None,
            validate_address_city(city),
            validate_address_postcode(postcode),
        )
        if all(check is not None and check.response is None for check in checks):
            return {
                "address_street": " ".join(street.split()),
                "address_city": " ".join(city.split()),
                "address_postcode": postcode.upper(),
                "address_country": code,
            }
    return None


def validate_reason(value: object) -> Verdict:
    """Why the customer wants their money back, kept short enough for the refund record."""
    text = _free_text(value)
    if refused := _refuse_card_number("reason", text):
        return refused
    if len(text) < 3 or not re.search(r"[^\W\d_]", text):
        return Verdict({"reason": None}, "utter_invalid_reason")
    return Verdict({"reason": clip(text, REASON_LIMIT)})


def validate_confirmed(value: object) -> Verdict:
    return Verdict({"confirmed": value if isinstance(value, bool) else None})


@dataclass
class FormTurn:
    """One validation call: the verified customer, an open session, and the conversation."""

    session: Session
    customer: Customer
    dispatcher: CollectingDispatcher
    tracker: Tracker

    @property
    def starting(self) -> bool:
        """True on the message that opened the form, before any question was asked."""
        return self.tracker.get_slot(REQUESTED_SLOT) is None

    def said_now(self, entity: str) -> bool:
        return next(self.tracker.get_latest_entity_values(entity), None) is not None


def stop_form(slots: dict[str, Any] | None = None) -> dict[str, Any]:
    """Slot updates that end the form now; the submit action then finds nothing to do."""
    return {**(slots or {}), REQUESTED_SLOT: None}


def ends_form(updates: dict[str, Any]) -> bool:
    return REQUESTED_SLOT in updates and updates[REQUESTED_SLOT] is None


class CustomerFormValidation(Action, ABC):
    """Validates one form's slots for the verified customer behind the conversation.

    Anonymous visitors are told to sign in and the form ends at once; so does a form
    whose precondition fails (`start`). Each `validate_<slot>(value, turn)` returns
    the slot updates; returning `stop_form(...)` ends the form early.
    """

    required: ClassVar[tuple[str, ...]]
    anonymous_response: ClassVar[str] = "utter_sign_in_needed"

    @property
    @abstractmethod
    def form(self) -> str:
        """The form this validates; a subclass names it, which makes it concrete."""

    def name(self) -> str:
        return f"validate_{self.form}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        # Log lines of this conversation carry its correlation id (to_thread copies it).
        set_conversation(tracker.sender_id)
        return await asyncio.to_thread(self._run_sync, dispatcher, tracker)

    def _run_sync(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        try:
            with session_scope() as session:
                customer = verified_customer(session, tracker.sender_id)
                if customer is None:
                    self.answer_anonymous(dispatcher)
                    return [SlotSet(REQUESTED_SLOT, None)]
                updates = self.validate(FormTurn(session, customer, dispatcher, tracker))
        except SQLAlchemyError:
            logger.exception("database error in %s", self.name())
            dispatcher.utter_message(response="utter_service_unavailable")
            return [SlotSet(REQUESTED_SLOT, None)]
        return [SlotSet(slot, value) for slot, value in updates.items()]

    def answer_anonymous(self, dispatcher: CollectingDispatcher) -> None:
        dispatcher.utter_message(response=self.anonymous_response)

    def validate(self, turn: FormTurn) -> dict[str, Any]:
        updates: dict[str, Any] = {}
        candidates = {
            slot: value
            for slot, value in turn.tracker.slots_to_validate().items()
            if slot in self.required
        }
        if turn.starting:
            for slot in list(candidates):
                # Values left over from earlier in the conversation are not what this
                # request is about; only what came with this very message counts.
                if slot not in ENTITY_SLOTS or not turn.said_now(slot):
                    candidates.pop(slot)
                    updates[slot] = None
            start = self.start(turn)
            if ends_form(start):
                return {**updates, **dict.fromkeys(candidates), **start}
            updates.update(start)
            turn.tracker.slots.update(updates)
        for slot in self.required:
            if slot not in candidates:
                continue
            check: Callable[[Any, FormTurn], dict[str, Any]] = getattr(self, f"validate_{slot}")
            result = check(candidates[slot], turn)
            updates.update(result)
            # Later checks see earlier verdicts (the product check needs the order).
            turn.tracker.slots.update(result)
            if ends_form(result):
                break
        return updates

    def start(self, turn: FormTurn) -> dict[str, Any]:
        """Slot updates when the form opens: values we can fill in, or `stop_form()`."""
        return {}

    # Pure checks shared by every form that asks for them.
    def validate_address_street(self, value: Any, turn: FormTurn) -> dict[str, Any]:
        return validate_address_street(value).tell(turn.dispatcher)

    def validate_address_city(self, value: Any, turn: FormTurn) -> dict[str, Any]:
        return validate_address_city(value).tell(turn.dispatcher)

    def validate_address_postcode(self, value: Any, turn: FormTurn) -> dict[str, Any]:
        return validate_address_postcode(value).tell(turn.dispatcher)

    def validate_address_country(self, value: Any, turn: FormTurn) -> dict[str, Any]:
        return validate_address_country(value).tell(turn.dispatcher)

    def validate_reason(self, value: Any, turn: FormTurn) -> dict[str, Any]:
        return validate_reason(value).tell(turn.dispatcher)

    def validate_confirmed(self, value: Any, turn: FormTurn) -> dict[str, Any]:
        return validate_confirmed(value).tell(turn.dispatcher)


def owned_order(turn: FormTurn, value: Any, slot: str = "order_number") -> Order | None:
    """The customer's order named by `value`; otherwise the unknown-number reply, exactly
    as for a number nobody has, so another customer's order is indistinguishable."""
    text = _free_text(value)
    if looks_like_card_number(text):
        # Never echo it back as "order 4111 1111 ...".
        turn.dispatcher.utter_message(response="utter_no_card_numbers")
        return None
    if not any(ch.isdigit() for ch in text):
        # "yes" or "the blue one" is not a wrong number, just not a number at all.
        turn.dispatcher.utter_message(response="utter_not_an_order_number")
        return None
    number = parse_order_number(text)
    order = find_owned(turn.session, turn.customer, Order, number) if number else None
    if order is None:
        turn.dispatcher.utter_message(response="utter_order_not_found", order_number=clip(text, 40))
    return order


def order_choice_buttons(orders: Iterable[Order], intent: str) -> list[dict[str, str]]:
    """Buttons that answer 'which order?' by sending the number back with the same intent."""
    return [
        {
            "title": f"Order {order.number} ({order.lines[0].product.name}"
            + (" and more)" if len(order.lines) > 1 else ")"),
            "payload": f'/{intent}{{"order_number":"{order.number}"}}',
        }
        for order in orders
    ]


def candidate_orders(
    session: Session, customer: Customer, states: Iterable[OrderStatus], limit: int = 5
) -> list[Order]:
    return list(
        session.scalars(
            select(Order)
            .where(Order.customer_id == customer.id, Order.status.in_(tuple(states)))
            .order_by(Order.placed_at.desc())
            .limit(limit)
        )
    )


class AskForOrderAction(Action, ABC):
    """Asks which order a form is about, offering the customer's orders that qualify."""

    states: ClassVar[tuple[OrderStatus, ...]]
    question: ClassVar[str] = "utter_ask_order_number"

    @property
    @abstractmethod
    def form(self) -> str:
        """The form whose order-number question this asks."""

    def name(self) -> str:
        return f"action_ask_{self.form}_order_number"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        # Log lines of this conversation carry its correlation id (to_thread copies it).
        set_conversation(tracker.sender_id)
        return await asyncio.to_thread(self._run_sync, dispatcher, tracker)

    def _run_sync(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        try:
            with session_scope() as session:
                customer = verified_customer(session, tracker.sender_id)
                orders = candidate_orders(session, customer, self.states) if customer else []
                # A button sends `inform`, which answers the question without restarting the form.
                buttons = order_choice_buttons(orders, "inform")
        except SQLAlchemyError:
            logger.exception("database error in %s", self.name())
            buttons = []
        dispatcher.utter_message(response=self.question, buttons=buttons)
        return []

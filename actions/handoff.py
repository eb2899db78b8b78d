"""Handing over to people: tickets with a conversation summary, complaints and feedback."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from datetime import UTC, datetime, time, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actions.base import EventList
from actions.formatting import clip, humanize, local_time, redact_card_numbers
from bot.db import session_scope
from bot.db.models import Customer, SupportTicket, TicketStatus
from bot.identity.customers import ConversationIdentity, verified_customer
from bot.logging import set_conversation

logger = logging.getLogger(__name__)

# When people answer: every day 08:00-20:00 Berlin time, first reply within 4 working hours.
SUPPORT_ZONE = ZoneInfo("Europe/Berlin")
SUPPORT_OPENS = time(8)
SUPPORT_CLOSES = time(20)
FIRST_REPLY_WITHIN = timedelta(hours=4)
# A second request from the same conversation within this time adds to the open ticket.
SAME_REQUEST_WINDOW = timedelta(hours=24)
SUMMARY_TURNS = 12
SUMMARY_LIMIT = 8000
# Intents that say nothing about what the customer needs help with.
NOT_A_TOPIC = frozenset(
    {
        "contact_human_agent",
        "greet",
        "goodbye",
        "thank",
        "affirm",
        "deny",
        "bot_challenge",
        "inform",
        "nlu_fallback",
        "out_of_scope",
    }
)


def reply_expected_by(now: datetime) -> datetime:
    """When a person will have answered, counting support hours only."""
    remaining = FIRST_REPLY_WITHIN
    moment = now.astimezone(SUPPORT_ZONE)
    while True:
        opens = datetime.combine(moment.date(), SUPPORT_OPENS, SUPPORT_ZONE)
        closes = datetime.combine(moment.date(), SUPPORT_CLOSES, SUPPORT_ZONE)
        moment = max(moment, opens)
        if moment < closes:
            available = closes - moment
            if remaining <= available:
                return (moment + remaining).astimezone(UTC)
            remaining -= available
        next_day = moment.date() + timedelta(days=1)
        moment = datetime.combine(next_day, SUPPORT_OPENS, SUPPORT_ZONE)


def _said(event: dict[str, Any]) -> str:
    text = str(event.get("text") or "")
    if text.startswith("/"):
        # A button press: what it asked for reads better than its payload.
        intent = (event.get("parse_data") or {}).get("intent", {}).get("name") or text[1:]
        return f"[pressed a button: {humanize(str(intent).split('{')[0])}]"
    return text


def conversation_summary(tracker: Tracker, turns: int = SUMMARY_TURNS) -> str:
    """The recent exchange, customer and bot, so the agent need not ask again."""
    lines = []
    for event in tracker.events:
        kind = event.get("event")
        if kind == "user" and event.get("text"):
            lines.append(f"Customer: {clip(redact_card_numbers(_said(event)), 300)}")
        elif kind == "bot" and event.get("text"):
            lines.append(f"Herald: {clip(str(event['text']), 300)}")
    if not lines and tracker.latest_message.get("text"):
        lines.append(f"Customer: {clip(redact_card_numbers(_said(tracker.latest_message)), 300)}")
    return "\n".join(lines[-turns:])


def topic_of(tracker: Tracker) -> str | None:
    """What the customer was asking about before they asked for a person."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = (event.get("parse_data") or {}).get("intent", {}).get("name")
        if intent and intent not in NOT_A_TOPIC:
            return humanize(str(intent))
    return None


def channel_of(tracker: Tracker) -> str | None:
    channel = tracker.get_latest_input_channel()
    if channel:
        return str(channel)[:16]
    identity = ConversationIdentity.parse(tracker.sender_id)
    return identity.platform.value if identity else None


def open_ticket(
    session: Session,
    customer: Customer | None,
    tracker: Tracker,
    subject: str,
    *,
    status: TicketStatus = TicketStatus.OPEN,
    summary: str | None = None,
    reuse: bool = True,
) -> tuple[SupportTicket, bool]:
    """A ticket for this conversation, and whether it is new.

    Asking twice within a day adds to the open ticket rather than queueing a second one.
    """
    now = datetime.now(UTC)
    summary = conversation_summary(tracker) if summary is None else summary
    sender_id = tracker.sender_id[:160]
    if reuse and status is TicketStatus.OPEN:
        existing = session.scalars(
            select(SupportTicket)
            .where(
                SupportTicket.sender_id == sender_id,
                SupportTicket.status == TicketStatus.OPEN,
                SupportTicket.opened_at >= now - SAME_REQUEST_WINDOW,
            )
            .order_by(SupportTicket.opened_at.desc())
        ).first()
        if existing is not None and (customer is None or existing.customer_id == customer.id):
            existing.summary = f"{existing.summary}\n---\n{summary}"[-SUMMARY_LIMIT:]
            return existing, False
    ticket = SupportTicket(
        customer_id=customer.id if customer else None,
        subject=clip(subject, 200),
        summary=summary[-SUMMARY_LIMIT:],
        status=status,
        channel=channel_of(tracker),
        sender_id=sender_id,
        opened_at=now,
        closed_at=now if status is TicketStatus.CLOSED else None,
    )
    session.add(ticket)
    session.flush()
    return ticket, True


def tell_ticket(
    ticket: SupportTicket, new: bool, customer: Customer | None, dispatcher: CollectingDispatcher
) -> None:
    """The ticket number and when a person will reply, in the customer's own time zone."""
    by = reply_expected_by(datetime.now(UTC))
    reply_by = local_time(by, customer.timezone if customer else "UTC")
    if not new:
        response = "utter_ticket_updated"
    elif customer is None:
        response = "utter_ticket_opened_anonymous"
    else:
        response = "utter_ticket_opened"
    dispatcher.utter_message(response=response, ticket=str(ticket.id), reply_by=reply_by)


class TicketAction(Action, ABC):
    """An action for anyone, signed in or not, that records something for the support team."""

    unavailable_response: ClassVar[str] = "utter_handoff_unavailable"

    @abstractmethod
    def name(self) -> str: ...

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        # Log lines of this conversation carry its correlation id (to_thread copies it).
        set_conversation(tracker.sender_id)
        return await asyncio.to_thread(self._run_sync, dispatcher, tracker)

    def _run_sync(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        replies = CollectingDispatcher()
        try:
            with session_scope() as session:
                customer = verified_customer(session, tracker.sender_id)
                events = self.record(session, customer, replies, tracker)
        except SQLAlchemyError:
            logger.exception("database error in %s", self.name())
            dispatcher.utter_message(response=self.unavailable_response)
            return []
        # Only once the ticket is committed does the customer hear its number.
        dispatcher.messages.extend(replies.messages)
        return events

    @abstractmethod
    def record(
        self,
        session: Session,
        customer: Customer | None,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList: ...


class ActionHandoff(TicketAction):
    """Open a ticket for a person to pick up, with what was said so far."""

    def name(self) -> str:
        return "action_handoff"

    def record(
        self,
        session: Session,
        customer: Customer | None,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        topic = topic_of(tracker)
        subject = f"Asked for a person about {topic}" if topic else "Asked for a person"
        ticket, new = open_ticket(session, customer, tracker, subject)
        tell_ticket(ticket, new, customer, dispatcher)
        return []


class ActionComplaint(TicketAction):
    """A complaint the bot cannot resolve by itself goes to a person, with an apology."""

    def name(self) -> str:
        return "action_complaint"

    def record(
        self,
        session: Session,
        customer: Customer | None,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        said = redact_card_numbers(str(tracker.latest_message.get("text") or ""))
        dispatcher.utter_message(response="utter_complaint_sorry")
        ticket, new = open_ticket(session, customer, tracker, f"Complaint: {clip(said, 120)}")
        tell_ticket(ticket, new, customer, dispatcher)
        return []


class ActionReview(TicketAction):
    """Feedback on the service, kept for the team to read; nothing for anyone to answer."""

    unavailable_response = "utter_feedback_not_saved"

    def name(self) -> str:
        return "action_review"

    def record(
        self,
        session: Session,
        customer: Customer | None,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        said = redact_card_numbers(str(tracker.latest_message.get("text") or ""))
        open_ticket(
            session,
            customer,
            tracker,
            "Feedback",
            status=TicketStatus.CLOSED,
            summary=f"Customer: {clip(said, 2000)}",
        )
        dispatcher.utter_message(response="utter_thanks_for_feedback")
        return []

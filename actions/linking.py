"""Link and unlink a Slack or Telegram account: email, then the one-time code we send there.

These actions establish who the customer is, so they cannot start from a verified
customer the way CustomerAction does; they read only by email (to send a code) and by
the chat account itself, and never say anything that depends on whether an email is known.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actions.base import CustomerAction, EventList
from bot.db import session_scope
from bot.db.models import Customer
from bot.identity.customers import ConversationIdentity, verified_customer
from bot.identity.email import send_link_code
from bot.identity.linking import (
    CodeRequest,
    LinkingUnavailable,
    LinkPolicy,
    RedeemOutcome,
    RequestOutcome,
    is_linked,
    linkable_identity,
    locked_until,
    mask_email,
    parse_code,
    parse_email,
    redeem_code,
    request_code,
    unlink_identity,
)
from bot.logging import set_conversation
from bot.settings import get_settings

logger = logging.getLogger(__name__)

REQUESTED_SLOT = "requested_slot"
LINK_SLOTS = ("link_email", "link_code")


def _minutes_until(moment: datetime | None, now: datetime) -> int:
    if moment is None:
        return 1
    return max(1, -(-int((moment - now).total_seconds()) // 60))


def _tries(left: int) -> str:
    return "1 more time" if left == 1 else f"{left} more times"


def _end_form() -> dict[str, Any]:
    """Slot updates that end the form now and leave nothing typed behind in the slots."""
    return {**dict.fromkeys(LINK_SLOTS), REQUESTED_SLOT: None}


class ActionCheckLinking(Action):
    """Decide whether this chat can link now, and tell the customer why not if it can't."""

    def name(self) -> str:
        return "action_check_linking"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        set_conversation(tracker.sender_id)
        return await asyncio.to_thread(self._run_sync, dispatcher, tracker.sender_id)

    def _run_sync(self, dispatcher: CollectingDispatcher, sender_id: str) -> EventList:
        refused = [SlotSet("linking_allowed", False), *(SlotSet(s, None) for s in LINK_SLOTS)]
        identity = linkable_identity(sender_id)
        now = datetime.now(UTC)
        try:
            with session_scope() as session:
                if identity is None:
                    signed_in = verified_customer(session, sender_id) is not None
                    dispatcher.utter_message(
                        response="utter_link_web_signed_in"
                        if signed_in
                        else "utter_link_web_sign_in"
                    )
                    return refused
                if is_linked(session, identity):
                    dispatcher.utter_message(response="utter_link_already_linked")
                    return refused
                until = locked_until(session, identity, now)
                if until is not None:
                    dispatcher.utter_message(
                        response="utter_link_locked", minutes=_minutes_until(until, now)
                    )
                    return refused
        except SQLAlchemyError:
            logger.exception("database error in %s", self.name())
            dispatcher.utter_message(response="utter_service_unavailable")
            return refused
        return [SlotSet("linking_allowed", True), *(SlotSet(s, None) for s in LINK_SLOTS)]


class ValidateLinkAccountForm(Action):
    """Email first (a code goes out if the email is known), then the code typed back."""

    def name(self) -> str:
        return "validate_link_account_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        set_conversation(tracker.sender_id)
        candidates = {
            slot: value for slot, value in tracker.slots_to_validate().items() if slot in LINK_SLOTS
        }
        updates, outgoing = await asyncio.to_thread(
            self._validate, dispatcher, tracker.sender_id, candidates
        )
        if outgoing is not None and outgoing.send_to and outgoing.code:
            settings = get_settings()
            # Sent only once the code is committed, and in the background so a known
            # email is not answered more slowly than an unknown one.
            send_link_code(
                settings,
                outgoing.send_to,
                outgoing.code,
                timedelta(seconds=settings.link_code_ttl_seconds),
            )
        return [SlotSet(slot, value) for slot, value in updates.items()]

    def _validate(
        self, dispatcher: CollectingDispatcher, sender_id: str, candidates: dict[str, Any]
    ) -> tuple[dict[str, Any], CodeRequest | None]:
        identity = linkable_identity(sender_id)
        if identity is None:
            # Only reachable if someone drives the form by hand from web chat.
            dispatcher.utter_message(response="utter_link_web_sign_in")
            return _end_form(), None
        policy = LinkPolicy.from_settings(get_settings())
        now = datetime.now(UTC)
        updates: dict[str, Any] = {}
        outgoing: CodeRequest | None = None
        try:
            with session_scope() as session:
                if "link_email" in candidates:
                    updates, outgoing = self._email(
                        session, dispatcher, identity, candidates["link_email"], policy, now
                    )
                    if REQUESTED_SLOT in updates or "link_code" in candidates:
                        # A new email this turn: whatever else was typed is not a code.
                        return {**updates, "link_code": None}, outgoing
                if "link_code" in candidates:
                    updates.update(
                        self._code(
                            session, dispatcher, identity, candidates["link_code"], policy, now
                        )
                    )
        except (SQLAlchemyError, LinkingUnavailable):
            logger.exception("linking failed in %s", self.name())
            dispatcher.utter_message(response="utter_service_unavailable")
            return _end_form(), None
        return updates, outgoing

    @staticmethod
    def _email(
        session: Session,
        dispatcher: CollectingDispatcher,
        identity: ConversationIdentity,
        value: Any,
        policy: LinkPolicy,
        now: datetime,
    ) -> tuple[dict[str, Any], CodeRequest | None]:
        email = parse_email(value)
        if email is None:
            dispatcher.utter_message(response="utter_link_email_invalid")
            return {"link_email": None}, None
        request = request_code(session, identity, email, policy, now)
        if request.outcome is RequestOutcome.LOCKED:
            dispatcher.utter_message(
                response="utter_link_locked", minutes=_minutes_until(request.locked_until, now)
            )
            return _end_form(), None
        if request.outcome is RequestOutcome.TOO_MANY_REQUESTS:
            dispatcher.utter_message(response="utter_link_too_many_codes")
            return _end_form(), None
        # The same words whether or not the email is known: that is the point.
        dispatcher.utter_message(
            response="utter_link_code_sent",
            masked_email=mask_email(email),
            minutes=_minutes_until(now + policy.code_ttl, now),
        )
        # Only a masked form stays in the conversation's slots.
        return {"link_email": mask_email(email)}, request

    @staticmethod
    def _code(
        session: Session,
        dispatcher: CollectingDispatcher,
        identity: ConversationIdentity,
        value: Any,
        policy: LinkPolicy,
        now: datetime,
    ) -> dict[str, Any]:
        code = parse_code(value)
        if code is None:
            # Not a code at all: say what one looks like; it does not count as a try.
            dispatcher.utter_message(response="utter_link_code_invalid")
            return {"link_code": None}
        result = redeem_code(session, identity, code, policy, now)
        if result.outcome is RedeemOutcome.LINKED:
            dispatcher.utter_message(response="utter_link_done")
            return _end_form()
        if result.outcome is RedeemOutcome.LOCKED:
            dispatcher.utter_message(
                response="utter_link_locked", minutes=_minutes_until(result.locked_until, now)
            )
            return _end_form()
        dispatcher.utter_message(response="utter_link_code_wrong", tries=_tries(result.tries_left))
        return {"link_code": None}


class ActionFinishLinking(Action):
    """After the form: clear what was typed so the next "link my account" starts afresh."""

    def name(self) -> str:
        return "action_finish_linking"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        return [SlotSet(slot, None) for slot in (*LINK_SLOTS, "linking_allowed")]


class ActionCancelLinking(Action):
    """The customer stopped linking half way: confirm nothing changed, clear the slots."""

    def name(self) -> str:
        return "action_cancel_linking"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        dispatcher.utter_message(response="utter_link_cancelled")
        return [SlotSet(slot, None) for slot in (*LINK_SLOTS, "linking_allowed")]


class ActionUnlinkAccount(CustomerAction):
    """Stop trusting this Slack/Telegram account: no account data, no outreach, until relinked."""

    def name(self) -> str:
        return "action_unlink_account"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        identity = linkable_identity(tracker.sender_id)
        if identity is None:
            dispatcher.utter_message(response="utter_unlink_web")
            return []
        if unlink_identity(session, identity):
            dispatcher.utter_message(response="utter_unlink_done")
        else:
            dispatcher.utter_message(response="utter_unlink_not_linked")
        return []

    def answer_anonymous(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        if linkable_identity(tracker.sender_id) is None:
            dispatcher.utter_message(response="utter_unlink_web")
        else:
            dispatcher.utter_message(response="utter_unlink_not_linked")
        return []

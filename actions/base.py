"""The base every customer-data action builds on: verified customer first, then their rows."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.db import session_scope
from bot.db.models import Customer
from bot.identity.customers import verified_customer
from bot.logging import set_conversation

logger = logging.getLogger(__name__)

EventList = list[dict[str, Any]]


class CustomerAction(Action, ABC):
    """An action that reads or changes one verified customer's data.

    Subclasses implement `answer`; they never see a session before the customer behind
    the conversation is known, so no action can reach customer data around that check.
    Database work is synchronous and runs in a thread so one slow query does not stall
    every other conversation on the action server.
    """

    # Response for visitors we cannot identify (anonymous web chat, unlinked Slack/Telegram).
    anonymous_response = "utter_sign_in_needed"
    # Said when our records cannot be reached; None keeps a message nobody asked for (a
    # proactive notice) from turning into an apology nobody asked for either.
    unavailable_response: str | None = "utter_service_unavailable"

    # Abstract, so the action server registers only the concrete actions built on this.
    @abstractmethod
    def name(self) -> str: ...

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        # Every log line of this conversation carries its correlation id (to_thread copies it).
        set_conversation(tracker.sender_id)
        return await asyncio.to_thread(self._run_sync, dispatcher, tracker, domain)

    def _run_sync(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        try:
            with session_scope() as session:
                customer = verified_customer(session, tracker.sender_id)
                if customer is None:
                    return self.answer_anonymous(dispatcher, tracker)
                return self.answer(session, customer, dispatcher, tracker)
        except SQLAlchemyError:
            # The database went away: say so politely; nothing was half-written.
            logger.exception("database error in %s", self.name())
            if self.unavailable_response:
                dispatcher.utter_message(response=self.unavailable_response)
            return []

    def answer_anonymous(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        dispatcher.utter_message(response=self.anonymous_response)
        return []

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        raise NotImplementedError

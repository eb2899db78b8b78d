"""Policy answers: the support team's wording from the domain, plus the customer's own facts."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actions.base import EventList
from bot.db import session_scope
from bot.db.models import Customer
from bot.identity.customers import verified_customer
from bot.logging import set_conversation

logger = logging.getLogger(__name__)


class PolicyAnswer(Action, ABC):
    """Answers with a domain response everyone gets, then adds what applies to this customer.

    The response is the one place the support team edits the policy. Anonymous visitors
    get the policy alone; if the database is unreachable, the policy still goes out and
    only the personal part is left off.
    """

    policy_response: ClassVar[str]

    @abstractmethod
    def name(self) -> str: ...

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        # Log lines of this conversation carry its correlation id (to_thread copies it).
        set_conversation(tracker.sender_id)
        return await asyncio.to_thread(self._run_sync, dispatcher, tracker)

    def _run_sync(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        dispatcher.utter_message(response=self.policy_response, **self.policy_values())
        # Personal facts go to a side dispatcher so a failure halfway sends none of them.
        personal = CollectingDispatcher()
        try:
            with session_scope() as session:
                customer = verified_customer(session, tracker.sender_id)
                if customer is None:
                    events = self.add_for_anonymous(personal, tracker)
                else:
                    events = self.add_for_customer(session, customer, personal, tracker)
        except SQLAlchemyError:
            logger.exception("database error in %s; answered with the policy only", self.name())
            return []
        dispatcher.messages.extend(personal.messages)
        return events

    def policy_values(self) -> dict[str, Any]:
        """Values the policy response's placeholders take."""
        return {}

    def add_for_anonymous(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        return []

    def add_for_customer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        return []

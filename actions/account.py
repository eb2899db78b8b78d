"""The shop account: signing up, passwords, details, switching, newsletters and deletion."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.base import CustomerAction, EventList
from actions.formatting import local_day, mask_email
from actions.forms import CustomerFormValidation, FormTurn, stop_form
from actions.handoff import open_ticket, tell_ticket
from actions.orders import YES_NO, default_address
from actions.policy import PolicyAnswer
from bot.db.models import Customer, Platform, SupportTicket, TicketStatus
from bot.identity.customers import ConversationIdentity

DELETION_SUBJECT = "Account deletion request"


class ActionCreateAccount(PolicyAnswer):
    policy_response = "utter_create_account"

    def name(self) -> str:
        return "action_create_account"

    def add_for_customer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        dispatcher.utter_message(
            response="utter_already_have_account",
            email=mask_email(customer.email),
            since=local_day(customer.created_at, customer.timezone),
        )
        return []


class ActionRegistrationProblems(ActionCreateAccount):
    """Sign-up trouble: the same reminder as create_account that they already have one."""

    policy_response = "utter_registration_problems"

    def name(self) -> str:
        return "action_registration_problems"


class ActionRecoverPassword(PolicyAnswer):
    policy_response = "utter_recover_password"

    def name(self) -> str:
        return "action_recover_password"

    def add_for_customer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        dispatcher.utter_message(
            response="utter_reset_link_goes_to", email=mask_email(customer.email)
        )
        return []


class ActionEditAccount(PolicyAnswer):
    policy_response = "utter_edit_account"

    def name(self) -> str:
        return "action_edit_account"

    def add_for_customer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        address = default_address(customer)
        dispatcher.utter_message(
            response="utter_account_on_file",
            name=customer.name,
            email=mask_email(customer.email),
            timezone=customer.timezone,
            address=address.one_line() if address else "none yet",
            buttons=[{"title": "New delivery address", "payload": "/set_up_shipping_address"}],
        )
        return []


class ActionSwitchAccount(PolicyAnswer):
    policy_response = "utter_switch_account"

    def name(self) -> str:
        return "action_switch_account"

    def add_for_customer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        identity = ConversationIdentity.parse(tracker.sender_id)
        linked_chat = identity is not None and identity.platform is not Platform.WEB
        dispatcher.utter_message(
            response="utter_linked_as" if linked_chat else "utter_signed_in_as",
            email=mask_email(customer.email),
        )
        return []


class ActionNewsletter(PolicyAnswer):
    policy_response = "utter_newsletter"

    def name(self) -> str:
        return "action_newsletter"

    def add_for_customer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        dispatcher.utter_message(
            response="utter_newsletter_and_chat", email=mask_email(customer.email)
        )
        return []


def pending_deletion(session: Session, customer: Customer) -> SupportTicket | None:
    return session.scalars(
        select(SupportTicket).where(
            SupportTicket.customer_id == customer.id,
            SupportTicket.subject == DELETION_SUBJECT,
            SupportTicket.status != TicketStatus.CLOSED,
        )
    ).first()


class ValidateAccountDeletionForm(CustomerFormValidation):
    """Deleting an account is asked for once, confirmed, and carried out by people."""

    form = "account_deletion_form"
    required = ("confirmed",)
    anonymous_response = "utter_delete_account_policy"

    def answer_anonymous(self, dispatcher: CollectingDispatcher) -> None:
        dispatcher.utter_message(response="utter_delete_account_policy")
        dispatcher.utter_message(response="utter_sign_in_needed")

    def start(self, turn: FormTurn) -> dict[str, Any]:
        ticket = pending_deletion(turn.session, turn.customer)
        if ticket is None:
            return {}
        turn.dispatcher.utter_message(
            response="utter_deletion_already_requested",
            ticket=str(ticket.id),
            requested_on=local_day(ticket.opened_at, turn.customer.timezone),
        )
        return stop_form()


class ActionAskAccountDeletion(CustomerAction):
    def name(self) -> str:
        return "action_ask_account_deletion_form_confirmed"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        dispatcher.utter_message(
            response="utter_ask_delete_account", email=mask_email(customer.email), buttons=YES_NO
        )
        return []


class ActionRequestAccountDeletion(CustomerAction):
    """A confirmed deletion request becomes a ticket; people run the erasure after checks."""

    def name(self) -> str:
        return "action_request_account_deletion"

    def answer_anonymous(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        return [SlotSet("confirmed", None)]

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        events: EventList = [SlotSet("confirmed", None)]
        confirmed = tracker.get_slot("confirmed")
        if confirmed is None:
            return events
        if confirmed is not True:
            dispatcher.utter_message(response="utter_account_kept")
            return events
        if pending_deletion(session, customer) is not None:
            return events
        ticket, new = open_ticket(
            session,
            customer,
            tracker,
            DELETION_SUBJECT,
            summary=f"Customer {customer.id} confirmed in chat that they want their account "
            "and data deleted (herald customer forget).",
            reuse=False,
        )
        dispatcher.utter_message(response="utter_deletion_requested", ticket=str(ticket.id))
        tell_ticket(ticket, new, customer, dispatcher)
        return events

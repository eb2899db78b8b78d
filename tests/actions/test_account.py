"""Account questions: the policy for everyone, the customer's own details when known."""

from __future__ import annotations

import pytest
from rasa_sdk import Action
from sqlalchemy import select

from actions.account import (
    ActionCreateAccount,
    ActionEditAccount,
    ActionNewsletter,
    ActionRecoverPassword,
    ActionRegistrationProblems,
    ActionRequestAccountDeletion,
    ActionSwitchAccount,
    ValidateAccountDeletionForm,
)
from bot.db import session_scope
from bot.db.models import ChannelIdentity, Customer, Platform, SupportTicket, TicketStatus
from tests.actions.conftest import Conversation, run_action

POLICY_ANSWERS = [
    (ActionCreateAccount(), "utter_create_account", "utter_already_have_account"),
    (ActionRegistrationProblems(), "utter_registration_problems", "utter_already_have_account"),
    (ActionRecoverPassword(), "utter_recover_password", "utter_reset_link_goes_to"),
    (ActionEditAccount(), "utter_edit_account", "utter_account_on_file"),
    (ActionSwitchAccount(), "utter_switch_account", "utter_signed_in_as"),
    (ActionNewsletter(), "utter_newsletter", "utter_newsletter_and_chat"),
]


@pytest.mark.parametrize(("action", "policy", "personal"), POLICY_ANSWERS)
def test_policy_for_everyone_details_for_the_customer(
    live_shop: str, action: Action, policy: str, personal: str
) -> None:
    anonymous = run_action(action, Conversation("web:anon-77"))
    assert anonymous.responses == [policy]
    known = run_action(action, Conversation("web:3"))
    assert known.responses == [policy, personal]
    with session_scope(live_shop) as session:
        email = session.get(Customer, 3).email  # type: ignore[union-attr]
    # Enough to recognise, never the whole address.
    assert email not in str(known.messages)
    if "email" in known.messages[1]:
        assert known.messages[1]["email"] == f"{email[0]}****@example.com"


@pytest.mark.parametrize(("action", "policy", "personal"), POLICY_ANSWERS)
def test_policy_still_answers_when_the_records_are_down(
    no_database: None, action: Action, policy: str, personal: str
) -> None:
    assert run_action(action, Conversation("web:3")).responses == [policy]


def test_a_linked_chat_says_which_account_it_is_linked_to(live_shop: str) -> None:
    with session_scope(live_shop) as session:
        identity = session.scalars(
            select(ChannelIdentity).where(ChannelIdentity.platform == Platform.TELEGRAM)
        ).first()
        assert identity is not None
        sender = identity.sender_id
    result = run_action(ActionSwitchAccount(), Conversation(sender))
    assert result.responses == ["utter_switch_account", "utter_linked_as"]


def test_deleting_an_account_is_explained_to_anonymous_visitors(live_shop: str) -> None:
    result = run_action(
        ValidateAccountDeletionForm(),
        Conversation("web:anon-1", intent="delete_account", active_loop="account_deletion_form"),
    )
    assert result.responses == ["utter_delete_account_policy", "utter_sign_in_needed"]
    assert result.slot("requested_slot") is None


def deletion_tickets(url: str, customer: int) -> list[SupportTicket]:
    with session_scope(url) as session:
        tickets = session.scalars(
            select(SupportTicket).where(
                SupportTicket.customer_id == customer,
                SupportTicket.subject == "Account deletion request",
            )
        ).all()
        session.expunge_all()
        return list(tickets)


def test_a_confirmed_deletion_request_opens_one_ticket_and_deletes_nothing(live_shop: str) -> None:
    result = run_action(
        ActionRequestAccountDeletion(), Conversation("web:5", slots={"confirmed": True})
    )
    assert result.responses == ["utter_deletion_requested", "utter_ticket_opened"]
    [ticket] = deletion_tickets(live_shop, 5)
    assert ticket.status is TicketStatus.OPEN and ticket.sender_id == "web:5"
    with session_scope(live_shop) as session:
        customer = session.get(Customer, 5)
        assert customer is not None and customer.forgotten_at is None

    again = run_action(
        ValidateAccountDeletionForm(),
        Conversation("web:5", intent="delete_account", active_loop="account_deletion_form"),
    )
    assert again.responses == ["utter_deletion_already_requested"]
    assert again.slot("requested_slot") is None
    assert len(deletion_tickets(live_shop, 5)) == 1


def test_no_to_deletion_keeps_everything(live_shop: str) -> None:
    result = run_action(
        ActionRequestAccountDeletion(), Conversation("web:5", slots={"confirmed": False})
    )
    assert result.responses == ["utter_account_kept"]
    assert deletion_tickets(live_shop, 5) == []

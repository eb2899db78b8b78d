"""Handing over to a person: a real ticket with the conversation, and when to expect a reply."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from actions.handoff import ActionComplaint, ActionHandoff, ActionReview, reply_expected_by
from bot.db import session_scope
from bot.db.models import SupportTicket, TicketStatus
from tests.actions.conftest import Conversation, bot_said, run_action, user_said


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Berlin is UTC+1 in winter: support works 07:00-19:00 UTC then.
        (datetime(2026, 11, 25, 9, 0, tzinfo=UTC), datetime(2026, 11, 25, 13, 0, tzinfo=UTC)),
        (datetime(2026, 11, 25, 17, 0, tzinfo=UTC), datetime(2026, 11, 26, 9, 0, tzinfo=UTC)),
        (datetime(2026, 11, 25, 21, 0, tzinfo=UTC), datetime(2026, 11, 26, 11, 0, tzinfo=UTC)),
        (datetime(2026, 11, 25, 2, 0, tzinfo=UTC), datetime(2026, 11, 25, 11, 0, tzinfo=UTC)),
        # Summer time: 06:00-18:00 UTC.
        (datetime(2026, 7, 1, 16, 30, tzinfo=UTC), datetime(2026, 7, 2, 8, 30, tzinfo=UTC)),
    ],
)
def test_a_reply_is_promised_within_four_support_hours(now: datetime, expected: datetime) -> None:
    assert reply_expected_by(now) == expected


def tickets_of(url: str, sender: str) -> list[SupportTicket]:
    with session_scope(url) as session:
        tickets = session.scalars(
            select(SupportTicket)
            .where(SupportTicket.sender_id == sender)
            .order_by(SupportTicket.id)
        ).all()
        session.expunge_all()
        return list(tickets)


HISTORY = [
    user_said("/cancel_order", "cancel_order"),
    bot_said("Which order is it?"),
    user_said("it's 10042, paid with 4111 1111 1111 1111", "inform", {"order_number": "10042"}),
    bot_said("I couldn't find order 10042 on your account."),
]


def test_a_customer_gets_a_ticket_with_the_conversation_so_far(live_shop: str) -> None:
    result = run_action(
        ActionHandoff(),
        Conversation(
            "web:7", intent="contact_human_agent", text="let me talk to a human", history=HISTORY
        ),
    )

    [ticket] = tickets_of(live_shop, "web:7")
    assert ticket.customer_id == 7 and ticket.status is TicketStatus.OPEN
    assert ticket.channel == "rest"
    assert ticket.subject == "Asked for a person about cancel order"
    assert ticket.summary.splitlines() == [
        "Customer: [pressed a button: cancel order]",
        "Herald: Which order is it?",
        "Customer: it's 10042, paid with [card number removed]",
        "Herald: I couldn't find order 10042 on your account.",
        "Customer: let me talk to a human",
    ]
    assert result.responses == ["utter_ticket_opened"]
    assert result.messages[0]["ticket"] == str(ticket.id)
    assert result.messages[0]["reply_by"].count(",") == 1  # "Friday 27 November, 14:00"


def test_asking_again_adds_to_the_same_ticket(live_shop: str) -> None:
    for _ in range(2):
        result = run_action(
            ActionHandoff(),
            Conversation("web:7", intent="contact_human_agent", text="a person please"),
        )
    [ticket] = tickets_of(live_shop, "web:7")
    assert result.responses == ["utter_ticket_updated"]
    assert ticket.summary.count("a person please") == 2


def test_anonymous_visitors_get_a_ticket_without_a_customer(live_shop: str) -> None:
    result = run_action(
        ActionHandoff(), Conversation("web:anon-c0ffee", intent="contact_human_agent", text="human")
    )
    [ticket] = tickets_of(live_shop, "web:anon-c0ffee")
    assert ticket.customer_id is None
    assert result.responses == ["utter_ticket_opened_anonymous"]
    assert result.messages[0]["reply_by"].endswith("UTC")


def test_a_complaint_is_apologised_for_and_goes_to_a_person(live_shop: str) -> None:
    said = "This is the third time my doorbell stopped working, I am fed up"
    result = run_action(ActionComplaint(), Conversation("web:8", intent="complaint", text=said))
    assert result.responses == ["utter_complaint_sorry", "utter_ticket_opened"]
    [ticket] = tickets_of(live_shop, "web:8")
    assert ticket.subject == f"Complaint: {said}"
    assert said in ticket.summary


def test_feedback_is_kept_for_the_team_without_queueing_work(live_shop: str) -> None:
    said = "Your support was super quick, thanks!"
    result = run_action(ActionReview(), Conversation("web:9", intent="review", text=said))
    assert result.responses == ["utter_thanks_for_feedback"]
    [ticket] = tickets_of(live_shop, "web:9")
    assert (ticket.subject, ticket.status) == ("Feedback", TicketStatus.CLOSED)
    assert ticket.summary == f"Customer: {said}"


def test_a_huge_message_is_clipped_in_the_ticket(live_shop: str) -> None:
    run_action(ActionComplaint(), Conversation("web:8", intent="complaint", text="bad " * 5000))
    [ticket] = tickets_of(live_shop, "web:8")
    assert len(ticket.subject) <= 200 and len(ticket.summary) <= 8000


@pytest.mark.parametrize(
    ("action", "response"),
    [
        (ActionHandoff(), "utter_handoff_unavailable"),
        (ActionComplaint(), "utter_handoff_unavailable"),
        (ActionReview(), "utter_feedback_not_saved"),
    ],
)
def test_without_the_database_customers_are_told_how_to_reach_us(
    no_database: None, action: object, response: str
) -> None:
    result = run_action(action, Conversation("web:7", text="help"))  # type: ignore[arg-type]
    assert result.responses == [response]

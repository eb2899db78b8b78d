"""Proactive messages worded from live data, once per outreach, to its own customer only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from actions.proactive import (
    NOTIFY_ACTIONS,
    ActionNotifyOutage,
    ActionNotifySetupTips,
    ActionNotifyShipping,
    ActionSetupTipsLater,
    ActionSetupWalkthrough,
    ActionTicketFollowupReopen,
    ActionTicketFollowupResolved,
    ProactiveAction,
)
from bot.db import session_scope
from bot.db.models import (
    Customer,
    Invoice,
    InvoiceStatus,
    Order,
    OrderStatus,
    Platform,
    Subscription,
    SubscriptionStatus,
    SupportTicket,
    TicketStatus,
)
from bot.proactive.events import parse_event
from bot.proactive.models import Outreach, OutreachDecision, OutreachState
from bot.proactive.policy import load_policy
from bot.proactive.rules import customers_using_services, ingest_event
from bot.proactive.topics import TOPICS
from tests.actions.conftest import Conversation, run_action

ACTIONS = {cls().topic: cls() for cls in ProactiveAction.__subclasses__()}


def queue(url: str, body: dict[str, Any]) -> list[int]:
    now = datetime.now(UTC)
    with session_scope(url) as session:
        result = ingest_event(
            session, parse_event(body, now=now), policy=load_policy(), now=now, source="test"
        )
        return list(
            session.scalars(select(Outreach.id).where(Outreach.event_id == result.event_id))
        )


def approve(url: str, outreach_id: int) -> str:
    """What the dispatcher does before it triggers the intent: approve and route to web."""
    with session_scope(url) as session:
        row = session.get(Outreach, outreach_id)
        assert row is not None
        row.state, row.sent_at = OutreachState.SENDING, datetime.now(UTC)
        row.platform, row.sender_id = Platform.WEB, f"web:{row.customer_id}"
        return row.sender_id


def trigger(action: ProactiveAction, sender: str, outreach_id: int) -> list[str]:
    result = run_action(
        action,
        Conversation(
            sender,
            intent=f"EXTERNAL_{action.topic}",
            text=f"EXTERNAL: {action.topic}",
            entities={"outreach_id": str(outreach_id)},
        ),
    )
    return result.texts


def customer_of(url: str, outreach_id: int) -> Customer:
    with session_scope(url) as session:
        row = session.get(Outreach, outreach_id)
        assert row is not None
        return row.customer


def test_every_topic_has_its_action() -> None:
    assert set(NOTIFY_ACTIONS) == set(TOPICS) == set(ACTIONS)


def test_an_outage_notice_names_their_devices_and_the_service(live_shop: str) -> None:
    ids = queue(
        live_shop,
        {
            "kind": "outage.opened",
            "data": {
                "services": ["camera-cloud"],
                "title": "Live view down",
                "details": "Recordings are delayed.",
            },
        },
    )
    sender = approve(live_shop, ids[0])

    (text,) = trigger(ActionNotifyOutage(), sender, ids[0])

    customer = customer_of(live_shop, ids[0])
    assert customer.name.split()[0] in text
    assert "Camera Cloud" in text and "Recordings are delayed." in text
    assert any(name in text for name in ("Indoor Camera", "Outdoor Camera", "Video Doorbell"))
    with session_scope(live_shop) as session:
        row = session.get(Outreach, ids[0])
        assert row is not None and row.delivered_at is not None


def test_each_outreach_is_said_once_and_only_in_its_own_conversation(live_shop: str) -> None:
    ids = queue(
        live_shop,
        {"kind": "outage.opened", "data": {"services": ["camera-cloud"], "title": "Down"}},
    )
    mine, other = ids[0], ids[1]
    sender = approve(live_shop, mine)
    approve(live_shop, other)

    assert trigger(ActionNotifyOutage(), "web:anon-visitor1", mine) == []  # a stranger
    assert trigger(ActionNotifyOutage(), sender, other) == []  # someone else's outreach
    assert trigger(ActionNotifyShipping(), sender, mine) == []  # another topic's trigger
    assert len(trigger(ActionNotifyOutage(), sender, mine)) == 1
    assert trigger(ActionNotifyOutage(), sender, mine) == []  # a repeat


def test_a_customer_typing_the_trigger_gets_nothing(live_shop: str) -> None:
    ids = queue(
        live_shop,
        {"kind": "outage.opened", "data": {"services": ["camera-cloud"], "title": "Down"}},
    )
    customer = customer_of(live_shop, ids[0])

    # Not approved by the throttle: pending in the outbox.
    assert trigger(ActionNotifyOutage(), f"web:{customer.id}", ids[0]) == []
    assert trigger(ActionNotifyOutage(), f"web:{customer.id}", 0) == []


def a_subscription(url: str) -> Subscription:
    with session_scope(url) as session:
        subscription = session.scalars(
            select(Subscription)
            .where(Subscription.status == SubscriptionStatus.ACTIVE)
            .order_by(Subscription.id)
        ).first()
        assert subscription is not None and subscription.payment_method is not None
        return subscription


def test_a_renewal_reminder_gives_their_date_amount_and_card(live_shop: str) -> None:
    subscription = a_subscription(live_shop)
    ids = queue(live_shop, {"kind": "renewal.due", "data": {"subscription_id": subscription.id}})
    sender = approve(live_shop, ids[0])

    (text,) = trigger(ACTIONS["renewal"], sender, ids[0])

    assert subscription.plan.title() in text
    assert f"{subscription.price:.2f}" in text
    assert subscription.payment_method is not None
    assert subscription.payment_method.last4 in text


def test_a_shipping_update_tells_their_tracking(live_shop: str) -> None:
    with session_scope(live_shop) as session:
        order = session.scalars(
            select(Order).where(Order.status == OrderStatus.SHIPPED).order_by(Order.number)
        ).first()
        assert order is not None
        number, tracking = order.number, order.shipments[-1].tracking_number
    ids = queue(
        live_shop,
        {
            "kind": "shipment.status_changed",
            "data": {"order_number": number, "status": "out_for_delivery"},
        },
    )
    sender = approve(live_shop, ids[0])

    result = run_action(
        ActionNotifyShipping(),
        Conversation(sender, intent="EXTERNAL_shipping", entities={"outreach_id": str(ids[0])}),
    )

    (text,) = result.texts
    assert f"order {number} is out for delivery" in text and tracking in text
    assert {
        "title": f"Track order {number}",
        "payload": f'/track_order{{"order_number":"{number}"}}',
    } in result.buttons


def test_a_failed_payment_alert_and_a_ticket_follow_up(live_shop: str) -> None:
    with session_scope(live_shop) as session:
        invoice = session.scalars(
            select(Invoice).where(Invoice.status == InvoiceStatus.PAID).order_by(Invoice.number)
        ).first()
        ticket = session.scalars(
            select(SupportTicket).where(SupportTicket.status == TicketStatus.OPEN)
        ).first()
        assert invoice is not None and ticket is not None
        invoice_number, amount, ticket_id = invoice.number, invoice.amount, ticket.id
        subject = ticket.subject
    payment = queue(
        live_shop,
        {
            "kind": "payment.failed",
            "data": {"invoice_number": invoice_number, "reason": "card_declined: expired card"},
        },
    )
    followup = queue(live_shop, {"kind": "ticket.closed", "data": {"ticket_id": ticket_id}})

    (text,) = trigger(ACTIONS["payment"], approve(live_shop, payment[0]), payment[0])
    assert invoice_number in text and f"{amount:.2f}" in text and "expired card" in text
    (text,) = trigger(ACTIONS["ticket_followup"], approve(live_shop, followup[0]), followup[0])
    assert f"#{ticket_id}" in text and subject in text and "working now?" in text


def test_a_message_whose_facts_changed_is_dropped_with_a_reason(live_shop: str) -> None:
    subscription = a_subscription(live_shop)
    ids = queue(live_shop, {"kind": "renewal.due", "data": {"subscription_id": subscription.id}})
    sender = approve(live_shop, ids[0])
    with session_scope(live_shop) as session:
        cancelled = session.get(Subscription, subscription.id)
        assert cancelled is not None
        cancelled.status = SubscriptionStatus.CANCELLED

    assert trigger(ACTIONS["renewal"], sender, ids[0]) == []

    with session_scope(live_shop) as session:
        row = session.get(Outreach, ids[0])
        assert row is not None and row.state is OutreachState.SUPPRESSED
        reasons = session.scalars(
            select(OutreachDecision.reason).where(OutreachDecision.outreach_id == ids[0])
        ).all()
        assert reasons == ["no_longer_relevant"]


def delivered_order(url: str) -> tuple[int, list[str], list[str]]:
    """A delivered order of a web customer: its number, product names and setup guides."""
    with session_scope(url) as session:
        order = session.scalars(
            select(Order).where(Order.status == OrderStatus.DELIVERED).order_by(Order.number)
        ).first()
        assert order is not None
        return (
            order.number,
            [line.product.name for line in order.lines],
            [line.product.setup_guide for line in order.lines],
        )


def test_a_setup_tip_and_the_walkthrough_when_they_say_yes(live_shop: str) -> None:
    number, names, guides = delivered_order(live_shop)
    ids = queue(live_shop, {"kind": "device.delivered", "data": {"order_number": number}})
    with session_scope(live_shop) as session:
        row = session.get(Outreach, ids[0])
        assert row is not None
        row.not_before = datetime.now(UTC) - timedelta(hours=1)
    sender = approve(live_shop, ids[0])

    tip = run_action(
        ActionNotifySetupTips(),
        Conversation(sender, intent="EXTERNAL_setup_tips", entities={"outreach_id": str(ids[0])}),
    )
    (text,) = tip.texts
    assert names[0] in text and guides[0].splitlines()[0].split(". ", 1)[1] in text
    assert [b["payload"] for b in tip.buttons][:2] == ["/affirm", "/deny"]

    walk = run_action(ActionSetupWalkthrough(), Conversation(sender, intent="affirm", text="yes"))
    for name, guide in zip(names, guides, strict=True):
        assert any(name in t and guide in t for t in walk.texts)

    later = run_action(ActionSetupTipsLater(), Conversation(sender, intent="deny", text="no"))
    assert "help.lumen-home.example/setup" in later.texts[0]


def test_no_to_the_ticket_follow_up_reopens_the_ticket(live_shop: str) -> None:
    with session_scope(live_shop) as session:
        ticket = session.scalars(
            select(SupportTicket).where(SupportTicket.status == TicketStatus.OPEN)
        ).first()
        assert ticket is not None
        ticket_id = ticket.id
    ids = queue(live_shop, {"kind": "ticket.closed", "data": {"ticket_id": ticket_id}})
    sender = approve(live_shop, ids[0])
    trigger(ACTIONS["ticket_followup"], sender, ids[0])

    yes = run_action(ActionTicketFollowupResolved(), Conversation(sender, intent="affirm"))
    assert "glad it's sorted" in yes.texts[0]
    with session_scope(live_shop) as session:
        still_closed = session.get(SupportTicket, ticket_id)
        assert still_closed is not None and still_closed.status is TicketStatus.CLOSED

    no = run_action(ActionTicketFollowupReopen(), Conversation(sender, intent="deny"))

    assert f"reopened ticket #{ticket_id}" in no.texts[0]
    with session_scope(live_shop) as session:
        reopened = session.get(SupportTicket, ticket_id)
        assert reopened is not None
        assert reopened.status is TicketStatus.OPEN and reopened.closed_at is None
        assert "Reopened by the customer" in reopened.summary


def test_someone_elses_follow_up_cannot_reopen_their_ticket(live_shop: str) -> None:
    with session_scope(live_shop) as session:
        ticket = session.scalars(
            select(SupportTicket).where(SupportTicket.status == TicketStatus.OPEN)
        ).first()
        assert ticket is not None and ticket.customer_id is not None
        ticket_id, owner = ticket.id, ticket.customer_id
    ids = queue(live_shop, {"kind": "ticket.closed", "data": {"ticket_id": ticket_id}})
    trigger(ACTIONS["ticket_followup"], approve(live_shop, ids[0]), ids[0])

    intruder = run_action(
        ActionTicketFollowupReopen(), Conversation(f"web:{owner + 1}", intent="deny")
    )

    assert f"#{ticket_id}" not in " ".join(intruder.texts)
    with session_scope(live_shop) as session:
        ticket_row = session.get(SupportTicket, ticket_id)
        assert ticket_row is not None and ticket_row.status is TicketStatus.CLOSED


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_proactive_actions_stay_silent_when_records_are_down(no_database: None, topic: str) -> None:
    result = run_action(
        ACTIONS[topic],
        Conversation("web:1", intent=f"EXTERNAL_{topic}", entities={"outreach_id": "1"}),
    )
    assert result.messages == []


def test_the_outage_audience_matches_device_ownership(live_shop: str) -> None:
    with session_scope(live_shop) as session:
        expected = sorted(
            {
                order.customer_id
                for order in session.scalars(
                    select(Order).where(Order.status == OrderStatus.DELIVERED)
                )
                if any("voice" in line.product.cloud_services for line in order.lines)
            }
        )
        assert customers_using_services(session, ["voice"]) == expected

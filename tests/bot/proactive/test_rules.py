"""Events become shop changes and outreach rows, in one transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from conftest import NOON
from proactive_shop import add_customer, add_order
from sqlalchemy import func, select

from bot.db import session_scope
from bot.db.models import (
    Incident,
    IncidentStatus,
    Invoice,
    InvoiceStatus,
    OrderStatus,
    Payment,
    PaymentStatus,
    Shipment,
    ShipmentStatus,
    SupportTicket,
    TicketStatus,
)
from bot.proactive.events import EventError, parse_event
from bot.proactive.models import BusinessEvent, Outreach, OutreachDecision, OutreachState, Urgency
from bot.proactive.policy import Policy
from bot.proactive.rules import IdempotencyConflict, IngestResult, ingest_event


def send(
    url: str, policy: Policy, body: dict[str, Any], key: str | None = None, minutes: float = 0
) -> IngestResult:
    with session_scope(url) as session:
        return ingest_event(
            session,
            parse_event(body, idempotency_key=key, now=NOON + timedelta(minutes=minutes)),
            policy=policy,
            now=NOON + timedelta(minutes=minutes),
            source="test",
        )


def outreach(url: str) -> list[Outreach]:
    with session_scope(url) as session:
        return list(session.scalars(select(Outreach).order_by(Outreach.id)))


def outage(services: list[str], title: str = "Live view down") -> dict[str, Any]:
    return {"kind": "outage.opened", "data": {"services": services, "title": title}}


@pytest.fixture
def households(shop: str) -> dict[str, int]:
    """Who owns what: a camera owner, a thermostat owner, one whose camera is still on its way,
    and a forgotten customer with a camera."""
    with session_scope(shop) as session:
        ana = add_customer(session, "Ana")
        add_order(session, ana, ("indoor_camera",), status=OrderStatus.DELIVERED, at=NOON)
        ben = add_customer(session, "Ben")
        add_order(session, ben, ("thermostat",), status=OrderStatus.DELIVERED, at=NOON)
        cai = add_customer(session, "Cai")
        add_order(session, cai, ("doorbell",), status=OrderStatus.SHIPPED, at=NOON)
        dee = add_customer(session, "Dee")
        add_order(session, dee, ("outdoor_camera",), status=OrderStatus.DELIVERED, at=NOON)
        dee.forgotten_at = NOON
        return {"ana": ana.id, "ben": ben.id, "cai": cai.id, "dee": dee.id}


def test_an_outage_reaches_only_customers_whose_devices_use_the_service(
    shop: str, policy: Policy, households: dict[str, int]
) -> None:
    result = send(shop, policy, outage(["camera-cloud"]))

    rows = outreach(shop)
    assert [r.customer_id for r in rows] == [households["ana"]]
    assert result.outreach_queued == 1 and result.incident_id is not None
    row = rows[0]
    assert (row.topic, row.urgency, row.state) == ("outage", Urgency.URGENT, OutreachState.PENDING)
    assert row.payload == {"incident_id": result.incident_id, "phase": "opened"}
    assert row.next_attempt_at == NOON  # urgent: no coalescing hold
    with session_scope(shop) as session:
        incident = session.get(Incident, result.incident_id)
        assert incident is not None and incident.status is IncidentStatus.ONGOING
        assert incident.services == ["camera-cloud"]


def test_an_outage_on_several_services_reaches_each_customer_once(
    shop: str, policy: Policy, households: dict[str, int]
) -> None:
    send(shop, policy, outage(["camera-cloud", "mobile-app"]))

    assert sorted(r.customer_id for r in outreach(shop)) == [households["ana"], households["ben"]]


def test_a_repeated_event_has_no_second_effect(
    shop: str, policy: Policy, households: dict[str, int]
) -> None:
    first = send(shop, policy, outage(["camera-cloud"]), key="status-42")
    again = send(shop, policy, outage(["camera-cloud"]), key="status-42")

    assert again.duplicate and again.event_id == first.event_id
    assert again.incident_id == first.incident_id
    assert len(outreach(shop)) == 1
    with session_scope(shop) as session:
        assert session.scalar(select(func.count()).select_from(Incident)) == 1
        assert session.scalar(select(func.count()).select_from(BusinessEvent)) == 1


def test_a_reused_key_with_a_different_event_is_refused(
    shop: str, policy: Policy, households: dict[str, int]
) -> None:
    send(shop, policy, outage(["camera-cloud"]), key="k1")
    with pytest.raises(IdempotencyConflict):
        send(shop, policy, outage(["voice"]), key="k1")


def test_a_failing_rule_leaves_no_event_and_no_outreach(shop: str, policy: Policy) -> None:
    with pytest.raises(EventError) as caught:
        send(shop, policy, {"kind": "order.paid", "data": {"order_number": 99999}})

    assert caught.value.problems == [{"field": "data.order_number", "error": "no such order"}]
    with session_scope(shop) as session:
        assert session.scalar(select(func.count()).select_from(BusinessEvent)) == 0


def test_shipment_updates_change_the_shipment_and_coalesce_into_the_newest(
    shop: str, policy: Policy
) -> None:
    with session_scope(shop) as session:
        customer = add_customer(session, "Eve")
        order = add_order(session, customer, ("smart_plug",), status=OrderStatus.SHIPPED, at=NOON)
        number = order.number

    def update(status: str, minutes: float) -> None:
        body = {
            "kind": "shipment.status_changed",
            "data": {"order_number": number, "status": status, "location": "Depot"},
            "occurred_at": (NOON + timedelta(minutes=minutes)).isoformat(),
        }
        send(shop, policy, body, minutes=minutes)

    update("delayed", 0)
    update("out_for_delivery", 4)
    update("delivered", 9)

    rows = [r for r in outreach(shop) if r.topic == "shipping"]
    assert [r.state for r in rows] == [OutreachState.SUPPRESSED] * 2 + [OutreachState.PENDING]
    # The survivor waits for the first update's hold (15 minutes), not its own.
    assert rows[-1].next_attempt_at == NOON + timedelta(minutes=15)
    assert rows[-1].payload["update"] == "delivered"
    with session_scope(shop) as session:
        reasons = session.scalars(
            select(OutreachDecision.reason).where(OutreachDecision.outreach_id == rows[0].id)
        ).all()
        assert reasons == ["superseded"]
        shipment = session.scalars(select(Shipment).where(Shipment.order_number == number)).one()
        assert shipment.status is ShipmentStatus.DELIVERED
        assert shipment.delivered_at == NOON + timedelta(minutes=9)
        assert [e.status for e in shipment.events][-3:] == [
            ShipmentStatus.DELAYED,
            ShipmentStatus.OUT_FOR_DELIVERY,
            ShipmentStatus.DELIVERED,
        ]
    # Delivery also schedules setup tips for the next day.
    tips = [r for r in outreach(shop) if r.topic == "setup_tips"]
    assert len(tips) == 1 and tips[0].not_before == NOON + timedelta(minutes=9, days=1)


def test_outage_resolved_tells_only_those_who_heard_about_it(
    shop: str, policy: Policy, households: dict[str, int]
) -> None:
    opened = send(shop, policy, outage(["camera-cloud", "mobile-app"]))
    with session_scope(shop) as session:
        told = session.scalars(
            select(Outreach).where(Outreach.customer_id == households["ana"])
        ).one()
        told.state, told.sent_at = OutreachState.SENT, NOON

    send(
        shop,
        policy,
        {"kind": "outage.resolved", "data": {"incident_id": opened.incident_id}},
        minutes=30,
    )

    rows = outreach(shop)
    resolved = [r for r in rows if r.payload.get("phase") == "resolved"]
    assert [r.customer_id for r in resolved] == [households["ana"]]
    ben_opened = next(r for r in rows if r.customer_id == households["ben"])
    assert ben_opened.state is OutreachState.SUPPRESSED
    with session_scope(shop) as session:
        incident = session.get(Incident, opened.incident_id)
        assert incident is not None and incident.status is IncidentStatus.RESOLVED
    with pytest.raises(EventError, match="already resolved"):
        send(shop, policy, {"kind": "outage.resolved", "data": {"incident_id": opened.incident_id}})


def test_maintenance_is_announced_hours_before_and_expires_when_it_starts(
    shop: str, policy: Policy, households: dict[str, int]
) -> None:
    starts = NOON + timedelta(days=3)
    body = {
        "kind": "maintenance.scheduled",
        "data": {
            "services": ["automations"],
            "title": "Engine upgrade",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
        },
    }

    result = send(shop, policy, body)

    rows = outreach(shop)
    assert [r.customer_id for r in rows] == [households["ben"]]
    assert rows[0].not_before == starts - timedelta(hours=24)
    assert rows[0].expires_at == starts
    assert rows[0].urgency is Urgency.NORMAL
    with session_scope(shop) as session:
        incident = session.get(Incident, result.incident_id)
        assert incident is not None and incident.status is IncidentStatus.SCHEDULED


def test_payment_failed_records_the_charge_and_alerts_urgently(shop: str, policy: Policy) -> None:
    with session_scope(shop) as session:
        customer = add_customer(session, "Fay")
        order = add_order(session, customer, ("hub",), status=OrderStatus.DELIVERED, at=NOON)
        session.add(
            Invoice(
                number="INV-1",
                customer_id=customer.id,
                order_number=order.number,
                amount=order.total,
                status=InvoiceStatus.PAID,
                issued_at=NOON,
                pdf_url="https://x.example/1.pdf",
            )
        )

    send(
        shop,
        policy,
        {"kind": "payment.failed", "data": {"invoice_number": "INV-1", "reason": "card_declined"}},
    )

    (row,) = outreach(shop)
    assert (row.topic, row.urgency) == ("payment", Urgency.URGENT)
    with session_scope(shop) as session:
        payment = session.scalars(select(Payment)).one()
        assert payment.status is PaymentStatus.FAILED
        assert payment.failure_reason == "card_declined"
        invoice = session.get(Invoice, "INV-1")
        assert invoice is not None and invoice.status is InvoiceStatus.OPEN


def test_ticket_closed_schedules_a_follow_up_a_day_later(shop: str, policy: Policy) -> None:
    with session_scope(shop) as session:
        customer = add_customer(session, "Gus")
        ticket = SupportTicket(
            customer_id=customer.id,
            subject="Camera offline",
            status=TicketStatus.OPEN,
            opened_at=NOON - timedelta(days=2),
        )
        session.add(ticket)
        session.flush()
        ticket_id = ticket.id

    send(shop, policy, {"kind": "ticket.closed", "data": {"ticket_id": ticket_id}})

    (row,) = outreach(shop)
    assert row.topic == "ticket_followup" and row.not_before == NOON + timedelta(days=1)
    with session_scope(shop) as session:
        ticket_row = session.get(SupportTicket, ticket_id)
        assert ticket_row is not None and ticket_row.status is TicketStatus.CLOSED


def test_events_about_forgotten_customers_queue_nothing(
    shop: str, policy: Policy, households: dict[str, int]
) -> None:
    with pytest.raises(EventError, match="no such customer"):
        send(
            shop, policy, {"kind": "customer.signed_up", "data": {"customer_id": households["dee"]}}
        )
    send(shop, policy, outage(["camera-cloud"]))
    assert households["dee"] not in {r.customer_id for r in outreach(shop)}

"""Periodic scans for what no system announces; dedup keys make every run idempotent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import (
    Customer,
    Incident,
    IncidentKind,
    IncidentStatus,
    Invoice,
    InvoiceStatus,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    Shipment,
    ShipmentStatus,
    Subscription,
    SubscriptionStatus,
    SupportTicket,
    TicketStatus,
)
from bot.proactive.outbox import OutreachDraft, queue_outreach
from bot.proactive.policy import Policy
from bot.proactive.rules import (
    maintenance_drafts,
    payment_draft,
    renewal_draft,
    setup_tips_draft,
    ticket_followup_draft,
)

logger = logging.getLogger(__name__)

IN_TRANSIT = (
    ShipmentStatus.LABEL_CREATED,
    ShipmentStatus.SHIPPED,
    ShipmentStatus.IN_TRANSIT,
    ShipmentStatus.OUT_FOR_DELIVERY,
    ShipmentStatus.DELAYED,
)

Scan = Callable[[Session, Policy, datetime], list[OutreachDraft]]


def renewals_due(session: Session, policy: Policy, now: datetime) -> list[OutreachDraft]:
    """Subscriptions renewing within the notice period."""
    subscriptions = session.scalars(
        select(Subscription)
        .join(Customer, Customer.id == Subscription.customer_id)
        .where(
            Subscription.status == SubscriptionStatus.ACTIVE,
            Subscription.renews_at > now,
            Subscription.renews_at <= now + policy.schedule.renewal_notice,
            Customer.forgotten_at.is_(None),
        )
    )
    return [renewal_draft(subscription) for subscription in subscriptions]


def payments_failed(session: Session, policy: Policy, now: datetime) -> list[OutreachDraft]:
    """Recent failed charges on invoices that are still open."""
    rows = session.execute(
        select(Payment, Invoice.customer_id)
        .join(Invoice, Invoice.number == Payment.invoice_number)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(
            Payment.status == PaymentStatus.FAILED,
            Payment.at >= now - policy.scans.lookback,
            Invoice.status == InvoiceStatus.OPEN,
            Customer.forgotten_at.is_(None),
        )
    )
    return [payment_draft(payment, customer_id) for payment, customer_id in rows]


def shipments_late(session: Session, policy: Policy, now: datetime) -> list[OutreachDraft]:
    """Parcels still on the way well past their ETA."""
    late_before = now - policy.scans.shipment_late_grace
    rows = session.execute(
        select(Shipment, Order)
        .join(Order, Order.number == Shipment.order_number)
        .join(Customer, Customer.id == Order.customer_id)
        .where(
            Shipment.status.in_(IN_TRANSIT),
            Shipment.eta < late_before,
            Shipment.eta >= late_before - policy.scans.lookback,
            Order.status.not_in((OrderStatus.CANCELLED, OrderStatus.REFUNDED)),
            Customer.forgotten_at.is_(None),
        )
    )
    drafts = []
    for shipment, order in rows:
        assert shipment.eta is not None
        drafts.append(
            OutreachDraft(
                customer_id=order.customer_id,
                topic="shipping",
                dedup_key=f"shipping:shipment:{shipment.id}:late:{shipment.eta.isoformat()}",
                coalesce_key=f"shipping:order:{order.number}",
                payload={"order_number": order.number, "update": "late"},
            )
        )
    return drafts


def setup_tips_due(session: Session, policy: Policy, now: datetime) -> list[OutreachDraft]:
    """Recently delivered orders: a setup tip a day after arrival."""
    rows = session.execute(
        select(Order, Shipment.delivered_at)
        .join(Shipment, Shipment.order_number == Order.number)
        .join(Customer, Customer.id == Order.customer_id)
        .where(
            Order.status == OrderStatus.DELIVERED,
            Shipment.delivered_at >= now - policy.scans.lookback,
            Customer.forgotten_at.is_(None),
        )
    )
    return [setup_tips_draft(order, delivered_at, policy) for order, delivered_at in rows]


def tickets_to_follow_up(session: Session, policy: Policy, now: datetime) -> list[OutreachDraft]:
    """Tickets closed recently: ask whether everything works now."""
    tickets = session.scalars(
        select(SupportTicket)
        .join(Customer, Customer.id == SupportTicket.customer_id)
        .where(
            SupportTicket.status == TicketStatus.CLOSED,
            SupportTicket.closed_at >= now - policy.scans.lookback,
            Customer.forgotten_at.is_(None),
        )
    )
    return [ticket_followup_draft(ticket, policy) for ticket in tickets]


def maintenance_coming(session: Session, policy: Policy, now: datetime) -> list[OutreachDraft]:
    """Scheduled maintenance whose heads-up falls within the next scan period or so."""
    horizon = now + policy.schedule.maintenance_heads_up + policy.scans.lookback
    incidents = session.scalars(
        select(Incident).where(
            Incident.kind == IncidentKind.MAINTENANCE,
            Incident.status == IncidentStatus.SCHEDULED,
            Incident.starts_at > now,
            Incident.starts_at <= horizon,
        )
    )
    drafts: list[OutreachDraft] = []
    for incident in incidents:
        drafts += maintenance_drafts(session, incident, policy)
    return drafts


SCANS: dict[str, Scan] = {
    "renewals_due": renewals_due,
    "payments_failed": payments_failed,
    "shipments_late": shipments_late,
    "setup_tips_due": setup_tips_due,
    "tickets_to_follow_up": tickets_to_follow_up,
    "maintenance_coming": maintenance_coming,
}


def run_scans(session: Session, policy: Policy, now: datetime) -> dict[str, int]:
    """Run every scan once; returns how many new outreach rows each queued."""
    queued: dict[str, int] = {}
    for name, scan in SCANS.items():
        drafts = scan(session, policy, now)
        new = queue_outreach(session, drafts, policy=policy.throttle, now=now)
        queued[name] = len(new)
        if new:
            logger.info("scan %s queued %d outreach rows", name, len(new))
    return queued

"""Outreach rules: an event becomes shop changes and outreach rows, in one transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
    OrderLine,
    OrderStatus,
    Payment,
    PaymentStatus,
    Product,
    Shipment,
    ShipmentEvent,
    ShipmentStatus,
    Subscription,
    SubscriptionStatus,
    SupportTicket,
    TicketStatus,
)
from bot.proactive.events import EventError, EventIn, EventKind
from bot.proactive.models import BusinessEvent, Outreach, OutreachState
from bot.proactive.outbox import WAITING_STATES, OutreachDraft, queue_outreach, supersede
from bot.proactive.policy import Policy

# Orders whose devices are in the customer's home: the ones an outage can hit.
OWNED_ORDER_STATES = (OrderStatus.DELIVERED,)
ORDER_STATUS_FOR_SHIPMENT = {
    "shipped": OrderStatus.SHIPPED,
    "out_for_delivery": OrderStatus.OUT_FOR_DELIVERY,
    "delayed": OrderStatus.DELAYED,
    "delivered": OrderStatus.DELIVERED,
}
CLOSED_ORDER_STATES = (OrderStatus.CANCELLED, OrderStatus.REFUNDED)


class IdempotencyConflict(Exception):
    """An idempotency key was reused with a different request."""


@dataclass(frozen=True)
class IngestResult:
    event_id: int
    kind: str
    duplicate: bool
    outreach_queued: int
    incident_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "event_id": self.event_id,
            "kind": self.kind,
            "duplicate": self.duplicate,
            "outreach_queued": self.outreach_queued,
        }
        if self.incident_id is not None:
            body["incident_id"] = self.incident_id
        return body


@dataclass
class RuleContext:
    session: Session
    event: EventIn
    row: BusinessEvent
    policy: Policy
    now: datetime
    incident_id: int | None = None


Rule = Callable[[RuleContext], list[OutreachDraft]]


def find_duplicate(session: Session, event: EventIn) -> IngestResult | None:
    """The earlier result of an event with this idempotency key, if any."""
    if event.idempotency_key is None:
        return None
    earlier = session.scalar(
        select(BusinessEvent).where(BusinessEvent.idempotency_key == event.idempotency_key)
    )
    if earlier is None:
        return None
    if earlier.request_hash != event.request_hash:
        raise IdempotencyConflict(
            f"idempotency key {event.idempotency_key!r} was already used for a different event"
        )
    return IngestResult(
        event_id=earlier.id,
        kind=earlier.kind,
        duplicate=True,
        outreach_queued=earlier.outreach_count,
        incident_id=earlier.data.get("_incident_id"),
    )


def ingest_event(
    session: Session, event: EventIn, *, policy: Policy, now: datetime, source: str
) -> IngestResult:
    """Record the event, apply it to the shop data and queue its outreach, all or nothing.

    The caller's transaction covers everything: if a rule fails, neither the event nor
    any outreach row exists afterwards. A repeated idempotency key returns the first
    result and changes nothing.
    """
    duplicate = find_duplicate(session, event)
    if duplicate is not None:
        return duplicate
    row = BusinessEvent(
        kind=event.kind.value,
        idempotency_key=event.idempotency_key,
        request_hash=event.request_hash,
        source=source,
        data=dict(event.raw_data),
        occurred_at=event.occurred_at,
        received_at=now,
    )
    session.add(row)
    session.flush()
    context = RuleContext(session, event, row, policy, now)
    drafts = RULES[event.kind](context)
    queued = queue_outreach(session, drafts, policy=policy.throttle, now=now, event_id=row.id)
    row.outreach_count = len(queued)
    if context.incident_id is not None:
        # Kept with the event so a repeat can answer with the same incident id.
        row.data = {**row.data, "_incident_id": context.incident_id}
    session.flush()
    return IngestResult(
        event_id=row.id,
        kind=row.kind,
        duplicate=False,
        outreach_queued=len(queued),
        incident_id=context.incident_id,
    )


def _not_found(field: str, what: str) -> EventError:
    return EventError([{"field": f"data.{field}", "error": f"no such {what}"}])


def _live_customer(session: Session, customer_id: int) -> Customer | None:
    customer = session.get(Customer, customer_id)
    return customer if customer is not None and customer.forgotten_at is None else None


def _order(context: RuleContext) -> Order:
    order = context.session.get(Order, context.event.data["order_number"])
    if order is None:
        raise _not_found("order_number", "order")
    return order


def customers_using_services(session: Session, services: Sequence[str]) -> list[int]:
    """Customers who have a device at home that needs any of these cloud services."""
    wanted = set(services)
    product_ids = [
        product.id
        for product in session.scalars(select(Product))
        if wanted & set(product.cloud_services)
    ]
    if not product_ids:
        return []
    query = (
        select(Order.customer_id)
        .join(OrderLine, OrderLine.order_number == Order.number)
        .join(Customer, Customer.id == Order.customer_id)
        .where(
            OrderLine.product_id.in_(product_ids),
            Order.status.in_(OWNED_ORDER_STATES),
            Customer.forgotten_at.is_(None),
        )
        .distinct()
        .order_by(Order.customer_id)
    )
    return list(session.scalars(query))


# -- orders and shipping -------------------------------------------------------------


def _shipping_draft(order: Order, dedup: str, payload: dict[str, Any]) -> OutreachDraft:
    return OutreachDraft(
        customer_id=order.customer_id,
        topic="shipping",
        dedup_key=dedup,
        coalesce_key=f"shipping:order:{order.number}",
        payload={"order_number": order.number, **payload},
    )


def order_paid(context: RuleContext) -> list[OutreachDraft]:
    order = _order(context)
    if order.status in CLOSED_ORDER_STATES:
        raise EventError([{"field": "data.order_number", "error": f"order is {order.status}"}])
    if _live_customer(context.session, order.customer_id) is None:
        return []
    return [_shipping_draft(order, f"shipping:order:{order.number}:paid", {"update": "paid"})]


def shipment_status_changed(context: RuleContext) -> list[OutreachDraft]:
    """Apply the carrier's news to the shipment, then tell the customer (coalesced)."""
    data, at = context.event.data, context.event.occurred_at
    order = _order(context)
    if order.status in CLOSED_ORDER_STATES:
        raise EventError([{"field": "data.order_number", "error": f"order is {order.status}"}])
    status = ShipmentStatus(data["status"])
    shipment = order.shipments[-1] if order.shipments else None
    if shipment is None:
        if not (data.get("carrier") and data.get("tracking_number")):
            raise EventError(
                [
                    {
                        "field": "data.tracking_number",
                        "error": "the order has no shipment yet: give carrier and tracking_number",
                    }
                ]
            )
        shipment = Shipment(
            order_number=order.number,
            carrier=data["carrier"],
            tracking_number=data["tracking_number"],
            status=status,
            shipped_at=at,
        )
        context.session.add(shipment)
    shipment.status = status
    if data.get("eta") is not None:
        shipment.eta = data["eta"]
    if status is ShipmentStatus.SHIPPED and shipment.shipped_at is None:
        shipment.shipped_at = at
    if status is ShipmentStatus.DELIVERED:
        shipment.delivered_at = at
    shipment.events.append(ShipmentEvent(status=status, at=at, location=data.get("location")))
    order.status = ORDER_STATUS_FOR_SHIPMENT[status.value]
    context.session.flush()

    if _live_customer(context.session, order.customer_id) is None:
        return []
    drafts = [
        _shipping_draft(
            order,
            f"shipping:shipment:{shipment.id}:{status.value}:{at.isoformat()}",
            {"update": status.value},
        )
    ]
    if status is ShipmentStatus.DELIVERED:
        drafts.append(setup_tips_draft(order, at, context.policy))
    return drafts


def setup_tips_draft(order: Order, delivered_at: datetime, policy: Policy) -> OutreachDraft:
    """One setup tip per delivered order, a day after it arrived."""
    due = delivered_at + policy.schedule.setup_tips_after_delivery
    return OutreachDraft(
        customer_id=order.customer_id,
        topic="setup_tips",
        dedup_key=f"setup_tips:order:{order.number}",
        payload={"order_number": order.number},
        not_before=due,
        expires_at=due + policy.throttle.topic("setup_tips").expires_after,
    )


def device_delivered(context: RuleContext) -> list[OutreachDraft]:
    order = _order(context)
    if _live_customer(context.session, order.customer_id) is None:
        return []
    shipment = order.shipments[-1] if order.shipments else None
    delivered_at = (
        context.event.data.get("delivered_at")
        or (shipment.delivered_at if shipment else None)
        or context.event.occurred_at
    )
    return [setup_tips_draft(order, delivered_at, context.policy)]


def customer_signed_up(context: RuleContext) -> list[OutreachDraft]:
    customer = _live_customer(context.session, context.event.data["customer_id"])
    if customer is None:
        raise _not_found("customer_id", "customer")
    return [
        OutreachDraft(
            customer_id=customer.id,
            topic="welcome",
            dedup_key=f"welcome:customer:{customer.id}",
        )
    ]


# -- incidents -----------------------------------------------------------------------


def incident_coalesce_key(topic: str, incident_id: int, customer_id: int) -> str:
    """One pending message per incident and customer: newer news replaces older."""
    return f"{topic}:incident:{incident_id}:customer:{customer_id}"


def _outage_drafts(
    incident: Incident, customers: Sequence[int], dedup_part: str, phase: str
) -> list[OutreachDraft]:
    return [
        OutreachDraft(
            customer_id=customer_id,
            topic="outage",
            dedup_key=f"outage:incident:{incident.id}:{dedup_part}:customer:{customer_id}",
            coalesce_key=incident_coalesce_key("outage", incident.id, customer_id),
            payload={"incident_id": incident.id, "phase": phase},
        )
        for customer_id in customers
    ]


def outage_opened(context: RuleContext) -> list[OutreachDraft]:
    data = context.event.data
    incident = Incident(
        kind=IncidentKind.OUTAGE,
        status=IncidentStatus.ONGOING,
        title=data["title"],
        details=data.get("details", ""),
        services=data["services"],
        starts_at=context.event.occurred_at,
    )
    context.session.add(incident)
    context.session.flush()
    context.incident_id = incident.id
    customers = customers_using_services(context.session, incident.services)
    return _outage_drafts(incident, customers, "opened", "opened")


def _ongoing_outage(context: RuleContext) -> Incident:
    incident = context.session.get(Incident, context.event.data["incident_id"])
    if incident is None or incident.kind is not IncidentKind.OUTAGE:
        raise _not_found("incident_id", "outage")
    if incident.status is IncidentStatus.RESOLVED:
        raise EventError([{"field": "data.incident_id", "error": "the outage is already resolved"}])
    context.incident_id = incident.id
    return incident


def outage_updated(context: RuleContext) -> list[OutreachDraft]:
    """News on an outage: customers already told, and newly hit ones, hear the latest."""
    data = context.event.data
    incident = _ongoing_outage(context)
    incident.details = data["details"]
    if data.get("title"):
        incident.title = data["title"]
    if data.get("services"):
        incident.services = data["services"]
    customers = customers_using_services(context.session, incident.services)
    return _outage_drafts(incident, customers, f"update:{context.row.id}", "updated")


def outage_resolved(context: RuleContext) -> list[OutreachDraft]:
    """Tell those who heard about the outage; those who had not yet heard need not."""
    session, data = context.session, context.event.data
    incident = _ongoing_outage(context)
    incident.status = IncidentStatus.RESOLVED
    incident.resolved_at = context.event.occurred_at
    incident.ends_at = context.event.occurred_at
    if data.get("details"):
        incident.details = data["details"]
    told: set[int] = set()
    unsent: list[tuple[int, int | None]] = []
    rows = session.execute(
        select(Outreach.id, Outreach.customer_id, Outreach.state).where(
            # Every customer's row for this incident (see incident_coalesce_key).
            Outreach.coalesce_key.like(f"outage:incident:{incident.id}:customer:%")
        )
    )
    for outreach_id, customer_id, state in rows:
        if state in (OutreachState.SENT, OutreachState.SENDING):
            told.add(customer_id)
        elif state in WAITING_STATES:
            unsent.append((outreach_id, None))
    supersede(session, unsent, context.now, reason="the outage was resolved before it was sent")
    return _outage_drafts(incident, sorted(told), "resolved", "resolved")


def maintenance_scheduled(context: RuleContext) -> list[OutreachDraft]:
    """A heads-up some hours before the window, to customers whose devices it touches."""
    data, policy = context.event.data, context.policy
    incident_id = data.get("incident_id")
    if incident_id is not None:
        incident = context.session.get(Incident, incident_id)
        if incident is None or incident.kind is not IncidentKind.MAINTENANCE:
            raise _not_found("incident_id", "maintenance window")
    else:
        incident = Incident(kind=IncidentKind.MAINTENANCE, status=IncidentStatus.SCHEDULED)
        context.session.add(incident)
    incident.status = IncidentStatus.SCHEDULED
    incident.title = data["title"]
    incident.details = data.get("details", "")
    incident.services = data["services"]
    incident.starts_at = data["starts_at"]
    incident.ends_at = data["ends_at"]
    context.session.flush()
    context.incident_id = incident.id
    return maintenance_drafts(context.session, incident, policy)


def maintenance_drafts(session: Session, incident: Incident, policy: Policy) -> list[OutreachDraft]:
    heads_up_at = incident.starts_at - policy.schedule.maintenance_heads_up
    stamp = incident.starts_at.isoformat()
    return [
        OutreachDraft(
            customer_id=customer_id,
            topic="maintenance",
            dedup_key=f"maintenance:incident:{incident.id}:{stamp}:customer:{customer_id}",
            coalesce_key=incident_coalesce_key("maintenance", incident.id, customer_id),
            payload={"incident_id": incident.id},
            not_before=heads_up_at,
            # After the window starts, a heads-up is no use.
            expires_at=incident.starts_at,
        )
        for customer_id in customers_using_services(session, incident.services)
    ]


# -- billing and service -------------------------------------------------------------


def renewal_draft(subscription: Subscription) -> OutreachDraft:
    assert subscription.renews_at is not None
    return OutreachDraft(
        customer_id=subscription.customer_id,
        topic="renewal",
        dedup_key=f"renewal:subscription:{subscription.id}:{subscription.renews_at.date()}",
        payload={"subscription_id": subscription.id},
        expires_at=subscription.renews_at,
    )


def renewal_due(context: RuleContext) -> list[OutreachDraft]:
    subscription = context.session.get(Subscription, context.event.data["subscription_id"])
    if subscription is None:
        raise _not_found("subscription_id", "subscription")
    if subscription.status is SubscriptionStatus.CANCELLED or subscription.renews_at is None:
        raise EventError(
            [{"field": "data.subscription_id", "error": "the subscription does not renew"}]
        )
    if _live_customer(context.session, subscription.customer_id) is None:
        return []
    return [renewal_draft(subscription)]


def payment_draft(payment: Payment, customer_id: int) -> OutreachDraft:
    return OutreachDraft(
        customer_id=customer_id,
        topic="payment",
        dedup_key=f"payment:payment:{payment.id}",
        payload={"payment_id": payment.id, "invoice_number": payment.invoice_number},
    )


def payment_failed(context: RuleContext) -> list[OutreachDraft]:
    """Record the failed charge (the invoice stays open), then alert the customer."""
    session, data = context.session, context.event.data
    invoice = session.get(Invoice, data["invoice_number"])
    if invoice is None:
        raise _not_found("invoice_number", "invoice")
    if invoice.status is not InvoiceStatus.OPEN and invoice.status is not InvoiceStatus.PAID:
        raise EventError([{"field": "data.invoice_number", "error": "the invoice is void"}])
    payment = Payment(
        invoice_number=invoice.number,
        amount=invoice.amount,
        status=PaymentStatus.FAILED,
        failure_reason=data.get("reason"),
        at=context.event.occurred_at,
    )
    invoice.status = InvoiceStatus.OPEN
    if invoice.subscription_id is not None:
        subscription = session.get(Subscription, invoice.subscription_id)
        if subscription is not None and subscription.status is SubscriptionStatus.ACTIVE:
            subscription.status = SubscriptionStatus.PAST_DUE
        if subscription is not None:
            payment.payment_method_id = subscription.payment_method_id
    session.add(payment)
    session.flush()
    if _live_customer(session, invoice.customer_id) is None:
        return []
    return [payment_draft(payment, invoice.customer_id)]


def ticket_followup_draft(ticket: SupportTicket, policy: Policy) -> OutreachDraft:
    assert ticket.closed_at is not None and ticket.customer_id is not None
    due = ticket.closed_at + policy.schedule.ticket_followup_after_close
    return OutreachDraft(
        customer_id=ticket.customer_id,
        topic="ticket_followup",
        dedup_key=f"ticket_followup:ticket:{ticket.id}:{ticket.closed_at.isoformat()}",
        payload={"ticket_id": ticket.id},
        not_before=due,
        expires_at=due + policy.throttle.topic("ticket_followup").expires_after,
    )


def ticket_closed(context: RuleContext) -> list[OutreachDraft]:
    ticket = context.session.get(SupportTicket, context.event.data["ticket_id"])
    if ticket is None:
        raise _not_found("ticket_id", "ticket")
    ticket.status = TicketStatus.CLOSED
    ticket.closed_at = context.event.data.get("closed_at") or context.event.occurred_at
    context.session.flush()
    if ticket.customer_id is None or _live_customer(context.session, ticket.customer_id) is None:
        return []
    return [ticket_followup_draft(ticket, context.policy)]


def security_alert(context: RuleContext) -> list[OutreachDraft]:
    data = context.event.data
    customer = _live_customer(context.session, data["customer_id"])
    if customer is None:
        raise _not_found("customer_id", "customer")
    fingerprint = hashlib.sha256(
        f"{data['message']}|{context.event.occurred_at.isoformat()}".encode()
    ).hexdigest()[:16]
    return [
        OutreachDraft(
            customer_id=customer.id,
            topic="security",
            dedup_key=f"security:customer:{customer.id}:{fingerprint}",
            payload={"message": data["message"], "at": context.event.occurred_at.isoformat()},
        )
    ]


RULES: dict[EventKind, Rule] = {
    EventKind.ORDER_PAID: order_paid,
    EventKind.SHIPMENT_STATUS_CHANGED: shipment_status_changed,
    EventKind.DEVICE_DELIVERED: device_delivered,
    EventKind.CUSTOMER_SIGNED_UP: customer_signed_up,
    EventKind.OUTAGE_OPENED: outage_opened,
    EventKind.OUTAGE_UPDATED: outage_updated,
    EventKind.OUTAGE_RESOLVED: outage_resolved,
    EventKind.MAINTENANCE_SCHEDULED: maintenance_scheduled,
    EventKind.RENEWAL_DUE: renewal_due,
    EventKind.PAYMENT_FAILED: payment_failed,
    EventKind.TICKET_CLOSED: ticket_closed,
    EventKind.SECURITY_ALERT: security_alert,
}

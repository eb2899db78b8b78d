"""Proactive messages: each EXTERNAL_* intent's action words one outreach from live data."""

from __future__ import annotations

import logging
from abc import abstractmethod
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.base import CustomerAction, EventList
from actions.formatting import humanize, local_day, money
from actions.orders import describe_order
from bot.db.catalog import CLOUD_SERVICES
from bot.db.models import (
    Customer,
    Incident,
    IncidentStatus,
    Invoice,
    InvoiceStatus,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    Product,
    ShipmentStatus,
    Subscription,
    SubscriptionStatus,
    SupportTicket,
    TicketStatus,
)
from bot.identity.ownership import CustomerOwned, find_owned
from bot.proactive.models import DecisionKind, Outreach, OutreachState
from bot.proactive.outbox import confirm_delivery, record
from bot.proactive.rules import OWNED_ORDER_STATES

logger = logging.getLogger(__name__)

Buttons = list[dict[str, str]]
# A follow-up question ("want the steps?", "is it working?") is answered within this long.
FOLLOW_UP_WINDOW = timedelta(days=7)


def first_name(customer: Customer) -> str:
    return customer.name.split()[0] if customer.name.strip() else "there"


def local_clock(moment: datetime, timezone: str) -> str:
    """'Tuesday 24 November at 02:00' in the customer's own zone."""
    return f"{local_day(moment, timezone)} at {moment.astimezone(ZoneInfo(timezone)):%H:%M}"


def fewer(topic: str, label: str) -> dict[str, str]:
    """The button that lets a customer turn this kind of message off, on every message."""
    return {"title": label, "payload": f'/stop_notifications{{"topic":"{topic}"}}'}


def joined(names: list[str]) -> str:
    names = list(dict.fromkeys(names))
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def owned_products(session: Session, customer: Customer) -> list[Product]:
    """Devices in the customer's home: lines of their delivered orders."""
    return list(
        session.scalars(
            select(Product)
            .join(OrderLine, OrderLine.product_id == Product.id)
            .join(Order, Order.number == OrderLine.order_number)
            .where(Order.customer_id == customer.id, Order.status.in_(OWNED_ORDER_STATES))
            .distinct()
            .order_by(Product.name)
        )
    )


def devices_on(session: Session, customer: Customer, services: list[str]) -> list[Product]:
    return [p for p in owned_products(session, customer) if set(p.cloud_services) & set(services)]


def owned[Row: CustomerOwned](
    session: Session, customer: Customer, model: type[Row], key: object
) -> Row | None:
    """The customer's row named in an outreach payload, if the payload names one."""
    return find_owned(session, customer, model, key) if key is not None else None


def incident_of(session: Session, row: Outreach) -> Incident | None:
    # Incidents are public (a status page would show them); no ownership to check.
    incident_id = row.payload.get("incident_id")
    return session.get(Incident, incident_id) if incident_id is not None else None


def service_names(services: list[str]) -> str:
    return joined([CLOUD_SERVICES.get(slug, slug).split(" (")[0] for slug in services])


class ProactiveAction(CustomerAction):
    """Words one outreach row; the row decides whether anything is said at all.

    The dispatcher triggers the intent with the row's id. `confirm_delivery` lets the
    row through once, only for the conversation the dispatcher chose and only after the
    throttle approved it, so a repeated trigger, a takeover after a crash or a customer
    typing the intent by hand never produces a second message. Everything is silent for
    anyone else: a notice nobody asked for must not turn into a "please sign in".
    """

    topic: str
    unavailable_response = None

    def answer_anonymous(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        return []

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        raw = next(tracker.get_latest_entity_values("outreach_id"), None)
        try:
            outreach_id = int(str(raw))
        except ValueError:
            return []
        now = datetime.now(UTC)
        row = confirm_delivery(session, outreach_id, tracker.sender_id, self.topic, now)
        if row is None:
            return []
        if row.customer_id != customer.id:
            # Cannot happen while sender ids name one customer; never speak if it does.
            logger.error("outreach %s does not belong to this conversation", row.id)
            return []
        message = self.compose(session, customer, row)
        if message is None:
            # The facts changed since the event (order cancelled, invoice paid): say nothing.
            row.state, row.delivered_at = OutreachState.SUPPRESSED, None
            row.claimed_by, row.lease_until = None, None
            record(
                session, row.id, DecisionKind.SUPPRESS, "no_longer_relevant", now, worker="action"
            )
            return []
        text, buttons = message
        dispatcher.utter_message(text=text, buttons=buttons)
        return []

    @abstractmethod
    def compose(
        self, session: Session, customer: Customer, row: Outreach
    ) -> tuple[str, Buttons] | None: ...


class ActionNotifyShipping(ProactiveAction):
    topic = "shipping"

    def name(self) -> str:
        return "action_notify_shipping"

    def compose(
        self, session: Session, customer: Customer, row: Outreach
    ) -> tuple[str, Buttons] | None:
        order = owned(session, customer, Order, row.payload.get("order_number"))
        if order is None or order.status in (OrderStatus.CANCELLED, OrderStatus.REFUNDED):
            return None
        name, number = first_name(customer), order.number
        shipment = order.shipments[-1] if order.shipments else None
        state = shipment.status if shipment else None
        if row.payload.get("update") == "late" and state is not ShipmentStatus.DELIVERED:
            lead = f"Sorry, {name}: order {number} is taking longer than its delivery estimate."
        elif state is ShipmentStatus.DELIVERED:
            lead = f"Order {number} has been delivered, {name}."
        elif state is ShipmentStatus.OUT_FOR_DELIVERY:
            lead = f"Good news, {name}: order {number} is out for delivery today."
        elif state is ShipmentStatus.DELAYED:
            lead = f"Sorry, {name}: order {number} is running late."
        elif state is not None:
            lead = f"Good news, {name}: order {number} is on its way."
        else:
            lead = f"Thanks, {name}! We've received payment for order {number}."
        buttons = [
            {
                "title": f"Track order {number}",
                "payload": f'/track_order{{"order_number":"{number}"}}',
            }
        ]
        if state is ShipmentStatus.DELAYED or row.payload.get("update") == "late":
            buttons.append({"title": "Talk to a person", "payload": "/contact_human_agent"})
        buttons.append(fewer("shipping", "Fewer shipping updates"))
        return f"{lead} {describe_order(order, customer.timezone)}", buttons


class ActionNotifySetupTips(ProactiveAction):
    topic = "setup_tips"

    def name(self) -> str:
        return "action_notify_setup_tips"

    def compose(
        self, session: Session, customer: Customer, row: Outreach
    ) -> tuple[str, Buttons] | None:
        order = owned(session, customer, Order, row.payload.get("order_number"))
        if order is None or order.status is not OrderStatus.DELIVERED or not order.lines:
            return None
        products = [line.product for line in order.lines]
        shipment = order.shipments[-1] if order.shipments else None
        arrived = (
            f" arrived on {local_day(shipment.delivered_at, customer.timezone)}"
            if shipment and shipment.delivered_at
            else " arrived"
        )
        first_step = products[0].setup_guide.splitlines()[0].split(". ", 1)[-1]
        text = (
            f"Hi {first_name(customer)}! Your {joined([p.name for p in products])}{arrived}. "
            f"A tip to get started with the {products[0].name}: {first_step} "
            "Would you like me to walk you through the setup?"
        )
        return text, [
            {"title": "Yes, show me the steps", "payload": "/affirm"},
            {"title": "No thanks", "payload": "/deny"},
            fewer("setup_tips", "No more setup tips"),
        ]


class ActionNotifyWelcome(ProactiveAction):
    topic = "welcome"

    def name(self) -> str:
        return "action_notify_welcome"

    def compose(
        self, session: Session, customer: Customer, row: Outreach
    ) -> tuple[str, Buttons] | None:
        text = (
            f"Welcome to Lumen Home, {first_name(customer)}! I'm Herald, your support "
            "assistant. I can track your orders, help you set up your devices, sort out "
            "billing and tell you when an outage affects you. I only message you when "
            'something matters, and you can say "no messages after 9pm" or "stop '
            'welcome messages" any time.'
        )
        return text, [
            {"title": "Track my order", "payload": "/track_order"},
            {"title": "Set up a device", "payload": "/setup_help"},
            {"title": "What do you send me?", "payload": "/list_notifications"},
        ]


class ActionNotifyOutage(ProactiveAction):
    topic = "outage"

    def name(self) -> str:
        return "action_notify_outage"

    def compose(
        self, session: Session, customer: Customer, row: Outreach
    ) -> tuple[str, Buttons] | None:
        incident = incident_of(session, row)
        if incident is None:
            return None
        devices = devices_on(session, customer, list(incident.services))
        if not devices:
            return None  # the devices that needed the service are gone (returned)
        name, services = first_name(customer), service_names(list(incident.services))
        your = f"your {joined([d.name for d in devices])}"
        if incident.status is IncidentStatus.RESOLVED:
            fixed = incident.resolved_at or datetime.now(UTC)
            text = (
                f"Good news, {name}: the {services} problem is fixed "
                f"(since {local_clock(fixed, customer.timezone)}). {your[0].upper()}{your[1:]} "
                "should work normally again; if not, restarting it usually helps."
            )
            return text, [
                {"title": "It still doesn't work", "payload": "/contact_human_agent"},
                {"title": "Thanks", "payload": "/thank"},
            ]
        details = f" {incident.details}" if incident.details else ""
        if row.payload.get("phase") == "updated":
            text = f"Update on the {services} outage, {name}:{details} It still affects {your}."
        else:
            text = (
                f"Heads-up, {name}: {services} is having an outage ({incident.title}).{details} "
                f"Until it's fixed, {your} may not work as usual. I'll tell you when it's resolved."
            )
        return text, [
            {"title": "Is it fixed yet?", "payload": "/outage_status"},
            {"title": "Talk to a person", "payload": "/contact_human_agent"},
            fewer("outage", "Stop outage alerts"),
        ]


class ActionNotifyMaintenance(ProactiveAction):
    topic = "maintenance"

    def name(self) -> str:
        return "action_notify_maintenance"

    def compose(
        self, session: Session, customer: Customer, row: Outreach
    ) -> tuple[str, Buttons] | None:
        incident = incident_of(session, row)
        if incident is None or incident.status is not IncidentStatus.SCHEDULED:
            return None
        devices = devices_on(session, customer, list(incident.services))
        if not devices:
            return None
        until = ""
        if incident.ends_at is not None:
            until = f" until {local_clock(incident.ends_at, customer.timezone).split(' at ')[-1]}"
        details = f" {incident.details}" if incident.details else ""
        text = (
            f"Planned maintenance, {first_name(customer)}: {incident.title} on "
            f"{local_clock(incident.starts_at, customer.timezone)}{until} (your time).{details} "
            f"During that time your {joined([d.name for d in devices])} may not work as usual "
            f"({service_names(list(incident.services))}). There's nothing you need to do."
        )
        return text, [fewer("maintenance", "Stop maintenance notices")]


class ActionNotifyRenewal(ProactiveAction):
    topic = "renewal"

    def name(self) -> str:
        return "action_notify_renewal"

    def compose(
        self, session: Session, customer: Customer, row: Outreach
    ) -> tuple[str, Buttons] | None:
        subscription = owned(session, customer, Subscription, row.payload.get("subscription_id"))
        if (
            subscription is None
            or subscription.status is SubscriptionStatus.CANCELLED
            or subscription.renews_at is None
            or subscription.renews_at <= datetime.now(UTC)
        ):
            return None
        method = subscription.payment_method
        charged = f", charged to your {method.label()}" if method else ""
        text = (
            f"{first_name(customer)}, your Lumen Cloud {subscription.plan.title()} plan renews on "
            f"{local_day(subscription.renews_at, customer.timezone)} for "
            f"{money(subscription.price, subscription.currency)}{charged}. "
            "Nothing to do if that's fine."
        )
        return text, [
            {"title": "My subscription", "payload": "/subscription_status"},
            {"title": "Change payment method", "payload": "/update_payment_method"},
            {"title": "Cancel the renewal", "payload": "/cancel_subscription"},
            fewer("renewal", "No renewal reminders"),
        ]


class ActionNotifyPayment(ProactiveAction):
    topic = "payment"

    def name(self) -> str:
        return "action_notify_payment"

    def compose(
        self, session: Session, customer: Customer, row: Outreach
    ) -> tuple[str, Buttons] | None:
        invoice = owned(session, customer, Invoice, row.payload.get("invoice_number"))
        if invoice is None or invoice.status is not InvoiceStatus.OPEN:
            return None  # paid in the meantime, or voided
        payment = session.scalar(
            select(Payment).where(
                Payment.invoice_number == invoice.number,
                Payment.id == row.payload.get("payment_id"),
            )
        )
        why = f" ({humanize(payment.failure_reason)})" if payment and payment.failure_reason else ""
        method = payment.payment_method if payment else None
        source = f" from your {method.label()}" if method else ""
        keep = (
            " Your Lumen Cloud features keep working for now; please update your payment "
            "method so your plan doesn't lapse."
            if invoice.subscription_id
            else " Please update your payment method, or talk to us if something looks wrong."
        )
        text = (
            f"{first_name(customer)}, we couldn't take the payment of "
            f"{money(invoice.amount, invoice.currency)} for invoice {invoice.number}{why}"
            f"{source}.{keep}"
        )
        return text, [
            {"title": "Update payment method", "payload": "/update_payment_method"},
            {"title": "Talk to a person", "payload": "/contact_human_agent"},
        ]


class ActionNotifyTicketFollowup(ProactiveAction):
    topic = "ticket_followup"

    def name(self) -> str:
        return "action_notify_ticket_followup"

    def compose(
        self, session: Session, customer: Customer, row: Outreach
    ) -> tuple[str, Buttons] | None:
        ticket = owned(session, customer, SupportTicket, row.payload.get("ticket_id"))
        if ticket is None or ticket.status is not TicketStatus.CLOSED or ticket.closed_at is None:
            return None
        text = (
            f"Hi {first_name(customer)}, we closed your support ticket #{ticket.id} "
            f'"{ticket.subject}" on {local_day(ticket.closed_at, customer.timezone)}. '
            "Is everything working now?"
        )
        return text, [
            {"title": "Yes, all good", "payload": "/affirm"},
            {"title": "No, it's still broken", "payload": "/deny"},
        ]


class ActionNotifySecurity(ProactiveAction):
    topic = "security"

    def name(self) -> str:
        return "action_notify_security"

    def compose(
        self, session: Session, customer: Customer, row: Outreach
    ) -> tuple[str, Buttons] | None:
        message = str(row.payload.get("message") or "").strip()
        if not message:
            return None
        try:
            when = f" ({local_clock(datetime.fromisoformat(row.payload['at']), customer.timezone)})"
        except (KeyError, TypeError, ValueError):
            when = ""
        text = (
            f"Security notice for your Lumen account, {first_name(customer)}: {message}{when}. "
            "If this wasn't you, tell us straight away."
        )
        return text, [{"title": "That wasn't me", "payload": "/contact_human_agent"}]


# -- the conversation goes on: answers to a proactive question ------------------------


def answered_outreach(
    session: Session, customer: Customer, tracker: Tracker, topic: str
) -> Outreach | None:
    """The latest message of `topic` this conversation got, if recent enough to answer."""
    return session.scalar(
        select(Outreach)
        .where(
            Outreach.customer_id == customer.id,
            Outreach.sender_id == tracker.sender_id,
            Outreach.topic == topic,
            Outreach.delivered_at >= datetime.now(UTC) - FOLLOW_UP_WINDOW,
        )
        .order_by(Outreach.delivered_at.desc())
        .limit(1)
    )


class ActionSetupWalkthrough(CustomerAction):
    """'Yes, show me the steps' after a setup tip: every step of their devices."""

    def name(self) -> str:
        return "action_setup_walkthrough"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        tip = answered_outreach(session, customer, tracker, "setup_tips")
        order = owned(session, customer, Order, tip.payload.get("order_number")) if tip else None
        products = [line.product for line in order.lines] if order else []
        if not products:
            dispatcher.utter_message(
                text="Which device would you like to set up? Tell me its name, e.g. "
                '"how do I set up my thermostat".'
            )
            return []
        for product in products:
            dispatcher.utter_message(
                text=f"Setting up your {product.name}:\n{product.setup_guide}\n"
                f"Full guide with pictures: {product.setup_guide_url}"
            )
        dispatcher.utter_message(
            text="Let me know how it goes.",
            buttons=[
                {"title": "It works, thanks!", "payload": "/thank"},
                {"title": "I'm stuck", "payload": "/contact_human_agent"},
            ],
        )
        return []


class ActionSetupTipsLater(CustomerAction):
    """'No thanks' after a setup tip: where the guide is, for later."""

    def name(self) -> str:
        return "action_setup_tips_later"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        tip = answered_outreach(session, customer, tracker, "setup_tips")
        order = owned(session, customer, Order, tip.payload.get("order_number")) if tip else None
        lines = order.lines if order else []
        links = [f"{line.product.name}: {line.product.setup_guide_url}" for line in lines]
        text = "No problem. If you need it later, just ask me how to set up your device."
        if links:
            text += " The guides are here:\n" + "\n".join(links)
        dispatcher.utter_message(text=text)
        return []


class ActionTicketFollowupResolved(CustomerAction):
    """'Yes, all good' after a ticket follow-up."""

    def name(self) -> str:
        return "action_ticket_followup_resolved"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        dispatcher.utter_message(
            text=f"Great, glad it's sorted, {first_name(customer)}! "
            "If anything else comes up, I'm right here."
        )
        return []


class ActionTicketFollowupReopen(CustomerAction):
    """'No, it's still broken' after a ticket follow-up: the ticket really reopens."""

    def name(self) -> str:
        return "action_ticket_followup_reopen"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        followup = answered_outreach(session, customer, tracker, "ticket_followup")
        ticket = (
            owned(session, customer, SupportTicket, followup.payload.get("ticket_id"))
            if followup
            else None
        )
        if ticket is None:
            dispatcher.utter_message(
                text="Sorry to hear that. Tell me what's wrong, or ask for a person and "
                "our team will pick it up.",
                buttons=[{"title": "Talk to a person", "payload": "/contact_human_agent"}],
            )
            return []
        if ticket.status is TicketStatus.CLOSED:
            ticket.status = TicketStatus.OPEN
            ticket.closed_at = None
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            note = f"Reopened by the customer from the follow-up message on {stamp}: not fixed."
            ticket.summary = f"{ticket.summary}\n{note}".strip()
            logger.info("ticket %s reopened from its follow-up", ticket.id)
        dispatcher.utter_message(
            text=f'I\'ve reopened ticket #{ticket.id} "{ticket.subject}". A person from our '
            "team will get back to you within one business day. Anything you'd like me to "
            "add for them?"
        )
        return []


# Topic -> the action its EXTERNAL_<topic> rule runs (data/rules/proactive.yml).
NOTIFY_ACTIONS: dict[str, str] = {
    action.topic: action.name()
    for action in (
        ActionNotifyShipping(),
        ActionNotifySetupTips(),
        ActionNotifyWelcome(),
        ActionNotifyOutage(),
        ActionNotifyMaintenance(),
        ActionNotifyRenewal(),
        ActionNotifyPayment(),
        ActionNotifyTicketFollowup(),
        ActionNotifySecurity(),
    )
}

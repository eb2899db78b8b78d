"""Billing: failed and duplicate payments, payment methods, invoices and cancellation fees."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.base import CustomerAction, EventList
from actions.formatting import (
    humanize,
    local_day,
    looks_like_card_number,
    money,
    parse_invoice_number,
    parse_order_number,
)
from actions.forms import candidate_orders
from actions.orders import CHANGEABLE_STATES, HANDOFF_BUTTON, RETURN_WINDOW, order_items
from actions.policy import PolicyAnswer
from bot.db.models import (
    Customer,
    Invoice,
    InvoiceStatus,
    Order,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Subscription,
    SubscriptionStatus,
)
from bot.identity.ownership import find_owned

# How far back "my payment failed" and "I was charged twice" look.
PAYMENT_LOOKBACK = timedelta(days=90)
UPDATE_METHOD_BUTTON = {"title": "Update payment method", "payload": "/update_payment_method"}
# What to do about a failed payment, by the processor's failure code.
FAILURE_ADVICE = {
    "card_declined": "utter_payment_failed_declined",
    "expired_card": "utter_payment_failed_expired",
    "insufficient_funds": "utter_payment_failed_declined",
    "authentication_required": "utter_payment_failed_authentication",
}


def invoice_subject(invoice: Invoice) -> str:
    if invoice.order_number is not None:
        return f"order {invoice.order_number}"
    # Invoices without an order are the monthly Lumen Cloud ones.
    return "your Lumen Cloud plan"


def failure_code(reason: str | None) -> str:
    """'card_declined: insufficient funds' -> 'card_declined'."""
    return (reason or "").split(":", 1)[0].strip()


def failure_words(reason: str | None) -> str:
    code, _, detail = (reason or "payment failed").partition(":")
    detail = detail.strip()
    return f"{humanize(code.strip())} ({detail})" if detail else humanize(code.strip())


def method_expired(method: PaymentMethod, now: datetime) -> bool:
    """Cards expire at the end of their month: '2026-11' is still good in November 2026."""
    if not method.expires:
        return False
    return method.expires < f"{now.year:04d}-{now.month:02d}"


def recent_payments(session: Session, customer: Customer, now: datetime) -> list[Payment]:
    return list(
        session.scalars(
            select(Payment)
            .join(Invoice)
            .where(Invoice.customer_id == customer.id, Payment.at >= now - PAYMENT_LOOKBACK)
            .order_by(Payment.at)
        )
    )


def duplicate_charges(payments: list[Payment]) -> dict[str, list[Payment]]:
    """Invoices that were successfully charged more than once."""
    charges: dict[str, list[Payment]] = defaultdict(list)
    for payment in payments:
        if payment.status is PaymentStatus.SUCCEEDED and payment.amount > 0:
            charges[payment.invoice_number].append(payment)
    return {number: paid for number, paid in charges.items() if len(paid) > 1}


class ActionPaymentIssue(CustomerAction):
    """Failed payments with their reason and what to do, and charges taken twice."""

    def name(self) -> str:
        return "action_payment_issue"

    def answer_anonymous(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        dispatcher.utter_message(response="utter_payment_issue_general")
        dispatcher.utter_message(response="utter_sign_in_needed")
        return []

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        now = datetime.now(UTC)
        payments = recent_payments(session, customer, now)
        tz = customer.timezone
        failed = [
            p
            for p in payments
            if p.status is PaymentStatus.FAILED and p.invoice.status is InvoiceStatus.OPEN
        ]
        advice: list[str] = []
        for payment in failed:
            invoice = payment.invoice
            method = payment.payment_method.label() if payment.payment_method else "your card"
            dispatcher.utter_message(
                text=f"The payment of {money(payment.amount, invoice.currency)} for "
                f"{invoice_subject(invoice)} (invoice {invoice.number}) with your {method} "
                f"failed on {local_day(payment.at, tz)}: {failure_words(payment.failure_reason)}."
            )
            response = FAILURE_ADVICE.get(
                failure_code(payment.failure_reason), "utter_payment_failed_other"
            )
            if response not in advice:
                advice.append(response)
        for response in advice:
            dispatcher.utter_message(
                response=response, buttons=[UPDATE_METHOD_BUTTON, HANDOFF_BUTTON]
            )
        duplicates = duplicate_charges(payments)
        for number, charges in duplicates.items():
            dates = " and ".join(local_day(p.at, tz) for p in charges)
            invoice = charges[0].invoice
            dispatcher.utter_message(
                text=f"Invoice {number} ({invoice_subject(invoice)}) was charged "
                f"{len(charges)} times, {money(charges[0].amount, invoice.currency)} each, "
                f"on {dates}."
            )
        if duplicates:
            dispatcher.utter_message(response="utter_duplicate_charge", buttons=[HANDOFF_BUTTON])
        if failed or duplicates:
            return []
        succeeded = [p for p in payments if p.status is PaymentStatus.SUCCEEDED]
        if succeeded:
            last = succeeded[-1]
            dispatcher.utter_message(
                response="utter_no_payment_problems_last",
                amount=money(last.amount, last.invoice.currency),
                date=local_day(last.at, tz),
                invoice_number=last.invoice_number,
                buttons=[HANDOFF_BUTTON],
            )
        else:
            dispatcher.utter_message(response="utter_no_payment_problems", buttons=[HANDOFF_BUTTON])
        return []


def methods_on_file(session: Session, customer: Customer) -> list[PaymentMethod]:
    return list(
        session.scalars(
            select(PaymentMethod)
            .where(PaymentMethod.customer_id == customer.id)
            .order_by(PaymentMethod.is_default.desc(), PaymentMethod.id)
        )
    )


def describe_methods(methods: list[PaymentMethod], now: datetime) -> str:
    parts = []
    for method in methods:
        notes = [note for note, on in (("default", method.is_default),) if on]
        if method_expired(method, now):
            notes.append("expired")
        parts.append(method.label() + (f" ({', '.join(notes)})" if notes else ""))
    return "; ".join(parts)


class ActionCheckPaymentMethods(PolicyAnswer):
    policy_response = "utter_payment_methods_accepted"

    def name(self) -> str:
        return "action_check_payment_methods"

    def add_for_customer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        methods = methods_on_file(session, customer)
        if not methods:
            dispatcher.utter_message(
                response="utter_no_methods_on_file", buttons=[UPDATE_METHOD_BUTTON]
            )
        else:
            dispatcher.utter_message(
                response="utter_methods_on_file",
                methods=describe_methods(methods, datetime.now(UTC)),
                buttons=[UPDATE_METHOD_BUTTON],
            )
        return []


class ActionUpdatePaymentMethod(PolicyAnswer):
    """How to change the card on file; card details themselves never go through chat."""

    policy_response = "utter_update_payment_method"

    def name(self) -> str:
        return "action_update_payment_method"

    def _run_sync(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        if looks_like_card_number(str(tracker.latest_message.get("text") or "")):
            dispatcher.utter_message(response="utter_no_card_numbers")
        return super()._run_sync(dispatcher, tracker)

    def add_for_customer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        now = datetime.now(UTC)
        methods = methods_on_file(session, customer)
        if methods:
            dispatcher.utter_message(
                response="utter_methods_on_file", methods=describe_methods(methods, now)
            )
        overdue = session.scalars(
            select(Invoice).where(
                Invoice.customer_id == customer.id, Invoice.status == InvoiceStatus.OPEN
            )
        ).all()
        for invoice in overdue:
            dispatcher.utter_message(
                response="utter_open_invoice_retry",
                invoice_number=invoice.number,
                amount=money(invoice.amount, invoice.currency),
            )
        return []


def describe_invoice(invoice: Invoice, timezone: str) -> str:
    return (
        f"{invoice.number} — {local_day(invoice.issued_at, timezone)} — "
        f"{money(invoice.amount, invoice.currency)} — {humanize(invoice.status.value)} "
        f"({invoice_subject(invoice)})"
    )


def invoice_button(invoice: Invoice) -> dict[str, str]:
    return {
        "title": f"PDF of {invoice.number}",
        "payload": f'/get_invoice{{"invoice_number":"{invoice.number}"}}',
    }


class ActionCheckInvoice(CustomerAction):
    """The customer's recent invoices with amounts and states."""

    def name(self) -> str:
        return "action_check_invoice"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        invoices = list(
            session.scalars(
                select(Invoice)
                .where(Invoice.customer_id == customer.id)
                .order_by(Invoice.issued_at.desc(), Invoice.number.desc())
                .limit(5)
            )
        )
        if not invoices:
            dispatcher.utter_message(response="utter_no_invoices")
            return []
        lines = "\n".join(describe_invoice(i, customer.timezone) for i in invoices)
        dispatcher.utter_message(
            text=f"Your recent invoices:\n{lines}",
            buttons=[invoice_button(i) for i in invoices[:3]],
        )
        return []


class ActionGetInvoice(CustomerAction):
    """The PDF link of one invoice: the one named, the one of a named order, or the latest."""

    def name(self) -> str:
        return "action_get_invoice"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        raw_invoice = next(tracker.get_latest_entity_values("invoice_number"), None)
        raw_order = next(tracker.get_latest_entity_values("order_number"), None)
        invoice: Invoice | None
        if raw_invoice is not None:
            number = parse_invoice_number(raw_invoice)
            invoice = find_owned(session, customer, Invoice, number) if number else None
            if invoice is None:
                dispatcher.utter_message(
                    response="utter_invoice_not_found", invoice_number=str(raw_invoice)[:40]
                )
                return []
        elif raw_order is not None:
            order_number = parse_order_number(raw_order)
            order = find_owned(session, customer, Order, order_number) if order_number else None
            invoice = (
                session.scalars(
                    select(Invoice)
                    .where(Invoice.order_number == order.number)
                    .order_by(Invoice.issued_at.desc())
                ).first()
                if order
                else None
            )
            if invoice is None:
                dispatcher.utter_message(response="utter_order_not_found", order_number=raw_order)
                return []
        else:
            invoice = session.scalars(
                select(Invoice)
                .where(Invoice.customer_id == customer.id)
                .order_by(Invoice.issued_at.desc(), Invoice.number.desc())
            ).first()
            if invoice is None:
                dispatcher.utter_message(response="utter_no_invoices")
                return []
        dispatcher.utter_message(
            response="utter_invoice_link",
            invoice_number=invoice.number,
            details=describe_invoice(invoice, customer.timezone),
            url=invoice.pdf_url,
        )
        return []


class ActionCancellationFee(PolicyAnswer):
    policy_response = "utter_cancellation_fee"

    def name(self) -> str:
        return "action_cancellation_fee"

    def policy_values(self) -> dict[str, Any]:
        return {"return_days": RETURN_WINDOW.days}

    def add_for_customer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        for order in candidate_orders(session, customer, CHANGEABLE_STATES):
            dispatcher.utter_message(
                response="utter_order_cancel_free",
                order_number=str(order.number),
                items=order_items(order),
                buttons=[
                    {
                        "title": f"Cancel order {order.number}",
                        "payload": f'/cancel_order{{"order_number":"{order.number}"}}',
                    }
                ],
            )
        subscription = session.scalars(
            select(Subscription).where(
                Subscription.customer_id == customer.id,
                Subscription.status.in_((SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)),
            )
        ).first()
        if subscription is not None and subscription.renews_at is not None:
            dispatcher.utter_message(
                response="utter_plan_cancel_free",
                plan=subscription.plan.title(),
                until=local_day(subscription.renews_at, customer.timezone),
            )
        return []

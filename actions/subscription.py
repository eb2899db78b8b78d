"""The Lumen Cloud subscription: plan, price, renewal and payment method; cancelling it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from actions.base import CustomerAction, EventList
from actions.billing import UPDATE_METHOD_BUTTON, failure_words
from actions.formatting import humanize, local_day, money
from actions.forms import CustomerFormValidation, FormTurn, stop_form
from actions.orders import HANDOFF_BUTTON, YES_NO
from bot.db.catalog import PLAN_PRICES
from bot.db.models import (
    Customer,
    Invoice,
    InvoiceStatus,
    PaymentStatus,
    Subscription,
    SubscriptionStatus,
)

LIVE_STATES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


def plans_on_offer() -> str:
    return ", ".join(f"{plan.title()} €{price}/month" for plan, price in PLAN_PRICES.items())


def live_subscription(session: Session, customer: Customer) -> Subscription | None:
    return session.scalars(
        select(Subscription)
        .where(Subscription.customer_id == customer.id, Subscription.status.in_(LIVE_STATES))
        .order_by(Subscription.started_at.desc())
    ).first()


def latest_subscription(session: Session, customer: Customer) -> Subscription | None:
    return (
        live_subscription(session, customer)
        or session.scalars(
            select(Subscription)
            .where(Subscription.customer_id == customer.id)
            .order_by(Subscription.started_at.desc())
        ).first()
    )


class ActionSubscriptionStatus(CustomerAction):
    """Plan, state, price, renewal date in the customer's zone, and how it is paid."""

    def name(self) -> str:
        return "action_subscription_status"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        subscription = latest_subscription(session, customer)
        tz = customer.timezone
        if subscription is None:
            dispatcher.utter_message(response="utter_no_subscription", plans=plans_on_offer())
            return []
        plan = subscription.plan.title()
        price = money(subscription.price, subscription.currency)
        method = subscription.payment_method
        paid_with = f" with your {method.label()}" if method else ""
        renews = local_day(subscription.renews_at, tz) if subscription.renews_at else None
        if subscription.status is SubscriptionStatus.CANCELLED:
            cancelled = (
                local_day(subscription.cancelled_at, tz) if subscription.cancelled_at else None
            )
            text = f"Your Lumen Cloud {plan} plan is cancelled" + (
                f" (since {cancelled})" if cancelled else ""
            )
            if subscription.renews_at and subscription.renews_at > datetime.now(UTC):
                text += f"; its features stay on until {renews} and you won't be charged again."
            else:
                text += "."
            dispatcher.utter_message(text=text)
            return []
        state = humanize(subscription.status.value)
        text = f"Your Lumen Cloud {plan} plan is {state}: {price} a month"
        text += f", renewing on {renews}{paid_with}." if renews else f"{paid_with}."
        buttons = [{"title": "Cancel my plan", "payload": "/cancel_subscription"}]
        dispatcher.utter_message(text=text)
        if subscription.status is SubscriptionStatus.PAST_DUE:
            self._explain_past_due(session, subscription, tz, dispatcher)
            buttons = [UPDATE_METHOD_BUTTON, HANDOFF_BUTTON]
        dispatcher.utter_message(response="utter_anything_else", buttons=buttons)
        return []

    @staticmethod
    def _explain_past_due(
        session: Session, subscription: Subscription, tz: str, dispatcher: CollectingDispatcher
    ) -> None:
        open_invoices = session.scalars(
            select(Invoice).where(
                Invoice.customer_id == subscription.customer_id,
                Invoice.order_number.is_(None),
                Invoice.status == InvoiceStatus.OPEN,
            )
        ).all()
        for invoice in open_invoices:
            failed = [p for p in invoice.payments if p.status is PaymentStatus.FAILED]
            if failed:
                last = failed[-1]
                dispatcher.utter_message(
                    text=f"The last payment of {money(invoice.amount, invoice.currency)} "
                    f"(invoice {invoice.number}) failed on {local_day(last.at, tz)}: "
                    f"{failure_words(last.failure_reason)}."
                )
        dispatcher.utter_message(response="utter_subscription_past_due")


class ValidateCancelSubscriptionForm(CustomerFormValidation):
    form = "cancel_subscription_form"
    required = ("confirmed",)

    def start(self, turn: FormTurn) -> dict[str, Any]:
        if live_subscription(turn.session, turn.customer) is None:
            turn.dispatcher.utter_message(
                response="utter_no_active_subscription", plans=plans_on_offer()
            )
            return stop_form()
        return {}


class ActionAskCancelSubscription(CustomerAction):
    """What cancelling means for this customer's plan, before they say yes."""

    def name(self) -> str:
        return "action_ask_cancel_subscription_form_confirmed"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        subscription = live_subscription(session, customer)
        if subscription is None:
            return []
        until = (
            local_day(subscription.renews_at, customer.timezone)
            if subscription.renews_at
            else "the end of the period you paid for"
        )
        dispatcher.utter_message(
            response="utter_ask_cancel_subscription",
            plan=subscription.plan.title(),
            price=money(subscription.price, subscription.currency),
            until=until,
            buttons=YES_NO,
        )
        return []


class ActionCancelSubscription(CustomerAction):
    """Cancel the plan once the customer confirmed; it runs to the end of the paid period."""

    def name(self) -> str:
        return "action_cancel_subscription"

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
        subscription = live_subscription(session, customer)
        if subscription is None or confirmed is None:
            return events
        plan = subscription.plan.title()
        if confirmed is not True:
            dispatcher.utter_message(response="utter_subscription_kept", plan=plan)
            return events
        now = datetime.now(UTC)
        session.execute(
            update(Subscription)
            .where(Subscription.id == subscription.id, Subscription.status.in_(LIVE_STATES))
            .values(status=SubscriptionStatus.CANCELLED, cancelled_at=now)
            .execution_options(synchronize_session=False)
        )
        session.refresh(subscription)
        until = subscription.renews_at
        if until is not None and until > now:
            dispatcher.utter_message(
                response="utter_subscription_cancelled",
                plan=plan,
                until=local_day(until, customer.timezone),
            )
        else:
            dispatcher.utter_message(response="utter_subscription_cancelled_now", plan=plan)
        return events

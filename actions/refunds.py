"""Refunds and returns: requests for delivered orders, their status, and the refund policy."""

from __future__ import annotations

import difflib
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.base import CustomerAction, EventList
from actions.formatting import humanize, local_day, money, parse_order_number
from actions.forms import (
    AskForOrderAction,
    CustomerFormValidation,
    FormTurn,
    owned_order,
    stop_form,
)
from actions.orders import (
    CHANGEABLE_STATES,
    HANDOFF_BUTTON,
    ON_THE_WAY_STATES,
    RETURN_WINDOW,
    amount_paid,
    order_from_slot,
    order_items,
)
from actions.policy import PolicyAnswer
from bot.db.models import Customer, Order, OrderLine, OrderStatus, Refund, RefundStatus
from bot.identity.ownership import find_owned

OPEN_REFUND_STATES = (RefundStatus.REQUESTED, RefundStatus.APPROVED)
STATUS_MEANING = {
    RefundStatus.REQUESTED: "utter_refund_meaning_requested",
    RefundStatus.APPROVED: "utter_refund_meaning_approved",
    RefundStatus.PAID: "utter_refund_meaning_paid",
    RefundStatus.REJECTED: "utter_refund_meaning_rejected",
}


def delivered_at(order: Order) -> datetime | None:
    shipment = order.shipments[-1] if order.shipments else None
    return shipment.delivered_at if shipment else None


def return_deadline(order: Order) -> datetime | None:
    delivered = delivered_at(order)
    return delivered + RETURN_WINDOW if delivered else None


def open_refund(order: Order) -> Refund | None:
    return next((r for r in order.refunds if r.status in OPEN_REFUND_STATES), None)


def refund_blocker(
    order: Order, now: datetime, timezone: str
) -> tuple[str, dict[str, Any], list[dict[str, str]]] | None:
    """Why this order cannot get a refund or return now, as (response, values, buttons)."""
    values: dict[str, Any] = {
        "order_number": str(order.number),
        "status": humanize(order.status.value),
        "return_days": RETURN_WINDOW.days,
    }
    payload = f'{{"order_number":"{order.number}"}}'
    if order.status in CHANGEABLE_STATES:
        cancel = {"title": "Cancel it instead", "payload": f"/cancel_order{payload}"}
        return "utter_refund_cancel_instead", values, [cancel]
    if order.status in ON_THE_WAY_STATES:
        track = {"title": "Track it", "payload": f"/track_order{payload}"}
        return "utter_refund_not_delivered_yet", values, [track]
    if order.status is OrderStatus.CANCELLED:
        track = {"title": "Refund status", "payload": f"/track_refund{payload}"}
        return "utter_refund_cancelled_order", values, [track]
    if order.status is OrderStatus.REFUNDED:
        track = {"title": "Refund status", "payload": f"/track_refund{payload}"}
        return "utter_refund_already_refunded", values, [track]
    pending = open_refund(order)
    if pending is not None:
        values["requested_on"] = local_day(pending.requested_at, timezone)
        values["refund_status"] = humanize(pending.status.value)
        track = {"title": "Refund status", "payload": f"/track_refund{payload}"}
        return "utter_refund_already_requested", values, [track, HANDOFF_BUTTON]
    deadline = return_deadline(order)
    if deadline is None or deadline < now:
        delivered = delivered_at(order)
        values["delivered_on"] = local_day(delivered, timezone) if delivered else "a while ago"
        return "utter_refund_window_passed", values, [HANDOFF_BUTTON]
    return None


def returnable_orders(session: Session, customer: Customer, now: datetime) -> list[Order]:
    delivered = session.scalars(
        select(Order)
        .where(Order.customer_id == customer.id, Order.status == OrderStatus.DELIVERED)
        .order_by(Order.placed_at.desc())
    )
    return [o for o in delivered if refund_blocker(o, now, customer.timezone) is None]


class ReturnableOrderForm(CustomerFormValidation):
    """A form about a delivered order still inside the return window."""

    def start(self, turn: FormTurn) -> dict[str, Any]:
        if turn.said_now("order_number"):
            return {}
        orders = returnable_orders(turn.session, turn.customer, datetime.now(UTC))
        if not orders:
            turn.dispatcher.utter_message(
                response="utter_nothing_to_refund", return_days=RETURN_WINDOW.days
            )
            return stop_form()
        if len(orders) == 1:
            return {"order_number": str(orders[0].number), **self.prefill(orders[0])}
        return {}

    def prefill(self, order: Order) -> dict[str, Any]:
        return {}

    def validate_order_number(self, value: Any, turn: FormTurn) -> dict[str, Any]:
        order = owned_order(turn, value)
        if order is None:
            return {"order_number": None}
        blocker = refund_blocker(order, datetime.now(UTC), turn.customer.timezone)
        if blocker is not None:
            response, values, buttons = blocker
            turn.dispatcher.utter_message(response=response, buttons=buttons, **values)
            return stop_form({"order_number": None})
        return {"order_number": str(order.number), **self.prefill(order)}


class ValidateRefundForm(ReturnableOrderForm):
    form = "refund_form"
    required = ("order_number", "reason")


class ActionAskRefundOrderNumber(AskForOrderAction):
    form = "refund_form"
    states = (OrderStatus.DELIVERED,)


class ActionRequestRefund(CustomerAction):
    """Record a refund request for a delivered order, for the team to review."""

    def name(self) -> str:
        return "action_request_refund"

    def answer_anonymous(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        return [SlotSet("reason", None)]

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        events: EventList = [SlotSet("reason", None)]
        order = order_from_slot(session, customer, tracker)
        reason = tracker.get_slot("reason")
        if order is None or not isinstance(reason, str) or not reason:
            return events
        if not self._still_refundable(order, customer, dispatcher):
            return events
        amount = amount_paid(session, order)
        refund = Refund(
            order_number=order.number,
            amount=amount,
            status=RefundStatus.REQUESTED,
            reason=reason,
            requested_at=datetime.now(UTC),
        )
        session.add(refund)
        session.flush()
        dispatcher.utter_message(
            response="utter_refund_requested",
            order_number=str(order.number),
            amount=money(amount, order.currency),
            reference=f"R-{refund.id}",
        )
        return events

    @staticmethod
    def _still_refundable(
        order: Order, customer: Customer, dispatcher: CollectingDispatcher
    ) -> bool:
        # The form checked this a moment ago; a request made meanwhile must not double up.
        blocker = refund_blocker(order, datetime.now(UTC), customer.timezone)
        if blocker is None:
            return True
        response, values, buttons = blocker
        dispatcher.utter_message(response=response, buttons=buttons, **values)
        return False


def product_buttons(order: Order) -> list[dict[str, str]]:
    seen: dict[str, str] = {}
    for line in order.lines:
        seen.setdefault(line.product.slug, line.product.name)
    return [
        {"title": name, "payload": f'/inform{{"product":"{slug}"}}'} for slug, name in seen.items()
    ]


def matching_line(order: Order, value: object) -> OrderLine | None:
    """The order line a customer means by a product slug, name or a near miss of one."""
    text = " ".join(str(value or "").lower().replace("_", " ").split())
    if not text or len(text) > 120:
        return None
    for line in order.lines:
        names = (line.product.slug.replace("_", " "), line.product.name.lower())
        if text in names or any(name in text for name in names):
            return line
    by_name = {line.product.name.lower(): line for line in order.lines}
    by_name.update({line.product.slug.replace("_", " "): line for line in order.lines})
    close = difflib.get_close_matches(text, list(by_name), n=1, cutoff=0.75)
    return by_name[close[0]] if close else None


class ValidateReturnForm(ReturnableOrderForm):
    form = "return_form"
    required = ("order_number", "product", "reason")

    def prefill(self, order: Order) -> dict[str, Any]:
        products = {line.product.slug for line in order.lines}
        return {"product": products.pop()} if len(products) == 1 else {}

    def validate_product(self, value: Any, turn: FormTurn) -> dict[str, Any]:
        number = parse_order_number(turn.tracker.get_slot("order_number"))
        order = find_owned(turn.session, turn.customer, Order, number) if number else None
        if order is None:
            # The order is asked first; a product named before it waits until then.
            return {"product": None}
        line = matching_line(order, value)
        if line is None:
            turn.dispatcher.utter_message(
                response="utter_product_not_in_order",
                order_number=str(order.number),
                buttons=product_buttons(order),
            )
            return {"product": None}
        return {"product": line.product.slug}


class ActionAskReturnOrderNumber(AskForOrderAction):
    form = "return_form"
    states = (OrderStatus.DELIVERED,)


class ActionAskReturnProduct(CustomerAction):
    """Which device from the order is going back, as buttons."""

    def name(self) -> str:
        return "action_ask_return_form_product"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        order = order_from_slot(session, customer, tracker)
        buttons = product_buttons(order) if order else []
        dispatcher.utter_message(response="utter_ask_return_product", buttons=buttons)
        return []


class ActionRequestReturn(CustomerAction):
    """Record the return of one device from a delivered order, refunded once it arrives."""

    def name(self) -> str:
        return "action_request_return"

    def answer_anonymous(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        return [SlotSet("reason", None), SlotSet("product", None)]

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        events: EventList = [SlotSet("reason", None), SlotSet("product", None)]
        order = order_from_slot(session, customer, tracker)
        reason = tracker.get_slot("reason")
        if order is None or not isinstance(reason, str) or not reason:
            return events
        line = matching_line(order, tracker.get_slot("product"))
        if line is None:
            return events
        if not ActionRequestRefund._still_refundable(order, customer, dispatcher):
            return events
        amount = line.unit_price * line.quantity
        refund = Refund(
            order_number=order.number,
            amount=amount,
            status=RefundStatus.REQUESTED,
            reason=f"Return of {line.quantity} × {line.product.name}: {reason}"[:300],
            requested_at=datetime.now(UTC),
        )
        session.add(refund)
        session.flush()
        dispatcher.utter_message(
            response="utter_return_requested",
            order_number=str(order.number),
            product=line.product.name,
            amount=money(amount, order.currency),
            reference=f"R-{refund.id}",
        )
        return events


class ActionTrackRefund(CustomerAction):
    """Where a customer's refunds stand, from the refund rows of their orders."""

    def name(self) -> str:
        return "action_track_refund"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        raw = next(tracker.get_latest_entity_values("order_number"), None)
        query = (
            select(Refund)
            .join(Order)
            .where(Order.customer_id == customer.id)
            .order_by(Refund.requested_at.desc())
        )
        if raw is not None:
            number = parse_order_number(raw)
            order = find_owned(session, customer, Order, number) if number else None
            if order is None:
                dispatcher.utter_message(response="utter_order_not_found", order_number=raw)
                return []
            query = query.where(Refund.order_number == order.number)
        refunds = list(session.scalars(query.limit(5)))
        if not refunds:
            response = "utter_no_refunds_for_order" if raw is not None else "utter_no_refunds"
            dispatcher.utter_message(
                response=response,
                order_number=str(raw or ""),
                buttons=[{"title": "Request a refund", "payload": "/get_refund"}],
            )
            return []
        for refund in refunds:
            dispatcher.utter_message(text=self._describe(refund, customer.timezone))
        for status in sorted({r.status for r in refunds}, key=list(RefundStatus).index):
            dispatcher.utter_message(response=STATUS_MEANING[status])
        return []

    @staticmethod
    def _describe(refund: Refund, timezone: str) -> str:
        amount = money(refund.amount, refund.order.currency)
        text = (
            f"Refund R-{refund.id} for order {refund.order_number}: {amount}, "
            f"requested on {local_day(refund.requested_at, timezone)}, "
            f"{humanize(refund.status.value)}"
        )
        if refund.paid_at is not None:
            text += f" (paid on {local_day(refund.paid_at, timezone)})"
        if refund.reason:
            text += f". Reason: {refund.reason}"
        return text + "."


class ActionRefundPolicy(PolicyAnswer):
    policy_response = "utter_refund_policy"

    def name(self) -> str:
        return "action_refund_policy"

    def policy_values(self) -> dict[str, Any]:
        return {"return_days": RETURN_WINDOW.days}

    def add_for_customer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        orders = returnable_orders(session, customer, datetime.now(UTC))[:3]
        for order in orders:
            deadline = return_deadline(order)
            assert deadline is not None  # returnable orders have been delivered
            dispatcher.utter_message(
                text=f"Your order {order.number} ({order_items(order)}) can be returned "
                f"until {local_day(deadline, customer.timezone)}.",
                buttons=[
                    {
                        "title": f"Refund order {order.number}",
                        "payload": f'/get_refund{{"order_number":"{order.number}"}}',
                    }
                ],
            )
        return []

"""Orders and delivery: where is my order, from the order and shipment rows."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.base import CustomerAction, EventList
from actions.formatting import humanize, local_day, parse_order_number
from bot.db.models import Customer, Order, OrderStatus, Shipment
from bot.identity.ownership import find_owned

# Orders a customer is still waiting for, newest first, when they ask without a number.
OPEN_STATES = (
    OrderStatus.PAID,
    OrderStatus.PACKED,
    OrderStatus.SHIPPED,
    OrderStatus.OUT_FOR_DELIVERY,
    OrderStatus.DELAYED,
)


def requested_order_number(tracker: Tracker) -> tuple[int | None, bool]:
    """The order number the customer gave now or earlier, and whether they gave one at all."""
    raw = next(tracker.get_latest_entity_values("order_number"), None)
    if raw is None:
        raw = tracker.get_slot("order_number")
    return parse_order_number(raw), raw is not None


def order_buttons(orders: list[Order]) -> list[dict[str, str]]:
    return [
        {"title": f"Order {o.number}", "payload": f'/track_order{{"order_number":"{o.number}"}}'}
        for o in orders
    ]


def describe_order(order: Order, timezone: str) -> str:
    """The facts a customer asking 'where is my order' wants, in one message."""
    items = ", ".join(f"{line.quantity} × {line.product.name}" for line in order.lines)
    head = f"Order {order.number} ({items}) is {humanize(order.status.value)}."
    shipment: Shipment | None = order.shipments[-1] if order.shipments else None
    if shipment is None:
        if order.status is OrderStatus.CANCELLED:
            return f"{head} Nothing will be shipped or charged for it."
        return f"{head} It has not left our warehouse yet; you'll get tracking once it ships."
    parts = [head, f"Carrier: {shipment.carrier}, tracking number {shipment.tracking_number}."]
    if shipment.delivered_at is not None:
        parts.append(f"Delivered on {local_day(shipment.delivered_at, timezone)}.")
    elif shipment.eta is not None:
        late = " (delayed)" if order.status is OrderStatus.DELAYED else ""
        parts.append(f"Expected delivery{late}: {local_day(shipment.eta, timezone)}.")
    if shipment.events:
        last = shipment.events[-1]
        where = f" at {last.location}" if last.location else ""
        parts.append(f"Latest scan: {humanize(last.status.value)}{where}.")
    return " ".join(parts)


class ActionTrackOrder(CustomerAction):
    """Tell a customer where their order is, from the order and its shipment."""

    def name(self) -> str:
        return "action_track_order"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        number, given = requested_order_number(tracker)
        if given:
            order = find_owned(session, customer, Order, number) if number else None
            if order is None:
                dispatcher.utter_message(
                    response="utter_order_not_found",
                    order_number=next(tracker.get_latest_entity_values("order_number"), "")
                    or tracker.get_slot("order_number"),
                )
                return [SlotSet("order_number", None)]
            dispatcher.utter_message(
                text=describe_order(order, customer.timezone), buttons=self._next_steps(order)
            )
            return [SlotSet("order_number", str(order.number))]

        open_orders = list(
            session.scalars(
                select(Order)
                .where(Order.customer_id == customer.id, Order.status.in_(OPEN_STATES))
                .order_by(Order.placed_at.desc())
            )
        )
        if not open_orders:
            recent = session.scalars(
                select(Order)
                .where(Order.customer_id == customer.id)
                .order_by(Order.placed_at.desc())
                .limit(3)
            ).all()
            dispatcher.utter_message(
                response="utter_no_open_orders", buttons=order_buttons(list(recent))
            )
            return []
        if len(open_orders) == 1:
            order = open_orders[0]
            dispatcher.utter_message(
                text=describe_order(order, customer.timezone), buttons=self._next_steps(order)
            )
            return [SlotSet("order_number", str(order.number))]
        dispatcher.utter_message(response="utter_which_order", buttons=order_buttons(open_orders))
        return []

    @staticmethod
    def _next_steps(order: Order) -> list[dict[str, Any]]:
        buttons = [{"title": "Talk to a person", "payload": "/contact_human_agent"}]
        if order.status in (OrderStatus.PAID, OrderStatus.PACKED):
            buttons.insert(
                0,
                {
                    "title": "Cancel this order",
                    "payload": f'/cancel_order{{"order_number":"{order.number}"}}',
                },
            )
        return buttons

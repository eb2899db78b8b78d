"""Orders and delivery: tracking, cancelling, changing, addresses and delivery policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from actions.base import CustomerAction, EventList
from actions.formatting import humanize, local_day, money, parse_order_number
from actions.forms import (
    SHIPPING_COUNTRIES,
    AskForOrderAction,
    CustomerFormValidation,
    FormTurn,
    candidate_orders,
    order_choice_buttons,
    owned_order,
    stop_form,
)
from actions.policy import PolicyAnswer
from bot.db.models import (
    Address,
    Customer,
    Invoice,
    InvoiceStatus,
    Order,
    OrderStatus,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundStatus,
    Shipment,
)
from bot.identity.ownership import find_owned

# Orders a customer is still waiting for, newest first, when they ask without a number.
OPEN_STATES = (
    OrderStatus.PAID,
    OrderStatus.PACKED,
    OrderStatus.SHIPPED,
    OrderStatus.OUT_FOR_DELIVERY,
    OrderStatus.DELAYED,
)
# Until the parcel leaves the warehouse an order can be cancelled or sent elsewhere.
CHANGEABLE_STATES = (OrderStatus.PAID, OrderStatus.PACKED)
ON_THE_WAY_STATES = (OrderStatus.SHIPPED, OrderStatus.OUT_FOR_DELIVERY, OrderStatus.DELAYED)
# How long after delivery a device can be returned; the policy responses show this number.
RETURN_WINDOW = timedelta(days=30)
ADDRESS_SLOTS = ("address_street", "address_city", "address_postcode", "address_country")
YES_NO = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
HANDOFF_BUTTON = {"title": "Talk to a person", "payload": "/contact_human_agent"}


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


def order_items(order: Order) -> str:
    return ", ".join(f"{line.quantity} × {line.product.name}" for line in order.lines)


def describe_order(order: Order, timezone: str) -> str:
    """The facts a customer asking 'where is my order' wants, in one message."""
    head = f"Order {order.number} ({order_items(order)}) is {humanize(order.status.value)}."
    shipment: Shipment | None = order.shipments[-1] if order.shipments else None
    if order.status is OrderStatus.CANCELLED:
        return f"{head} Nothing will be shipped or charged for it."
    if shipment is None:
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


def explain_unchangeable(order: Order, dispatcher: CollectingDispatcher) -> None:
    """Why an order can no longer be cancelled or changed, and what the customer can do."""
    values = {
        "order_number": str(order.number),
        "status": humanize(order.status.value),
        "return_days": RETURN_WINDOW.days,
    }
    track = {"title": "Track it", "payload": f'/track_order{{"order_number":"{order.number}"}}'}
    if order.status in ON_THE_WAY_STATES:
        dispatcher.utter_message(
            response="utter_too_late_to_change", buttons=[track, HANDOFF_BUTTON], **values
        )
    elif order.status is OrderStatus.DELIVERED:
        ret = {"title": "Return it", "payload": f'/return_item{{"order_number":"{order.number}"}}'}
        dispatcher.utter_message(
            response="utter_delivered_return_instead", buttons=[ret, HANDOFF_BUTTON], **values
        )
    else:
        dispatcher.utter_message(response="utter_order_closed", **values)


def payment_method_of(session: Session, order: Order) -> PaymentMethod | None:
    """The card or account the order was paid with, from its latest successful payment."""
    invoices = session.scalars(select(Invoice).where(Invoice.order_number == order.number))
    payments = [p for i in invoices for p in i.payments if p.status is PaymentStatus.SUCCEEDED]
    payments.sort(key=lambda p: p.at)
    return payments[-1].payment_method if payments else None


def amount_paid(session: Session, order: Order) -> Decimal:
    """What the customer paid for an order and has not had back yet."""
    invoices = session.scalars(select(Invoice).where(Invoice.order_number == order.number))
    paid = sum(
        (
            p.amount
            for i in invoices
            for p in i.payments
            if p.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED)
        ),
        Decimal("0.00"),
    )
    pending = sum(
        (
            r.amount
            for r in order.refunds
            if r.status in (RefundStatus.REQUESTED, RefundStatus.APPROVED)
        ),
        Decimal("0.00"),
    )
    return max(paid - pending, Decimal("0.00"))


def changed_rows(result: object) -> int:
    """How many rows an UPDATE touched."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def order_from_slot(session: Session, customer: Customer, tracker: Tracker) -> Order | None:
    number = parse_order_number(tracker.get_slot("order_number"))
    return find_owned(session, customer, Order, number) if number else None


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

        open_orders = candidate_orders(session, customer, OPEN_STATES, limit=10)
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
        buttons: list[dict[str, Any]] = [HANDOFF_BUTTON]
        if order.status in CHANGEABLE_STATES:
            buttons.insert(
                0,
                {
                    "title": "Cancel this order",
                    "payload": f'/cancel_order{{"order_number":"{order.number}"}}',
                },
            )
        return buttons


class ActionChangeOrder(CustomerAction):
    """What can still change about an order: before shipping its address or the whole order."""

    def name(self) -> str:
        return "action_change_order"

    def answer_anonymous(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        dispatcher.utter_message(
            response="utter_change_order_policy", return_days=RETURN_WINDOW.days
        )
        dispatcher.utter_message(response="utter_sign_in_needed")
        return []

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
                shown = next(tracker.get_latest_entity_values("order_number"), None)
                dispatcher.utter_message(
                    response="utter_order_not_found",
                    order_number=shown or tracker.get_slot("order_number"),
                )
                return [SlotSet("order_number", None)]
        else:
            changeable = candidate_orders(session, customer, CHANGEABLE_STATES)
            if not changeable:
                dispatcher.utter_message(
                    response="utter_change_order_policy", return_days=RETURN_WINDOW.days
                )
                dispatcher.utter_message(
                    response="utter_nothing_to_change", return_days=RETURN_WINDOW.days
                )
                return []
            if len(changeable) > 1:
                dispatcher.utter_message(
                    response="utter_which_order",
                    buttons=order_choice_buttons(changeable, "change_order"),
                )
                return []
            order = changeable[0]
        if order.status not in CHANGEABLE_STATES:
            explain_unchangeable(order, dispatcher)
            return [SlotSet("order_number", str(order.number))]
        payload = f'{{"order_number":"{order.number}"}}'
        dispatcher.utter_message(
            response="utter_order_changeable",
            order_number=str(order.number),
            items=order_items(order),
            buttons=[
                {
                    "title": "Change the delivery address",
                    "payload": f"/change_shipping_address{payload}",
                },
                {"title": "Cancel the order", "payload": f"/cancel_order{payload}"},
                HANDOFF_BUTTON,
            ],
        )
        return [SlotSet("order_number", str(order.number))]


class ChangeableOrderForm(CustomerFormValidation):
    """A form about one order that has not shipped yet: cancelling it or re-addressing it."""

    nothing_response = "utter_nothing_to_change"

    def start(self, turn: FormTurn) -> dict[str, Any]:
        if turn.said_now("order_number"):
            return {}
        orders = candidate_orders(turn.session, turn.customer, CHANGEABLE_STATES)
        if not orders:
            turn.dispatcher.utter_message(
                response=self.nothing_response, return_days=RETURN_WINDOW.days
            )
            return stop_form()
        # One candidate: the question "which order?" would have only one answer.
        return {"order_number": str(orders[0].number)} if len(orders) == 1 else {}

    def validate_order_number(self, value: Any, turn: FormTurn) -> dict[str, Any]:
        order = owned_order(turn, value)
        if order is None:
            return {"order_number": None}
        if order.status not in CHANGEABLE_STATES:
            explain_unchangeable(order, turn.dispatcher)
            return stop_form({"order_number": None})
        return {"order_number": str(order.number)}


class ValidateCancelOrderForm(ChangeableOrderForm):
    form = "cancel_order_form"
    required = ("order_number", "confirmed")
    nothing_response = "utter_nothing_to_cancel"


class ActionAskCancelOrderNumber(AskForOrderAction):
    form = "cancel_order_form"
    states = CHANGEABLE_STATES


class ActionAskCancelConfirmation(CustomerAction):
    """Before cancelling: which order, what is in it, and where the money goes back to."""

    def name(self) -> str:
        return "action_ask_cancel_order_form_confirmed"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        order = order_from_slot(session, customer, tracker)
        if order is None:
            return []
        paid = amount_paid(session, order)
        method = payment_method_of(session, order)
        values = {"order_number": str(order.number), "items": order_items(order)}
        if paid > 0:
            dispatcher.utter_message(
                response="utter_ask_cancel_paid_order",
                amount=money(paid, order.currency),
                method=method.label() if method else "original payment method",
                buttons=YES_NO,
                **values,
            )
        else:
            dispatcher.utter_message(response="utter_ask_cancel_order", buttons=YES_NO, **values)
        return []


class ActionCancelOrder(CustomerAction):
    """Cancel a confirmed, unshipped order: its state, its invoice and the money back."""

    def name(self) -> str:
        return "action_cancel_order"

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
        order = order_from_slot(session, customer, tracker)
        if order is None or confirmed is None:
            return events
        if confirmed is not True:
            dispatcher.utter_message(response="utter_order_kept", order_number=str(order.number))
            return events
        # Conditional update: if the parcel shipped since we asked, nothing changes.
        cancelled = changed_rows(
            session.execute(
                update(Order)
                .where(
                    Order.number == order.number,
                    Order.customer_id == customer.id,
                    Order.status.in_(CHANGEABLE_STATES),
                )
                .values(status=OrderStatus.CANCELLED)
                .execution_options(synchronize_session=False)
            )
        )
        session.refresh(order)
        if not cancelled:
            explain_unchangeable(order, dispatcher)
            return events
        dispatcher.utter_message(response="utter_order_cancelled", order_number=str(order.number))
        self._settle(session, order, dispatcher)
        return events

    @staticmethod
    def _settle(session: Session, order: Order, dispatcher: CollectingDispatcher) -> None:
        """Void what was never paid; refund what was."""
        refund_due = amount_paid(session, order)
        method = payment_method_of(session, order)
        for invoice in session.scalars(select(Invoice).where(Invoice.order_number == order.number)):
            if invoice.status is InvoiceStatus.OPEN:
                invoice.status = InvoiceStatus.VOID
                dispatcher.utter_message(
                    response="utter_invoice_voided", invoice_number=invoice.number
                )
        if refund_due > 0:
            session.add(
                Refund(
                    order_number=order.number,
                    amount=refund_due,
                    status=RefundStatus.APPROVED,
                    reason="Cancelled before shipping",
                    requested_at=datetime.now(UTC),
                )
            )
            dispatcher.utter_message(
                response="utter_cancel_refund_approved",
                amount=money(refund_due, order.currency),
                method=method.label() if method else "original payment method",
            )


class ValidateChangeAddressForm(ChangeableOrderForm):
    form = "change_address_form"
    required = ("order_number", *ADDRESS_SLOTS, "confirmed")
    nothing_response = "utter_nothing_to_readdress"


class ActionAskChangeAddressOrderNumber(AskForOrderAction):
    form = "change_address_form"
    states = CHANGEABLE_STATES


def address_from_slots(tracker: Tracker) -> dict[str, str] | None:
    values = {slot: tracker.get_slot(slot) for slot in ADDRESS_SLOTS}
    if any(not isinstance(v, str) or not v for v in values.values()):
        return None
    return {k: str(v) for k, v in values.items()}


def one_line(address: dict[str, str]) -> str:
    country = SHIPPING_COUNTRIES.get(address["address_country"], address["address_country"])
    return (
        f"{address['address_street']}, {address['address_postcode']} "
        f"{address['address_city']}, {country}"
    )


class ActionAskAddressConfirmation(CustomerAction):
    """Read the new address back before an order goes somewhere else."""

    def name(self) -> str:
        return "action_ask_change_address_form_confirmed"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        order = order_from_slot(session, customer, tracker)
        address = address_from_slots(tracker)
        if order is None or address is None:
            return []
        current = order.shipping_address.one_line() if order.shipping_address else "no address"
        dispatcher.utter_message(
            response="utter_ask_confirm_address",
            order_number=str(order.number),
            new_address=one_line(address),
            old_address=current,
            buttons=YES_NO,
        )
        return []


def reset_address_slots() -> EventList:
    return [SlotSet(slot, None) for slot in (*ADDRESS_SLOTS, "confirmed")]


def new_address(customer: Customer, address: dict[str, str], *, default: bool) -> Address:
    return Address(
        customer_id=customer.id,
        line1=address["address_street"],
        city=address["address_city"],
        postcode=address["address_postcode"],
        country=address["address_country"],
        is_default=default,
    )


class ActionChangeShippingAddress(CustomerAction):
    """Send a confirmed, unshipped order to the new address."""

    def name(self) -> str:
        return "action_change_shipping_address"

    def answer_anonymous(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        return reset_address_slots()

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        events = reset_address_slots()
        order = order_from_slot(session, customer, tracker)
        address = address_from_slots(tracker)
        confirmed = tracker.get_slot("confirmed")
        if order is None or address is None or confirmed is None:
            return events
        if confirmed is not True:
            dispatcher.utter_message(response="utter_address_kept", order_number=str(order.number))
            return events
        row = new_address(customer, address, default=False)
        session.add(row)
        session.flush()
        changed = changed_rows(
            session.execute(
                update(Order)
                .where(
                    Order.number == order.number,
                    Order.customer_id == customer.id,
                    Order.status.in_(CHANGEABLE_STATES),
                )
                .values(shipping_address_id=row.id)
                .execution_options(synchronize_session=False)
            )
        )
        session.refresh(order)
        if not changed:
            session.delete(row)
            explain_unchangeable(order, dispatcher)
            return events
        dispatcher.utter_message(
            response="utter_address_changed",
            order_number=str(order.number),
            new_address=row.one_line(),
        )
        return events


class ValidateDefaultAddressForm(CustomerFormValidation):
    form = "default_address_form"
    required = ADDRESS_SLOTS


class ActionSaveDefaultAddress(CustomerAction):
    """Make the collected address the one new orders go to."""

    def name(self) -> str:
        return "action_save_default_address"

    def answer_anonymous(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> EventList:
        return reset_address_slots()

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        events = reset_address_slots()
        address = address_from_slots(tracker)
        if address is None:
            return events
        for old in customer.addresses:
            old.is_default = False
        row = new_address(customer, address, default=True)
        session.add(row)
        session.flush()
        changeable = candidate_orders(session, customer, CHANGEABLE_STATES)
        dispatcher.utter_message(
            response="utter_default_address_saved",
            new_address=row.one_line(),
            buttons=[
                {
                    "title": f"Send order {o.number} there too",
                    "payload": f'/change_shipping_address{{"order_number":"{o.number}"}}',
                }
                for o in changeable
            ],
        )
        return events


def default_address(customer: Customer) -> Address | None:
    return next((a for a in customer.addresses if a.is_default), None)


class ActionDeliveryOptions(PolicyAnswer):
    policy_response = "utter_delivery_options"

    def name(self) -> str:
        return "action_delivery_options"

    def policy_values(self) -> dict[str, Any]:
        return {"countries": ", ".join(sorted(SHIPPING_COUNTRIES.values()))}

    def add_for_customer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        address = default_address(customer)
        new = {"title": "Use a different address", "payload": "/set_up_shipping_address"}
        if address is None:
            dispatcher.utter_message(response="utter_no_default_address", buttons=[new])
        else:
            dispatcher.utter_message(
                response="utter_your_default_address", address=address.one_line(), buttons=[new]
            )
        return []


class ActionDeliveryPeriod(PolicyAnswer):
    policy_response = "utter_delivery_period"

    def name(self) -> str:
        return "action_delivery_period"

    def add_for_customer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        for order in candidate_orders(session, customer, OPEN_STATES):
            shipment = order.shipments[-1] if order.shipments else None
            if shipment is not None and shipment.eta is not None:
                late = " (delayed)" if order.status is OrderStatus.DELAYED else ""
                dispatcher.utter_message(
                    text=f"Your order {order.number} ({order_items(order)}) is expected"
                    f"{late} on {local_day(shipment.eta, customer.timezone)}."
                )
            else:
                dispatcher.utter_message(
                    response="utter_order_not_shipped_yet", order_number=str(order.number)
                )
        return []


class ActionPlaceOrder(PolicyAnswer):
    policy_response = "utter_place_order"

    def name(self) -> str:
        return "action_place_order"

    def add_for_customer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        address = default_address(customer)
        methods = session.scalars(
            select(PaymentMethod).where(
                PaymentMethod.customer_id == customer.id, PaymentMethod.is_default.is_(True)
            )
        ).all()
        if address is not None and methods:
            dispatcher.utter_message(
                response="utter_checkout_ready",
                address=address.one_line(),
                method=methods[0].label(),
            )
        elif address is None:
            dispatcher.utter_message(
                response="utter_no_default_address",
                buttons=[{"title": "Add an address", "payload": "/set_up_shipping_address"}],
            )
        return []

"""Cancelling an order and sending it elsewhere: forms, confirmations and real changes."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Action
from sqlalchemy import select

from actions.orders import (
    ActionAskAddressConfirmation,
    ActionAskCancelConfirmation,
    ActionAskCancelOrderNumber,
    ActionCancelOrder,
    ActionChangeOrder,
    ActionChangeShippingAddress,
    ActionSaveDefaultAddress,
    ActionTrackOrder,
    ValidateCancelOrderForm,
    ValidateChangeAddressForm,
    ValidateDefaultAddressForm,
)
from bot.db import session_scope
from bot.db.models import (
    Address,
    Invoice,
    InvoiceStatus,
    Order,
    OrderStatus,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from tests.actions.conftest import ActionResult, Conversation, run_action
from tests.actions.shop import an_order, customer_with_unshipped, someone_elses_order

ORDER_FORMS = [
    (ValidateCancelOrderForm(), "cancel_order_form"),
    (ValidateChangeAddressForm(), "change_address_form"),
]
NEW_ADDRESS = {
    "address_street": "14 Elm Road",
    "address_city": "Bristol",
    "address_postcode": "BS1 4DJ",
    "address_country": "GB",
}


def answer_order_number(
    action: Action, form: str, sender: str, typed: str, *, entity: bool = True
) -> ActionResult:
    """The customer answers "which order?" while the form waits for it."""
    return run_action(
        action,
        Conversation(
            sender,
            intent="inform",
            text=typed,
            entities={"order_number": typed} if entity else {},
            slots={"requested_slot": "order_number"},
            active_loop=form,
            candidates={"order_number": typed},
        ),
    )


def start_form(action: Action, form: str, sender: str, intent: str, **kwargs: Any) -> ActionResult:
    """The message that opens the form; `slots` are values left from earlier turns."""
    slots = kwargs.pop("slots", {})
    entities = kwargs.pop("entities", {})
    return run_action(
        action,
        Conversation(
            sender,
            intent=intent,
            entities=entities,
            slots=slots,
            active_loop=form,
            candidates={**slots, **entities},
        ),
    )


def order_status(url: str, number: int) -> OrderStatus:
    with session_scope(url) as session:
        order = session.get(Order, number)
        assert order is not None
        return order.status


@pytest.mark.parametrize(("action", "form"), ORDER_FORMS)
@pytest.mark.parametrize("status", [OrderStatus.PAID, OrderStatus.PACKED])
def test_an_unshipped_order_of_theirs_is_accepted(
    live_shop: str, action: Action, form: str, status: OrderStatus
) -> None:
    order = an_order(live_shop, status)
    result = answer_order_number(action, form, order.sender, f"#{order.number}")
    assert result.messages == []
    assert result.slot("order_number") == str(order.number)
    assert result.slot("requested_slot") == "unset"


@pytest.mark.parametrize(("action", "form"), ORDER_FORMS)
def test_someone_elses_order_mid_form_gets_exactly_the_unknown_number_reply(
    live_shop: str, action: Action, form: str
) -> None:
    mine = an_order(live_shop, OrderStatus.PAID)
    theirs = someone_elses_order(live_shop, mine.customer_id, OrderStatus.PAID)

    other = answer_order_number(action, form, mine.sender, str(theirs))
    unknown = answer_order_number(action, form, mine.sender, "99999")

    for result, typed in ((other, str(theirs)), (unknown, "99999")):
        assert result.responses == ["utter_order_not_found"]
        assert result.messages[0]["order_number"] == typed
        assert result.events == [
            {"event": "slot", "timestamp": None, "name": "order_number", "value": None}
        ]
    assert {k: v for k, v in other.messages[0].items() if k != "order_number"} == {
        k: v for k, v in unknown.messages[0].items() if k != "order_number"
    }


@pytest.mark.parametrize(("action", "form"), ORDER_FORMS)
@pytest.mark.parametrize(
    ("status", "response"),
    [
        (OrderStatus.SHIPPED, "utter_too_late_to_change"),
        (OrderStatus.OUT_FOR_DELIVERY, "utter_too_late_to_change"),
        (OrderStatus.DELAYED, "utter_too_late_to_change"),
        (OrderStatus.DELIVERED, "utter_delivered_return_instead"),
        (OrderStatus.CANCELLED, "utter_order_closed"),
        (OrderStatus.REFUNDED, "utter_order_closed"),
    ],
)
def test_an_order_that_left_the_warehouse_ends_the_form_with_the_reason(
    live_shop: str, action: Action, form: str, status: OrderStatus, response: str
) -> None:
    order = an_order(live_shop, status)
    result = answer_order_number(action, form, order.sender, str(order.number))
    assert result.responses == [response]
    assert result.slot("requested_slot") is None
    assert result.slot("order_number") is None


@pytest.mark.parametrize(("action", "form"), ORDER_FORMS)
@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("12", "12"),
        ("order 1004", "order 1004"),
        ("1234567890", "1234567890"),
        ("1" * 5000, "1" * 39 + "…"),
    ],
)
def test_odd_answers_are_not_found_and_asked_again(
    live_shop: str, action: Action, form: str, typed: str, shown: str
) -> None:
    order = an_order(live_shop, OrderStatus.PAID)
    result = answer_order_number(action, form, order.sender, typed, entity=False)
    assert result.responses == ["utter_order_not_found"]
    assert result.messages[0]["order_number"] == shown
    assert result.slot("order_number") is None
    assert result.slot("requested_slot") == "unset"


@pytest.mark.parametrize(("action", "form"), ORDER_FORMS)
@pytest.mark.parametrize("typed", ["yes", "the blue one from last week", "x" * 5000])
def test_an_answer_without_a_number_is_asked_for_the_number(
    live_shop: str, action: Action, form: str, typed: str
) -> None:
    order = an_order(live_shop, OrderStatus.PAID)
    result = answer_order_number(action, form, order.sender, typed, entity=False)
    assert result.responses == ["utter_not_an_order_number"]
    assert result.slot("order_number") is None


@pytest.mark.parametrize(("action", "form"), ORDER_FORMS)
def test_a_card_number_for_an_order_number_is_refused_not_echoed(
    live_shop: str, action: Action, form: str
) -> None:
    order = an_order(live_shop, OrderStatus.PAID)
    result = answer_order_number(action, form, order.sender, "4111 1111 1111 1111", entity=False)
    assert result.responses == ["utter_no_card_numbers"]
    assert "4111" not in str(result.messages)


@pytest.mark.parametrize(
    ("action", "form", "intent"),
    [
        (ValidateCancelOrderForm(), "cancel_order_form", "cancel_order"),
        (ValidateChangeAddressForm(), "change_address_form", "change_shipping_address"),
    ],
)
def test_without_a_number_the_only_unshipped_order_is_taken(
    live_shop: str, action: Action, form: str, intent: str
) -> None:
    customer = customer_with_unshipped(live_shop, 1)
    with session_scope(live_shop) as session:
        number = session.scalars(
            select(Order.number).where(
                Order.customer_id == customer,
                Order.status.in_((OrderStatus.PAID, OrderStatus.PACKED)),
            )
        ).one()
    result = start_form(action, form, f"web:{customer}", intent)
    assert result.messages == []
    assert result.slot("order_number") == str(number)


@pytest.mark.parametrize(
    ("action", "form", "intent", "response"),
    [
        (ValidateCancelOrderForm(), "cancel_order_form", "cancel_order", "utter_nothing_to_cancel"),
        (
            ValidateChangeAddressForm(),
            "change_address_form",
            "change_shipping_address",
            "utter_nothing_to_readdress",
        ),
    ],
)
def test_without_anything_unshipped_the_form_ends_at_once(
    live_shop: str, action: Action, form: str, intent: str, response: str
) -> None:
    customer = customer_with_unshipped(live_shop, 0)
    result = start_form(action, form, f"web:{customer}", intent)
    assert result.responses == [response]
    assert result.slot("requested_slot") is None


def test_an_order_number_left_from_earlier_is_not_what_a_new_request_is_about(
    live_shop: str,
) -> None:
    customer = customer_with_unshipped(live_shop, 2)
    stale = someone_elses_order(live_shop, customer)
    result = start_form(
        ValidateCancelOrderForm(),
        "cancel_order_form",
        f"web:{customer}",
        "cancel_order",
        slots={"order_number": str(stale), "confirmed": True},
    )
    assert result.messages == []
    assert result.slot("order_number") is None
    assert result.slot("confirmed") is None


def test_several_unshipped_orders_are_offered_as_buttons(live_shop: str) -> None:
    customer = customer_with_unshipped(live_shop, 2)
    result = run_action(
        ActionAskCancelOrderNumber(),
        Conversation(f"web:{customer}", intent="cancel_order", active_loop="cancel_order_form"),
    )
    assert result.responses == ["utter_ask_order_number"]
    assert len(result.buttons) == 2
    assert all(b["payload"].startswith('/inform{"order_number":"') for b in result.buttons)


@pytest.mark.parametrize(
    ("sender", "response"),
    [("web:anon-1234abcd", "utter_sign_in_needed"), ("telegram:42", "utter_sign_in_needed")],
)
def test_anonymous_visitors_are_asked_to_sign_in_and_the_form_ends(
    live_shop: str, sender: str, response: str
) -> None:
    result = start_form(
        ValidateCancelOrderForm(),
        "cancel_order_form",
        sender,
        "cancel_order",
        entities={"order_number": "10001"},
    )
    assert result.responses == [response]
    assert result.slot("requested_slot") is None
    assert result.texts == []


def test_the_confirmation_says_what_comes_back_and_where(live_shop: str) -> None:
    order = an_order(live_shop, OrderStatus.PAID)
    result = run_action(
        ActionAskCancelConfirmation(),
        Conversation(order.sender, slots={"order_number": str(order.number)}),
    )
    [message] = result.messages
    assert message["response"] == "utter_ask_cancel_paid_order"
    assert message["order_number"] == str(order.number)
    assert message["amount"].startswith("€")
    assert "card ending" in message["method"]
    assert [b["payload"] for b in result.buttons] == ["/affirm", "/deny"]


def cancel(url: str, sender: str, number: int, confirmed: bool | None) -> ActionResult:
    return run_action(
        ActionCancelOrder(),
        Conversation(sender, slots={"order_number": str(number), "confirmed": confirmed}),
    )


def test_a_confirmed_cancellation_cancels_the_order_and_approves_the_refund(
    live_shop: str,
) -> None:
    order = an_order(live_shop, OrderStatus.PAID)
    with session_scope(live_shop) as session:
        total = session.get(Order, order.number).total  # type: ignore[union-attr]

    result = cancel(live_shop, order.sender, order.number, True)

    assert result.responses == ["utter_order_cancelled", "utter_cancel_refund_approved"]
    assert result.messages[1]["amount"] == f"€{total:,.2f}"
    assert result.slot("confirmed") is None
    with session_scope(live_shop) as session:
        row = session.get(Order, order.number)
        assert row is not None and row.status is OrderStatus.CANCELLED
        [refund] = row.refunds
        assert (refund.status, refund.amount) == (RefundStatus.APPROVED, total)
    tracked = run_action(
        ActionTrackOrder(), Conversation(order.sender, entities={"order_number": str(order.number)})
    )
    assert "is cancelled" in tracked.texts[0] and "Nothing will be shipped" in tracked.texts[0]


def test_a_packed_order_that_was_never_paid_has_its_invoice_voided(live_shop: str) -> None:
    order = an_order(live_shop, OrderStatus.PACKED)
    with session_scope(live_shop) as session:
        invoice = session.scalars(select(Invoice).where(Invoice.order_number == order.number)).one()
        invoice.status = InvoiceStatus.OPEN
        for payment in invoice.payments:
            payment.status = PaymentStatus.FAILED

    result = cancel(live_shop, order.sender, order.number, True)

    assert result.responses == ["utter_order_cancelled", "utter_invoice_voided"]
    with session_scope(live_shop) as session:
        assert (
            session.scalars(
                select(Invoice.status).where(Invoice.order_number == order.number)
            ).one()
            is InvoiceStatus.VOID
        )
        assert (
            session.scalars(select(Refund).where(Refund.order_number == order.number)).all() == []
        )


def test_saying_no_keeps_the_order(live_shop: str) -> None:
    order = an_order(live_shop, OrderStatus.PAID)
    result = cancel(live_shop, order.sender, order.number, False)
    assert result.responses == ["utter_order_kept"]
    assert order_status(live_shop, order.number) is OrderStatus.PAID


def test_an_order_that_shipped_while_we_asked_is_not_cancelled(live_shop: str) -> None:
    order = an_order(live_shop, OrderStatus.PACKED)
    with session_scope(live_shop) as session:
        session.get(Order, order.number).status = OrderStatus.SHIPPED  # type: ignore[union-attr]

    result = cancel(live_shop, order.sender, order.number, True)

    assert result.responses == ["utter_too_late_to_change"]
    assert order_status(live_shop, order.number) is OrderStatus.SHIPPED


def test_a_form_that_ended_early_leaves_the_submit_with_nothing_to_do(live_shop: str) -> None:
    order = an_order(live_shop, OrderStatus.PAID)
    result = run_action(ActionCancelOrder(), Conversation(order.sender, slots={"confirmed": None}))
    assert result.messages == []
    assert order_status(live_shop, order.number) is OrderStatus.PAID


def test_someone_elses_order_in_the_slot_is_never_cancelled(live_shop: str) -> None:
    mine = an_order(live_shop, OrderStatus.PAID)
    theirs = someone_elses_order(live_shop, mine.customer_id, OrderStatus.PAID)
    result = cancel(live_shop, mine.sender, theirs, True)
    assert result.messages == []
    assert order_status(live_shop, theirs) is OrderStatus.PAID


def test_the_whole_address_in_one_answer_fills_the_form(live_shop: str) -> None:
    order = an_order(live_shop, OrderStatus.PAID)
    result = run_action(
        ValidateChangeAddressForm(),
        Conversation(
            order.sender,
            intent="inform",
            text="14 Elm Road, BS1 4DJ Bristol, UK",
            slots={"requested_slot": "address_street", "order_number": str(order.number)},
            active_loop="change_address_form",
            candidates={"address_street": "14 Elm Road, BS1 4DJ Bristol, UK"},
        ),
    )
    assert result.messages == []
    assert {k: result.slot(k) for k in NEW_ADDRESS} == NEW_ADDRESS


def test_a_bad_postcode_is_explained_and_asked_again(live_shop: str) -> None:
    order = an_order(live_shop, OrderStatus.PAID)
    result = run_action(
        ValidateDefaultAddressForm(),
        Conversation(
            order.sender,
            intent="inform",
            text="no idea",
            slots={"requested_slot": "address_postcode"},
            active_loop="default_address_form",
            candidates={"address_postcode": "no idea"},
        ),
    )
    assert result.responses == ["utter_invalid_postcode"]
    assert result.slot("address_postcode") is None


def readdress(url: str, sender: str, number: int, confirmed: bool | None) -> ActionResult:
    return run_action(
        ActionChangeShippingAddress(),
        Conversation(
            sender, slots={"order_number": str(number), "confirmed": confirmed, **NEW_ADDRESS}
        ),
    )


def test_the_address_confirmation_reads_old_and_new_back(live_shop: str) -> None:
    order = an_order(live_shop, OrderStatus.PAID)
    result = run_action(
        ActionAskAddressConfirmation(),
        Conversation(order.sender, slots={"order_number": str(order.number), **NEW_ADDRESS}),
    )
    [message] = result.messages
    assert message["new_address"] == "14 Elm Road, BS1 4DJ Bristol, United Kingdom"
    assert message["old_address"] != message["new_address"]


def test_a_confirmed_new_address_is_where_the_order_goes(live_shop: str) -> None:
    order = an_order(live_shop, OrderStatus.PACKED)
    with session_scope(live_shop) as session:
        old_id = session.get(Order, order.number).shipping_address_id  # type: ignore[union-attr]

    result = readdress(live_shop, order.sender, order.number, True)

    assert result.responses == ["utter_address_changed"]
    assert all(result.slot(k) is None for k in NEW_ADDRESS)
    with session_scope(live_shop) as session:
        row = session.get(Order, order.number)
        assert row is not None and row.shipping_address is not None
        assert row.shipping_address.one_line() == "14 Elm Road, BS1 4DJ Bristol, GB"
        assert row.shipping_address.customer_id == order.customer_id
        assert not row.shipping_address.is_default
        old = session.get(Address, old_id)
        assert old is not None and old.is_default  # the customer's default stays


def test_no_to_the_new_address_keeps_the_old_one(live_shop: str) -> None:
    order = an_order(live_shop, OrderStatus.PAID)
    with session_scope(live_shop) as session:
        old_id = session.get(Order, order.number).shipping_address_id  # type: ignore[union-attr]
    result = readdress(live_shop, order.sender, order.number, False)
    assert result.responses == ["utter_address_kept"]
    with session_scope(live_shop) as session:
        assert session.get(Order, order.number).shipping_address_id == old_id  # type: ignore[union-attr]


def test_a_shipped_order_is_not_readdressed_even_at_the_last_step(live_shop: str) -> None:
    order = an_order(live_shop, OrderStatus.SHIPPED)
    result = readdress(live_shop, order.sender, order.number, True)
    assert result.responses == ["utter_too_late_to_change"]
    with session_scope(live_shop) as session:
        assert session.scalars(select(Address).where(Address.line1 == "14 Elm Road")).all() == []


def test_a_new_default_address_replaces_the_old_default(live_shop: str) -> None:
    customer = customer_with_unshipped(live_shop, 1)
    result = run_action(
        ActionSaveDefaultAddress(), Conversation(f"web:{customer}", slots=dict(NEW_ADDRESS))
    )
    assert result.responses == ["utter_default_address_saved"]
    assert len(result.buttons) == 1 and "change_shipping_address" in result.buttons[0]["payload"]
    with session_scope(live_shop) as session:
        defaults = session.scalars(
            select(Address).where(Address.customer_id == customer, Address.is_default.is_(True))
        ).all()
        assert [a.line1 for a in defaults] == ["14 Elm Road"]


@pytest.mark.parametrize(
    ("status", "response"),
    [
        (OrderStatus.PAID, "utter_order_changeable"),
        (OrderStatus.SHIPPED, "utter_too_late_to_change"),
        (OrderStatus.DELIVERED, "utter_delivered_return_instead"),
    ],
)
def test_what_can_change_about_an_order(live_shop: str, status: OrderStatus, response: str) -> None:
    order = an_order(live_shop, status)
    result = run_action(
        ActionChangeOrder(),
        Conversation(
            order.sender, intent="change_order", entities={"order_number": str(order.number)}
        ),
    )
    assert result.responses == [response]
    if status is OrderStatus.PAID:
        payloads = [b["payload"] for b in result.buttons]
        assert f'/cancel_order{{"order_number":"{order.number}"}}' in payloads
        assert f'/change_shipping_address{{"order_number":"{order.number}"}}' in payloads


def test_change_order_for_someone_elses_order_is_not_found(live_shop: str) -> None:
    mine = an_order(live_shop, OrderStatus.PAID)
    theirs = someone_elses_order(live_shop, mine.customer_id, OrderStatus.PAID)
    result = run_action(
        ActionChangeOrder(),
        Conversation(mine.sender, intent="change_order", entities={"order_number": str(theirs)}),
    )
    assert result.responses == ["utter_order_not_found"]


def test_change_order_for_anonymous_visitors_is_the_policy(live_shop: str) -> None:
    result = run_action(ActionChangeOrder(), Conversation("web:anon-55aa", intent="change_order"))
    assert result.responses == ["utter_change_order_policy", "utter_sign_in_needed"]

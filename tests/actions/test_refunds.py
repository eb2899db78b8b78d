"""Refunds and returns: requests only for delivered orders of theirs, and where they stand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from actions.refunds import (
    ActionAskReturnProduct,
    ActionRefundPolicy,
    ActionRequestRefund,
    ActionRequestReturn,
    ActionTrackRefund,
    ValidateRefundForm,
    ValidateReturnForm,
)
from bot.db import session_scope
from bot.db.models import Order, OrderStatus, Refund, RefundStatus, Shipment
from tests.actions.conftest import ActionResult, Conversation, run_action
from tests.actions.shop import a_refundable_order, an_order, someone_elses_order

FORMS = [(ValidateRefundForm(), "refund_form"), (ValidateReturnForm(), "return_form")]


def answer(
    action: object, form: str, sender: str, slot: str, typed: str, **slots: str
) -> ActionResult:
    entities = {slot: typed} if slot in ("order_number", "product") else {}
    return run_action(
        action,  # type: ignore[arg-type]
        Conversation(
            sender,
            intent="inform",
            text=typed,
            entities=entities,
            slots={"requested_slot": slot, **slots},
            active_loop=form,
            candidates={slot: typed},
        ),
    )


def refunds_of(url: str, number: int) -> list[tuple[RefundStatus, str | None]]:
    with session_scope(url) as session:
        return [
            (r.status, r.reason)
            for r in session.scalars(select(Refund).where(Refund.order_number == number))
        ]


@pytest.mark.parametrize(("action", "form"), FORMS)
def test_a_recently_delivered_order_of_theirs_is_accepted(
    live_shop: str, action: object, form: str
) -> None:
    order = a_refundable_order(live_shop)
    result = answer(action, form, order.sender, "order_number", str(order.number))
    assert result.messages == []
    assert result.slot("order_number") == str(order.number)


@pytest.mark.parametrize(("action", "form"), FORMS)
def test_someone_elses_delivered_order_is_not_found(
    live_shop: str, action: object, form: str
) -> None:
    mine = a_refundable_order(live_shop)
    theirs = a_refundable_order(live_shop, skip=1)
    assert theirs.customer_id != mine.customer_id
    other = answer(action, form, mine.sender, "order_number", str(theirs.number))
    unknown = answer(action, form, mine.sender, "order_number", "99999")
    assert other.responses == unknown.responses == ["utter_order_not_found"]
    assert other.events == unknown.events
    assert refunds_of(live_shop, theirs.number) == []


@pytest.mark.parametrize(("action", "form"), FORMS)
@pytest.mark.parametrize(
    ("status", "response"),
    [
        (OrderStatus.PAID, "utter_refund_cancel_instead"),
        (OrderStatus.SHIPPED, "utter_refund_not_delivered_yet"),
        (OrderStatus.CANCELLED, "utter_refund_cancelled_order"),
        (OrderStatus.REFUNDED, "utter_refund_already_refunded"),
    ],
)
def test_orders_that_cannot_be_refunded_end_the_form_with_the_reason(
    live_shop: str, action: object, form: str, status: OrderStatus, response: str
) -> None:
    order = an_order(live_shop, status)
    result = answer(action, form, order.sender, "order_number", str(order.number))
    assert result.responses == [response]
    assert result.slot("requested_slot") is None


@pytest.mark.parametrize(("action", "form"), FORMS)
def test_a_delivery_older_than_the_return_window_is_explained(
    live_shop: str, action: object, form: str
) -> None:
    order = a_refundable_order(live_shop)
    with session_scope(live_shop) as session:
        shipment = session.scalars(
            select(Shipment).where(Shipment.order_number == order.number)
        ).one()
        shipment.delivered_at = datetime.now(UTC) - timedelta(days=31)
    result = answer(action, form, order.sender, "order_number", str(order.number))
    assert result.responses == ["utter_refund_window_passed"]
    assert result.messages[0]["return_days"] == 30


@pytest.mark.parametrize(("action", "form"), FORMS)
def test_an_open_request_is_not_doubled(live_shop: str, action: object, form: str) -> None:
    with session_scope(live_shop) as session:
        refund = session.scalars(
            select(Refund).join(Order).where(Refund.status == RefundStatus.REQUESTED)
        ).first()
        assert refund is not None
        sender, number = f"web:{refund.order.customer_id}", refund.order_number
    result = answer(action, form, sender, "order_number", str(number))
    assert result.responses == ["utter_refund_already_requested"]
    assert len(refunds_of(live_shop, number)) == 1


def test_a_refund_request_is_recorded_for_the_team(live_shop: str) -> None:
    order = a_refundable_order(live_shop)
    result = run_action(
        ActionRequestRefund(),
        Conversation(
            order.sender,
            slots={"order_number": str(order.number), "reason": "the thermostat stopped heating"},
        ),
    )
    assert result.responses == ["utter_refund_requested"]
    reference = result.messages[0]["reference"]
    assert reference.startswith("R-")
    assert refunds_of(live_shop, order.number) == [
        (RefundStatus.REQUESTED, "the thermostat stopped heating")
    ]
    assert result.slot("reason") is None

    again = run_action(
        ActionRequestRefund(),
        Conversation(order.sender, slots={"order_number": str(order.number), "reason": "again"}),
    )
    assert again.responses == ["utter_refund_already_requested"]
    assert len(refunds_of(live_shop, order.number)) == 1


def test_a_refund_for_someone_elses_order_is_never_recorded(live_shop: str) -> None:
    mine = a_refundable_order(live_shop)
    theirs = a_refundable_order(live_shop, skip=1)
    result = run_action(
        ActionRequestRefund(),
        Conversation(mine.sender, slots={"order_number": str(theirs.number), "reason": "broken"}),
    )
    assert result.messages == []
    assert refunds_of(live_shop, theirs.number) == []


def multi_product_order(url: str) -> tuple[str, int, list[str]]:
    with session_scope(url) as session:
        for order in session.scalars(
            select(Order).where(Order.status == OrderStatus.DELIVERED).order_by(Order.number)
        ):
            slugs = sorted({line.product.slug for line in order.lines})
            if len(slugs) > 1 and not order.refunds:
                return f"web:{order.customer_id}", order.number, slugs
    raise AssertionError("no delivered order with several devices")


def test_the_device_to_return_must_be_in_the_order(live_shop: str) -> None:
    sender, number, slugs = multi_product_order(live_shop)
    named = answer(
        ValidateReturnForm(), "return_form", sender, "product", slugs[1], order_number=str(number)
    )
    assert named.slot("product") == slugs[1] and named.messages == []

    with session_scope(live_shop) as session:
        names = {line.product.name for line in session.get(Order, number).lines}  # type: ignore[union-attr]
    typo = next(iter(names)).lower().replace("lumen ", "").replace("e", "", 1)
    near = answer(
        ValidateReturnForm(), "return_form", sender, "product", typo, order_number=str(number)
    )
    assert near.slot("product") in slugs

    missing = "smoke_alarm" if "smoke_alarm" not in slugs else "thermostat"
    wrong = answer(
        ValidateReturnForm(), "return_form", sender, "product", missing, order_number=str(number)
    )
    assert wrong.responses == ["utter_product_not_in_order"]
    assert {b["payload"] for b in wrong.buttons} == {f'/inform{{"product":"{s}"}}' for s in slugs}
    assert wrong.slot("product") is None


def test_the_return_question_offers_the_devices_of_the_order(live_shop: str) -> None:
    sender, number, slugs = multi_product_order(live_shop)
    result = run_action(
        ActionAskReturnProduct(), Conversation(sender, slots={"order_number": str(number)})
    )
    assert result.responses == ["utter_ask_return_product"]
    assert len(result.buttons) == len(slugs)


def test_a_return_is_recorded_for_the_device_and_its_price(live_shop: str) -> None:
    sender, number, slugs = multi_product_order(live_shop)
    with session_scope(live_shop) as session:
        line = next(
            line
            for line in session.get(Order, number).lines
            if line.product.slug == slugs[0]  # type: ignore[union-attr]
        )
        price, name, quantity = line.unit_price * line.quantity, line.product.name, line.quantity
    result = run_action(
        ActionRequestReturn(),
        Conversation(
            sender,
            slots={"order_number": str(number), "product": slugs[0], "reason": "too noisy"},
        ),
    )
    assert result.responses == ["utter_return_requested"]
    assert result.messages[0]["amount"] == f"€{price:,.2f}"
    assert refunds_of(live_shop, number) == [
        (RefundStatus.REQUESTED, f"Return of {quantity} × {name}: too noisy")
    ]


def test_where_refunds_stand(live_shop: str) -> None:
    order = an_order(live_shop, OrderStatus.REFUNDED)
    result = run_action(ActionTrackRefund(), Conversation(order.sender, intent="track_refund"))
    assert any(f"order {order.number}" in t and "paid" in t for t in result.texts)
    assert "utter_refund_meaning_paid" in result.responses


def test_refund_status_of_someone_elses_order_is_not_found(live_shop: str) -> None:
    mine = an_order(live_shop, OrderStatus.REFUNDED)
    theirs = someone_elses_order(live_shop, mine.customer_id, OrderStatus.REFUNDED)
    result = run_action(
        ActionTrackRefund(),
        Conversation(mine.sender, intent="track_refund", entities={"order_number": str(theirs)}),
    )
    assert result.responses == ["utter_order_not_found"]
    assert result.texts == []


def test_no_refunds_says_so(live_shop: str) -> None:
    order = an_order(live_shop, OrderStatus.PAID)
    with session_scope(live_shop) as session:
        refunds = session.scalars(
            select(Refund).join(Order).where(Order.customer_id == order.customer_id)
        ).all()
    assert refunds == []
    result = run_action(ActionTrackRefund(), Conversation(order.sender, intent="track_refund"))
    assert result.responses == ["utter_no_refunds"]
    assert result.buttons == [{"title": "Request a refund", "payload": "/get_refund"}]


def test_the_refund_policy_adds_their_returnable_orders(live_shop: str) -> None:
    order = a_refundable_order(live_shop)
    result = run_action(
        ActionRefundPolicy(), Conversation(order.sender, intent="check_refund_policy")
    )
    assert result.responses == ["utter_refund_policy"]
    assert result.messages[0]["return_days"] == 30
    assert any(f"order {order.number}" in t and "can be returned until" in t for t in result.texts)


def test_the_refund_policy_for_anonymous_visitors_is_the_policy_alone(live_shop: str) -> None:
    result = run_action(
        ActionRefundPolicy(), Conversation("web:anon-1", intent="check_refund_policy")
    )
    assert result.responses == ["utter_refund_policy"] and result.texts == []

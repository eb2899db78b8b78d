"""`action_track_order` answers from the order and shipment rows, and only to their owner."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from actions.orders import ActionTrackOrder
from bot.db import session_scope
from bot.db.models import Order, OrderStatus
from tests.actions.conftest import Conversation, run_action

OPEN = (
    OrderStatus.PAID,
    OrderStatus.PACKED,
    OrderStatus.SHIPPED,
    OrderStatus.OUT_FOR_DELIVERY,
    OrderStatus.DELAYED,
)


def an_order(session: Session, status: OrderStatus) -> Order:
    order = session.scalars(
        select(Order).where(Order.status == status).order_by(Order.number)
    ).first()
    assert order is not None
    return order


def customer_with_open_orders(session: Session, count: int) -> int:
    row = session.execute(
        select(Order.customer_id)
        .where(Order.status.in_(OPEN))
        .group_by(Order.customer_id)
        .having(func.count() == count)
        .order_by(Order.customer_id)
        .limit(1)
    ).first()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    "status",
    [OrderStatus.SHIPPED, OrderStatus.OUT_FOR_DELIVERY, OrderStatus.DELAYED, OrderStatus.DELIVERED],
)
def test_a_shipped_order_is_answered_with_its_carrier_tracking_and_date(
    demo_database: str, status: OrderStatus
) -> None:
    with session_scope(demo_database) as session:
        order = an_order(session, status)
        shipment = order.shipments[-1]
        owner, carrier, tracking = order.customer_id, shipment.carrier, shipment.tracking_number
        number = order.number

    result = run_action(
        ActionTrackOrder(), Conversation(f"web:{owner}", entities={"order_number": str(number)})
    )

    [text] = result.texts
    assert f"Order {number}" in text
    assert status.value.replace("_", " ") in text
    assert carrier in text and tracking in text
    assert ("Delivered on" if status is OrderStatus.DELIVERED else "Expected delivery") in text
    assert result.slot("order_number") == str(number)


@pytest.mark.parametrize("status", [OrderStatus.PAID, OrderStatus.CANCELLED])
def test_an_order_not_shipped_says_so(demo_database: str, status: OrderStatus) -> None:
    with session_scope(demo_database) as session:
        order = an_order(session, status)
        owner, number = order.customer_id, order.number

    result = run_action(
        ActionTrackOrder(), Conversation(f"web:{owner}", entities={"order_number": f"#{number}"})
    )

    [text] = result.texts
    assert f"Order {number}" in text and "tracking number" not in text


def _not_found(demo_database: str) -> Callable[[str], tuple[str, str]]:
    with session_scope(demo_database) as session:
        order = an_order(session, OrderStatus.SHIPPED)
        owner = order.customer_id
        other = session.scalars(select(Order).where(Order.customer_id != owner)).first()
        assert other is not None
        return lambda case: {
            "someone else's": (f"web:{owner}", str(other.number)),
            "unknown": (f"web:{owner}", "99999"),
            "malformed": (f"web:{owner}", "12"),
        }[case]


def test_someone_elses_order_gets_exactly_the_unknown_order_reply(demo_database: str) -> None:
    case = _not_found(demo_database)
    replies = {}
    for kind in ("someone else's", "unknown"):
        sender, number = case(kind)
        result = run_action(
            ActionTrackOrder(), Conversation(sender, entities={"order_number": number})
        )
        replies[kind] = (result.responses, [m.get("text") for m in result.messages], result.buttons)
        assert result.responses == ["utter_order_not_found"]
        assert result.slot("order_number") is None
    assert replies["someone else's"] == replies["unknown"]


def test_a_malformed_number_is_not_found(demo_database: str) -> None:
    sender, number = _not_found(demo_database)("malformed")
    result = run_action(ActionTrackOrder(), Conversation(sender, entities={"order_number": number}))
    assert result.responses == ["utter_order_not_found"]


def test_without_a_number_one_open_order_is_answered_directly(demo_database: str) -> None:
    with session_scope(demo_database) as session:
        owner = customer_with_open_orders(session, 1)
        number = session.scalar(
            select(Order.number).where(Order.customer_id == owner, Order.status.in_(OPEN))
        )

    result = run_action(ActionTrackOrder(), Conversation(f"web:{owner}"))

    [text] = result.texts
    assert f"Order {number}" in text


def test_without_a_number_several_open_orders_are_offered_as_buttons(demo_database: str) -> None:
    with session_scope(demo_database) as session:
        owner = customer_with_open_orders(session, 2)
        numbers = set(
            session.scalars(
                select(Order.number).where(Order.customer_id == owner, Order.status.in_(OPEN))
            )
        )

    result = run_action(ActionTrackOrder(), Conversation(f"web:{owner}"))

    assert result.responses == ["utter_which_order"]
    assert {b["title"] for b in result.buttons} == {f"Order {n}" for n in numbers}


@pytest.mark.parametrize(
    "sender", ["web:anon-0123456789ab", "telegram:555000111", "nonsense", "web:999999"]
)
def test_unidentified_visitors_are_asked_to_sign_in(sender: str) -> None:
    result = run_action(
        ActionTrackOrder(), Conversation(sender, entities={"order_number": "10042"})
    )
    assert result.responses == ["utter_sign_in_needed"]
    assert result.texts == []


def test_a_database_that_went_away_gets_a_polite_reply(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from bot.settings import get_settings

    (tmp_path / "not-a-database").mkdir()
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'not-a-database'}")
    get_settings.cache_clear()

    result = run_action(
        ActionTrackOrder(), Conversation("web:1", entities={"order_number": "10042"})
    )

    assert result.responses == ["utter_service_unavailable"]

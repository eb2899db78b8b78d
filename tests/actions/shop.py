"""Finding what a test needs in the demo shop: a customer with a given kind of order or plan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from bot.db import session_scope
from bot.db.models import (
    Order,
    OrderStatus,
    Refund,
    RefundStatus,
    Subscription,
    SubscriptionStatus,
)

UNSHIPPED = (OrderStatus.PAID, OrderStatus.PACKED)


@dataclass(frozen=True)
class OrderFact:
    customer_id: int
    number: int

    @property
    def sender(self) -> str:
        return f"web:{self.customer_id}"


def an_order(url: str, status: OrderStatus, *, skip: int = 0) -> OrderFact:
    """An order in `status`, the `skip`-th one by number."""
    with session_scope(url) as session:
        order = session.scalars(
            select(Order).where(Order.status == status).order_by(Order.number).offset(skip)
        ).first()
        assert order is not None
        return OrderFact(order.customer_id, order.number)


def a_refundable_order(url: str, *, skip: int = 0) -> OrderFact:
    """A delivered order without an open refund request."""
    open_refunds = select(Refund.order_number).where(
        Refund.status.in_((RefundStatus.REQUESTED, RefundStatus.APPROVED))
    )
    with session_scope(url) as session:
        order = session.scalars(
            select(Order)
            .where(Order.status == OrderStatus.DELIVERED, Order.number.not_in(open_refunds))
            .order_by(Order.number)
            .offset(skip)
        ).first()
        assert order is not None
        return OrderFact(order.customer_id, order.number)


def someone_elses_order(url: str, customer_id: int, status: OrderStatus | None = None) -> int:
    """An order number of another customer (in `status`, if given)."""
    with session_scope(url) as session:
        query = select(Order.number).where(Order.customer_id != customer_id)
        if status is not None:
            query = query.where(Order.status == status)
        number = session.scalars(query.order_by(Order.number)).first()
        assert number is not None
        return int(number)


def customer_with_unshipped(url: str, count: int) -> int:
    """A customer with exactly `count` orders that have not shipped yet."""
    with session_scope(url) as session:
        unshipped: dict[int, int] = {}
        for order in session.scalars(select(Order).order_by(Order.customer_id)):
            unshipped.setdefault(order.customer_id, 0)
            unshipped[order.customer_id] += order.status in UNSHIPPED
    return next(c for c, n in unshipped.items() if n == count)


def customer_with_plan(url: str, status: SubscriptionStatus | None) -> int:
    """A customer whose plan is in `status`; None: a customer without any plan."""
    with session_scope(url) as session:
        if status is None:
            with_plan = select(Subscription.customer_id)
            customer = session.scalars(
                select(Order.customer_id)
                .where(Order.customer_id.not_in(with_plan))
                .order_by(Order.customer_id)
            ).first()
        else:
            customer = session.scalars(
                select(Subscription.customer_id)
                .where(Subscription.status == status)
                .order_by(Subscription.customer_id)
            ).first()
        assert customer is not None
        return int(customer)

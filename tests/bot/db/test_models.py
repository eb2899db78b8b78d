"""The data layer keeps money exact, times aware, identities unique; the demo shop is complete."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, StatementError

from bot.db import session_scope
from bot.db.demo import load_demo_data
from bot.db.models import (
    ChannelIdentity,
    Customer,
    Incident,
    IncidentKind,
    IncidentStatus,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    Platform,
    Subscription,
    SupportTicket,
    TicketStatus,
)
from tests.conftest import DEMO_NOW


def test_money_and_times_round_trip_exactly(database: str) -> None:
    placed = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    with session_scope(database) as session:
        customer = Customer(name="Ada", email="ada@example.com", timezone="Europe/Berlin")
        session.add(customer)
        session.flush()
        session.add(
            Order(
                number=10001,
                customer_id=customer.id,
                status=OrderStatus.PAID,
                placed_at=placed,
                total=Decimal("1234.56"),
            )
        )

    with session_scope(database) as session:
        order = session.get(Order, 10001)
        assert order is not None
        assert order.total == Decimal("1234.56")
        assert order.placed_at == placed
        assert order.placed_at.tzinfo is not None


def test_naive_times_are_refused(database: str) -> None:
    with pytest.raises(StatementError), session_scope(database) as session:
        customer = Customer(name="Bo", email="bo@example.com")
        session.add(customer)
        session.flush()
        session.add(
            Order(
                number=10002,
                customer_id=customer.id,
                status=OrderStatus.PAID,
                placed_at=datetime(2026, 1, 1),
                total=Decimal("1.00"),
            )
        )


def test_one_platform_account_links_to_one_identity(database: str) -> None:
    with pytest.raises(IntegrityError), session_scope(database) as session:
        session.add_all(
            [
                ChannelIdentity(platform=Platform.TELEGRAM, external_id="42"),
                ChannelIdentity(platform=Platform.TELEGRAM, external_id="42"),
            ]
        )


def test_demo_shop_loads_on_both_databases(database: str) -> None:
    with session_scope(database) as session:
        summary = load_demo_data(session, customers=30, now=DEMO_NOW)
    assert summary.customers == 30
    with session_scope(database) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == summary.orders


@pytest.fixture
def demo(demo_database: str):
    with session_scope(demo_database) as session:
        yield session


def test_demo_shop_has_at_least_200_customers_in_many_time_zones(demo) -> None:
    customers = demo.scalars(select(Customer)).all()
    assert len(customers) >= 200
    assert len({c.timezone for c in customers}) >= 8


def test_demo_customers_use_all_three_channels(demo) -> None:
    platforms = Counter(i.platform for i in demo.scalars(select(ChannelIdentity)))
    assert set(platforms) == set(Platform)
    assert all(count >= 50 for count in platforms.values())


def test_demo_orders_are_in_every_state(demo) -> None:
    states = set(demo.scalars(select(Order.status)))
    assert states == set(OrderStatus)


def test_demo_shop_has_what_every_proactive_topic_needs(demo) -> None:
    soon = DEMO_NOW + timedelta(days=7)
    assert (
        demo.scalar(
            select(func.count()).select_from(Subscription).where(Subscription.renews_at <= soon)
        )
        > 0
    )
    assert (
        demo.scalar(
            select(func.count()).select_from(Payment).where(Payment.status == PaymentStatus.FAILED)
        )
        > 0
    )
    ticket_states = set(demo.scalars(select(SupportTicket.status)))
    assert {TicketStatus.OPEN, TicketStatus.CLOSED} <= ticket_states
    assert demo.scalar(
        select(Incident).where(
            Incident.kind == IncidentKind.OUTAGE, Incident.status == IncidentStatus.RESOLVED
        )
    )


def test_demo_shop_is_deterministic_from_its_seed(tmp_path) -> None:
    from bot.db import migrate

    shops = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.db"
        migrate(url)
        with session_scope(url) as session:
            load_demo_data(session, customers=40, seed=3, now=DEMO_NOW)
        with session_scope(url) as session:
            shops.append(
                [
                    (
                        o.number,
                        o.customer.email,
                        o.status,
                        o.total,
                        [(s.carrier, s.tracking_number) for s in o.shipments],
                    )
                    for o in session.scalars(select(Order).order_by(Order.number))
                ]
            )
    assert shops[0] == shops[1]

"""The one door to customer data: which conversation is whose, and whose rows a customer sees."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.db import migrate, session_scope
from bot.db.models import ChannelIdentity, Customer, Invoice, Order, Platform, SupportTicket
from bot.identity.customers import ConversationIdentity, verified_customer
from bot.identity.ownership import find_owned
from tests.conftest import create_postgres_database, drop_postgres_database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A small shop on each database, read-only for every test here."""
    if request.param == "sqlite":
        database = f"sqlite:///{tmp_path_factory.mktemp('customers') / 'herald.db'}"
    else:
        database = create_postgres_database()
    migrate(database)
    with session_scope(database) as session:
        session.add_all(
            [
                Customer(id=1, name="Ana Silva", email="ana@example.com"),
                Customer(id=2, name="Ben Okafor", email="ben@example.com"),
                Customer(
                    id=3,
                    name="Forgotten customer",
                    email="forgotten-3@forgotten.invalid",
                    forgotten_at=datetime(2026, 1, 1, tzinfo=UTC),
                ),
            ]
        )
        session.flush()
        session.add_all(
            [
                ChannelIdentity(
                    platform=Platform.TELEGRAM, external_id="111", customer_id=1, verified=True
                ),
                ChannelIdentity(
                    platform=Platform.TELEGRAM, external_id="222", customer_id=2, verified=False
                ),
                ChannelIdentity(
                    platform=Platform.SLACK, external_id="U333", customer_id=3, verified=True
                ),
                Order(
                    number=10001,
                    customer_id=1,
                    status="paid",
                    placed_at=datetime(2026, 1, 1, tzinfo=UTC),
                    total=10,
                ),
                SupportTicket(
                    customer_id=None,
                    subject="anonymous question",
                    status="open",
                    opened_at=datetime(2026, 1, 1, tzinfo=UTC),
                ),
            ]
        )
    yield database
    if request.param == "postgresql":
        drop_postgres_database(database)


@pytest.mark.parametrize(
    "sender_id, customer_id",
    [
        ("web:1", 1),
        ("web:2", 2),
        ("telegram:111", 1),
        ("telegram:222", None),  # linked but not verified
        ("slack:U333", None),  # verified, but the customer was forgotten
        ("web:3", None),  # forgotten
        ("web:999", None),
        ("web:anon-abcdef12", None),
        ("web:-1", None),
        ("web:1.0", None),
        ("web:01", None),
        ("web:\uff11", None),  # a full-width digit one
        ("web:1 ", None),
        ("telegram:999", None),
        ("sms:1", None),
        ("1", None),
        ("", None),
        ("web:", None),
    ],
)
def test_a_conversation_belongs_only_to_a_verified_living_customer(
    shop: str, sender_id: str, customer_id: int | None
) -> None:
    with session_scope(shop) as session:
        customer = verified_customer(session, sender_id)
        assert (customer.id if customer else None) == customer_id


def test_sender_ids_parse_into_platform_and_user() -> None:
    assert ConversationIdentity.parse("slack:U0AB:CD") == ConversationIdentity(
        Platform.SLACK, "U0AB:CD"
    )
    assert ConversationIdentity.parse("nope") is None


def test_someone_elses_row_looks_missing_and_is_logged(
    shop: str, caplog: pytest.LogCaptureFixture
) -> None:
    with session_scope(shop) as session:
        ana, ben = session.get(Customer, 1), session.get(Customer, 2)
        assert ana is not None and ben is not None
        ticket_id = session.scalars(select(SupportTicket.id)).one()

        assert find_owned(session, ana, Order, 10001) is not None
        with caplog.at_level(logging.WARNING, logger="bot.identity.ownership"):
            assert find_owned(session, ben, Order, 10001) is None
        assert "refused Order lookup" in caplog.text and "customer 2" in caplog.text
        caplog.clear()

        with caplog.at_level(logging.WARNING, logger="bot.identity.ownership"):
            assert find_owned(session, ben, Order, 10999) is None  # nobody's: nothing to log
            assert find_owned(session, ben, Invoice, "INV-000000") is None
        assert caplog.text == ""
        # A row that belongs to nobody (an anonymous visitor's ticket) is nobody's to read.
        assert find_owned(session, ana, SupportTicket, ticket_id) is None

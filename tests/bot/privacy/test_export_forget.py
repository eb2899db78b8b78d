"""Export shows a customer everything Herald holds; forget leaves no trace of it anywhere."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from bot.db import session_scope
from bot.db.demo import load_demo_data
from bot.db.models import (
    ChannelIdentity,
    Customer,
    NotificationPreference,
    Order,
    Platform,
    Refund,
    RefundStatus,
    SupportTicket,
    TicketStatus,
)
from bot.db.session import get_engine
from bot.identity.customers import verified_customer
from bot.identity.models import LinkCode, LinkThrottle
from bot.privacy.export import UnknownCustomer, export_customer
from bot.privacy.forget import FORGOTTEN_NAME, forget_customer, forgotten_email
from bot.privacy.tracker import TRACKER_EVENTS
from bot.proactive.models import (
    BusinessEvent,
    DecisionKind,
    Outreach,
    OutreachDecision,
    OutreachState,
    Urgency,
)
from tests.bot.privacy.traces import traces
from tests.conftest import DEMO_NOW

SUBJECT, NEIGHBOUR = 2, 3
SAID = "my dog Rufus chewed the doorbell cable"


@dataclass
class Subject:
    email: str
    name: str
    sender_ids: list[str]
    external_ids: list[str]


def tracker_event(sender_id: str, text: str, at: float) -> dict[str, object]:
    data = {"event": "user", "text": text, "timestamp": at, "parse_data": {"text": text}}
    return {
        "sender_id": sender_id,
        "type_name": "user",
        "timestamp": at,
        "intent_name": "inform",
        "action_name": None,
        "data": json.dumps(data),
    }


def populate(url: str) -> Subject:
    """A small demo shop where customer 2 uses all three channels and got outreach."""
    now = DEMO_NOW
    with session_scope(url) as session:
        load_demo_data(session, customers=9, now=now)
    with session_scope(url) as session:
        subject = session.get(Customer, SUBJECT)
        assert subject is not None
        telegram = session.scalars(
            select(ChannelIdentity).where(
                ChannelIdentity.customer_id == SUBJECT,
                ChannelIdentity.platform == Platform.TELEGRAM,
            )
        ).one()
        slack = ChannelIdentity(
            platform=Platform.SLACK, external_id="U0SUBJECT2", customer_id=SUBJECT, verified=True
        )
        session.add(slack)
        order = session.scalars(select(Order).where(Order.customer_id == SUBJECT)).first()
        neighbour_order = session.scalars(
            select(Order).where(Order.customer_id == NEIGHBOUR)
        ).first()
        assert order is not None and neighbour_order is not None
        session.add_all(
            [
                NotificationPreference(customer_id=SUBJECT, topic="shipping", opted_out=True),
                SupportTicket(
                    customer_id=SUBJECT,
                    subject="Doorbell",
                    summary=SAID,
                    status=TicketStatus.OPEN,
                    channel="telegram",
                    sender_id=telegram.sender_id,
                    opened_at=now,
                ),
                Refund(
                    order_number=order.number,
                    amount=Decimal("10.00"),
                    status=RefundStatus.REQUESTED,
                    reason=SAID,
                    requested_at=now,
                ),
                LinkCode(
                    platform=Platform.SLACK,
                    external_id="U0SUBJECT2",
                    customer_id=SUBJECT,
                    code_hash="0" * 64,
                    created_at=now,
                    expires_at=now + timedelta(minutes=10),
                ),
                LinkThrottle(
                    platform=Platform.SLACK,
                    external_id="U0SUBJECT2",
                    failed_attempts=1,
                    code_requests=1,
                    updated_at=now,
                ),
            ]
        )
        paid = BusinessEvent(
            kind="order.paid",
            request_hash="a" * 64,
            source="api",
            data={"order_number": order.number},
            occurred_at=now,
            received_at=now,
        )
        outage = BusinessEvent(
            kind="outage.opened",
            request_hash="b" * 64,
            source="api",
            data={"services": ["camera-cloud"], "title": "Cameras offline"},
            occurred_at=now,
            received_at=now,
        )
        session.add_all([paid, outage])
        session.flush()
        for customer_id, event, sender in (
            (SUBJECT, paid, telegram.sender_id),
            (SUBJECT, outage, telegram.sender_id),
            (NEIGHBOUR, outage, f"web:{NEIGHBOUR}"),
        ):
            outreach = Outreach(
                customer_id=customer_id,
                event_id=event.id,
                topic="shipping",
                urgency=Urgency.NORMAL,
                dedup_key=f"{event.kind}:{customer_id}",
                payload={"order_number": order.number},
                state=OutreachState.SENT,
                not_before=now,
                next_attempt_at=now,
                platform=Platform.TELEGRAM,
                sender_id=sender,
                created_at=now,
                sent_at=now,
            )
            session.add(outreach)
            session.flush()
            session.add(
                OutreachDecision(
                    outreach_id=outreach.id, at=now, kind=DecisionKind.SEND, reason="ok"
                )
            )
        result = Subject(
            email=subject.email,
            name=subject.name,
            sender_ids=[f"web:{SUBJECT}", telegram.sender_id, slack.sender_id],
            external_ids=[telegram.external_id, slack.external_id],
        )
    engine = get_engine(url)
    TRACKER_EVENTS.create(engine, checkfirst=True)
    at = time.time()
    with engine.begin() as connection:
        rows = [tracker_event(s, f"{SAID} ({s}) {result.email}", at) for s in result.sender_ids]
        rows.append(tracker_event(f"web:{NEIGHBOUR}", "where is my order", at))
        connection.execute(sa.insert(TRACKER_EVENTS), rows)
    return result


def counts(url: str, customer_id: int) -> dict[str, int]:
    with session_scope(url) as session:
        return {
            "orders": session.scalar(
                select(func.count()).select_from(Order).where(Order.customer_id == customer_id)
            )
            or 0,
            "identities": session.scalar(
                select(func.count())
                .select_from(ChannelIdentity)
                .where(ChannelIdentity.customer_id == customer_id)
            )
            or 0,
            "outreach": session.scalar(
                select(func.count())
                .select_from(Outreach)
                .where(Outreach.customer_id == customer_id)
            )
            or 0,
        }


def test_export_holds_everything_about_the_customer_and_nothing_else(database: str) -> None:
    subject = populate(database)

    with session_scope(database) as session:
        document = export_customer(session, get_engine(database), SUBJECT)
    text = json.dumps(document)

    assert document["customer"]["email"] == subject.email
    records = document["records"]
    for table in (
        "addresses",
        "payment_methods",
        "channel_identities",
        "orders",
        "order_lines",
        "invoices",
        "payments",
        "refunds",
        "support_tickets",
        "notification_preferences",
        "link_codes",
        "link_throttles",
        "outreach",
        "outreach_decisions",
        "business_events",
    ):
        assert records.get(table), f"export lacks {table}"
    assert {i["external_id"] for i in records["channel_identities"]} >= set(subject.external_ids)
    assert all(o["customer_id"] == SUBJECT for o in records["orders"])
    assert {e["kind"] for e in records["business_events"]} == {"order.paid"}
    assert len(records["outreach"]) == 2
    assert "code_hash" not in records["link_codes"][0]
    assert set(document["conversations"]) == set(subject.sender_ids)
    for sender in subject.sender_ids:
        (event,) = document["conversations"][sender]
        assert event["type"] == "user" and SAID in event["data"]["text"]
    assert f"web:{NEIGHBOUR}" not in text
    json.loads(text)  # plain JSON all the way down


def test_forget_leaves_no_trace_and_spares_everyone_else(database: str) -> None:
    subject = populate(database)
    neighbour_before = counts(database, NEIGHBOUR)
    subject_before = counts(database, SUBJECT)
    needles = [subject.email, subject.name, SAID, *subject.sender_ids, *subject.external_ids]
    assert traces(database, needles)  # the scan does find them while they are there

    with session_scope(database) as session:
        report = forget_customer(session, get_engine(database), SUBJECT, now=DEMO_NOW)

    assert traces(database, needles) == []
    assert report.tracker_events == 3
    assert report.deleted["channel_identities"] == 3
    assert report.anonymised["orders"] >= 1
    # The books keep the orders, against a customer with nothing personal left.
    with session_scope(database) as session:
        customer = session.get(Customer, SUBJECT)
        assert customer is not None
        assert (customer.name, customer.email) == (FORGOTTEN_NAME, forgotten_email(SUBJECT))
        assert customer.forgotten_at == DEMO_NOW
        assert session.scalars(select(LinkThrottle)).all() == []
        for sender in subject.sender_ids:
            assert verified_customer(session, sender) is None
        events = session.scalars(select(BusinessEvent.kind)).all()
        assert events == ["outage.opened"]  # still needed by the neighbour's outreach
    assert counts(database, SUBJECT) == {
        "orders": subject_before["orders"],
        "identities": 0,
        "outreach": 0,
    }
    assert counts(database, NEIGHBOUR) == neighbour_before
    with get_engine(database).connect() as connection:
        left = connection.execute(sa.select(TRACKER_EVENTS.c.sender_id)).scalars().all()
    assert left == [f"web:{NEIGHBOUR}"]

    # Running it again is harmless, and an export now shows only the anonymised shell.
    with session_scope(database) as session:
        again = forget_customer(session, get_engine(database), SUBJECT)
        document = export_customer(session, get_engine(database), SUBJECT)
    assert again.tracker_events == 0 and not any(again.deleted.values())
    assert document["conversations"] == {}
    assert document["customer"]["name"] == FORGOTTEN_NAME


def test_an_unknown_customer_is_refused(database: str) -> None:
    with session_scope(database) as session, pytest.raises(UnknownCustomer):
        export_customer(session, get_engine(database), 999)
    with session_scope(database) as session, pytest.raises(UnknownCustomer):
        forget_customer(session, get_engine(database), 999)

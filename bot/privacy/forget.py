"""`herald customer forget ID`: erase a customer's personal data, conversations included.

What stays is what the shop must keep for its books, with nothing personal left on it:
orders, their lines, shipments, refunds, invoices, payments and subscriptions, tied to a
customer row whose name and email are replaced and whose `forgotten_at` is set. The
rest goes: addresses, payment methods, chat identities, preferences, tickets, link
codes, outreach and its history, business events about them, and every tracker event
of every conversation they had. With no identity left and `forgotten_at` set, nothing
can reach them again: `verified_customer` refuses them and outreach has nowhere to go.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, Table
from sqlalchemy.orm import Session

from bot.db.all_models import Base
from bot.privacy.export import UnknownCustomer
from bot.privacy.holdings import Holdings, Key, find_holdings
from bot.privacy.tracker import delete_conversations

logger = logging.getLogger(__name__)

# Business records kept (anonymised) for accounting; everything else found is deleted.
RETAINED_TABLES = frozenset(
    {
        "customers",
        "orders",
        "order_lines",
        "shipments",
        "shipment_events",
        "refunds",
        "invoices",
        "payments",
        "subscriptions",
    }
)
# Free text the customer may have typed into a retained record.
SCRUBBED_COLUMNS = {"refunds": ("reason",), "payments": ("failure_reason",)}
FORGOTTEN_NAME = "Forgotten customer"


def forgotten_email(customer_id: int) -> str:
    # .invalid can never be delivered to (RFC 2606) and keeps the column unique.
    return f"forgotten-{customer_id}@forgotten.invalid"


@dataclass
class ForgetReport:
    customer_id: int
    deleted: dict[str, int] = field(default_factory=dict)
    anonymised: dict[str, int] = field(default_factory=dict)
    tracker_events: int = 0
    conversations: int = 0

    def summary(self) -> str:
        gone = ", ".join(f"{n} {t}" for t, n in sorted(self.deleted.items()) if n) or "nothing"
        kept = ", ".join(f"{n} {t}" for t, n in sorted(self.anonymised.items()) if n)
        return (
            f"customer {self.customer_id} forgotten: deleted {gone}; "
            f"{self.tracker_events} conversation events in {self.conversations} conversations; "
            f"kept for the books, anonymised: {kept or 'nothing'}"
        )


def forget_customer(
    session: Session, tracker_engine: Engine, customer_id: int, now: datetime | None = None
) -> ForgetReport:
    """Erase what Herald holds about a customer; safe to run again (it finds less each time).

    Conversations go first: if anything fails later, the identities that name them are
    still there for the next run to find.
    """
    now = now or datetime.now(UTC)
    holdings = find_holdings(session, customer_id)
    if holdings is None:
        raise UnknownCustomer(customer_id)
    report = ForgetReport(customer_id, conversations=len(holdings.sender_ids))
    report.tracker_events = delete_conversations(tracker_engine, holdings.sender_ids)

    doomed = {
        name: set(rows) for name, rows in holdings.rows.items() if name not in RETAINED_TABLES
    }
    _keep_shared_business_events(session, holdings, doomed)
    _release_references(session, holdings, doomed)
    for table in reversed(Base.metadata.sorted_tables):
        keys = doomed.get(table.name)
        if keys:
            report.deleted[table.name] = _delete(session, table, keys)
    for name, columns in SCRUBBED_COLUMNS.items():
        scrubbed = Base.metadata.tables.get(name)
        kept = set(holdings.rows.get(name, {}))
        if scrubbed is not None and kept:
            _update(session, scrubbed, kept, dict.fromkeys(columns))
    for name in RETAINED_TABLES - {"customers"}:
        if holdings.rows.get(name):
            report.anonymised[name] = len(holdings.rows[name])

    customers = Base.metadata.tables["customers"]
    session.execute(
        sa.update(customers)
        .where(customers.c.id == customer_id)
        .values(
            name=FORGOTTEN_NAME,
            email=forgotten_email(customer_id),
            timezone="UTC",
            language="en",
            forgotten_at=now,
        )
    )
    session.flush()
    logger.info("customer %s forgotten", customer_id)
    return report


def _key_filter(table: Table, keys: set[Key]) -> sa.ColumnElement[bool]:
    columns = list(table.primary_key.columns)
    if len(columns) == 1:
        return columns[0].in_([key[0] for key in keys])
    return sa.tuple_(*columns).in_(list(keys))


def _delete(session: Session, table: Table, keys: set[Key]) -> int:
    result = session.connection().execute(sa.delete(table).where(_key_filter(table, keys)))
    return int(result.rowcount or 0)


def _update(session: Session, table: Table, keys: set[Key], values: dict[str, Any]) -> None:
    session.execute(sa.update(table).where(_key_filter(table, keys)).values(**values))


def _keep_shared_business_events(
    session: Session, holdings: Holdings, doomed: dict[str, set[Key]]
) -> None:
    """A business event other customers' outreach still points at is not theirs alone."""
    events = Base.metadata.tables.get("business_events")
    outreach = Base.metadata.tables.get("outreach")
    if events is None or outreach is None or not doomed.get(events.name):
        return
    event_ids = {key[0] for key in doomed[events.name]}
    shared = session.scalars(
        sa.select(outreach.c.event_id).where(
            outreach.c.event_id.in_(event_ids), outreach.c.customer_id != holdings.customer_id
        )
    ).all()
    doomed[events.name] -= {(event_id,) for event_id in shared}


def _release_references(session: Session, holdings: Holdings, doomed: dict[str, set[Key]]) -> None:
    """Point rows that stay away from rows that go (an order's address, a payment's card).

    A row that must go with what it references is already in `doomed`; a kept row with
    a required reference to a doomed row would be a modelling error, so it fails loudly.
    """
    for table in Base.metadata.sorted_tables:
        for foreign_key in table.foreign_keys:
            parent = foreign_key.column.table
            keys = doomed.get(parent.name)
            if not keys:
                continue
            rows = holdings.rows[parent.name]
            values = {rows[key][foreign_key.column.name] for key in keys}
            referencing = sa.and_(foreign_key.parent.in_(list(values)))
            if doomed.get(table.name):
                referencing = sa.and_(referencing, sa.not_(_key_filter(table, doomed[table.name])))
            if foreign_key.parent.nullable:
                session.execute(
                    sa.update(table).where(referencing).values({foreign_key.parent.name: None})
                )
                continue
            left = session.execute(
                sa.select(sa.func.count()).select_from(table).where(referencing)
            ).scalar_one()
            if left:
                raise RuntimeError(
                    f"{left} {table.name} rows that are kept require {parent.name} rows "
                    "that are being erased"
                )

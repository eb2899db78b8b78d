"""Find every row Herald holds about one customer, across every table, present and future.

Starting from the customer row, it follows foreign keys to the rows that hang off it
(orders, then their lines, shipments, invoices, payments, outreach, decisions ...), then
adds rows that name the customer without a foreign key: a `customer_id` or a
`sender_id` column, linking limits of their chat accounts, and business events about
their orders, invoices, subscriptions or tickets. New tables are covered without
changes here as long as they reference what they are about.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Table
from sqlalchemy.orm import Session

from bot.db.all_models import Base

Key = tuple[Any, ...]
_CHUNK = 500


@dataclass
class Holdings:
    """The rows found, by table, keyed by primary key; and the customer's conversation ids."""

    customer_id: int
    rows: dict[str, dict[Key, dict[str, Any]]] = field(default_factory=dict)
    sender_ids: set[str] = field(default_factory=set)

    def add(self, table: Table, row: dict[str, Any]) -> bool:
        key = tuple(row[column.name] for column in table.primary_key.columns)
        found = self.rows.setdefault(table.name, {})
        if key in found:
            return False
        found[key] = dict(row)
        return True

    def values(self, table: Table, column: str) -> set[Any]:
        return {
            row[column]
            for row in self.rows.get(table.name, {}).values()
            if row.get(column) is not None
        }

    def keys(self, table: Table) -> set[Key]:
        return set(self.rows.get(table.name, {}))


def _table(name: str) -> Table | None:
    return Base.metadata.tables.get(name)


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    items = list(values)
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _select_in(
    session: Session, table: Table, column: sa.ColumnElement[Any], values: set[Any]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(values):
        rows += [
            dict(r) for r in session.execute(sa.select(table).where(column.in_(chunk))).mappings()
        ]
    return rows


def find_holdings(session: Session, customer_id: int) -> Holdings | None:
    """Everything about this customer, or None if there is no such customer."""
    customers = Base.metadata.tables["customers"]
    row = (
        session.execute(sa.select(customers).where(customers.c.id == customer_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    holdings = Holdings(customer_id)
    holdings.add(customers, dict(row))
    _follow_foreign_keys(session, holdings)
    _add_unreferenced(session, holdings)
    _follow_foreign_keys(session, holdings)
    holdings.sender_ids = _sender_ids(holdings)
    _add_by_sender_id(session, holdings)
    _add_link_throttles(session, holdings)
    _add_business_events(session, holdings)
    _follow_foreign_keys(session, holdings)
    return holdings


def _follow_foreign_keys(session: Session, holdings: Holdings) -> None:
    """Add rows referencing rows already found, until nothing new turns up."""
    asked: dict[tuple[str, str], set[Any]] = {}
    changed = True
    while changed:
        changed = False
        for table in Base.metadata.sorted_tables:
            for foreign_key in table.foreign_keys:
                parent = foreign_key.column.table
                values = holdings.values(parent, foreign_key.column.name)
                memo = (table.name, foreign_key.parent.name)
                new = values - asked.get(memo, set())
                if not new:
                    continue
                asked.setdefault(memo, set()).update(new)
                for child in _select_in(session, table, foreign_key.parent, new):
                    changed |= holdings.add(table, child)


def _add_unreferenced(session: Session, holdings: Holdings) -> None:
    """Rows with a customer_id column that is not a foreign key (kept for speed or history)."""
    for table in Base.metadata.sorted_tables:
        column = table.columns.get("customer_id")
        if column is None or table.name == "customers" or column.foreign_keys:
            continue
        for row in _select_in(session, table, column, {holdings.customer_id}):
            holdings.add(table, row)


def _sender_ids(holdings: Holdings) -> set[str]:
    """Every conversation id the customer had: web chat, each chat account, and any recorded."""
    ids = {f"web:{holdings.customer_id}"}
    identities = _table("channel_identities")
    if identities is not None:
        for row in holdings.rows.get(identities.name, {}).values():
            platform = row["platform"]
            ids.add(f"{getattr(platform, 'value', platform)}:{row['external_id']}")
    for table in Base.metadata.sorted_tables:
        if "sender_id" in table.columns:
            ids |= {str(v) for v in holdings.values(table, "sender_id")}
    return ids


def _add_by_sender_id(session: Session, holdings: Holdings) -> None:
    for table in Base.metadata.sorted_tables:
        column = table.columns.get("sender_id")
        if column is None:
            continue
        for row in _select_in(session, table, column, holdings.sender_ids):
            holdings.add(table, row)


def _add_link_throttles(session: Session, holdings: Holdings) -> None:
    throttles = _table("link_throttles")
    identities = _table("channel_identities")
    if throttles is None or identities is None:
        return
    for identity in holdings.rows.get(identities.name, {}).values():
        rows = session.execute(
            sa.select(throttles).where(
                throttles.c.platform == identity["platform"],
                throttles.c.external_id == identity["external_id"],
            )
        ).mappings()
        for row in rows:
            holdings.add(throttles, dict(row))


# Fields of business events that point at one customer's records, and the table they name.
_EVENT_REFERENCES = (
    ("customer_id", "customers", "id", int),
    ("order_number", "orders", "number", int),
    ("subscription_id", "subscriptions", "id", int),
    ("invoice_number", "invoices", "number", str),
    ("ticket_id", "support_tickets", "id", int),
)


def _add_business_events(session: Session, holdings: Holdings) -> None:
    """Business events about this customer's records (their data names them by number)."""
    events = _table("business_events")
    if events is None or "data" not in events.columns:
        return
    data = events.c.data
    for field_name, table_name, column, kind in _EVENT_REFERENCES:
        table = _table(table_name)
        if table is None:
            continue
        values = holdings.values(table, column)
        if not values:
            continue
        extract = data[field_name].as_integer() if kind is int else data[field_name].as_string()
        for row in _select_in(session, events, extract, {kind(v) for v in values}):
            holdings.add(events, row)

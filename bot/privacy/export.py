"""`herald customer export ID`: everything Herald holds about a customer, as one JSON document."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.privacy.holdings import find_holdings
from bot.privacy.tracker import conversation_events

EXPORT_FORMAT = "herald-customer-export/1"
# Never part of an export: a code hash is useless to the customer and helps an attacker.
_WITHHELD = {"link_codes": {"code_hash"}}


class UnknownCustomer(LookupError):
    """No customer has this id."""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def export_customer(
    session: Session, tracker_engine: Engine, customer_id: int, now: datetime | None = None
) -> dict[str, Any]:
    """The customer's profile, every related record, and their conversations with Herald."""
    holdings = find_holdings(session, customer_id)
    if holdings is None:
        raise UnknownCustomer(customer_id)
    records: dict[str, list[dict[str, Any]]] = {}
    for table, rows in sorted(holdings.rows.items()):
        if table == "customers":
            continue
        withheld = _WITHHELD.get(table, set())
        records[table] = [
            {k: _plain(v) for k, v in row.items() if k not in withheld}
            for _, row in sorted(rows.items(), key=lambda item: str(item[0]))
        ]
    (profile,) = holdings.rows["customers"].values()
    return {
        "format": EXPORT_FORMAT,
        "exported_at": (now or datetime.now(UTC)).isoformat(),
        "customer": {k: _plain(v) for k, v in profile.items()},
        "records": records,
        "conversations": conversation_events(tracker_engine, holdings.sender_ids),
    }

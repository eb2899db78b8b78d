"""Rasa's SQL tracker store, read and pruned from our side: the `events` table.

Rasa (SQLAlchemy 1.4, Python 3.10) owns this table and creates it on start; we never
import Rasa, so the columns are mirrored here and the table may not exist yet.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

TRACKER_EVENTS = sa.Table(
    "events",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)
# Large IN lists are split so neither database chokes on one statement.
_CHUNK = 500


def has_tracker_store(connection: Connection) -> bool:
    return sa.inspect(connection).has_table(TRACKER_EVENTS.name)


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    items = sorted(set(values))
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def conversation_events(
    engine: Engine, sender_ids: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """Every stored event of these conversations, oldest first, as Rasa wrote them."""
    conversations: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as connection:
        if not has_tracker_store(connection):
            return conversations
        for chunk in _chunks(sender_ids):
            rows = connection.execute(
                sa.select(TRACKER_EVENTS)
                .where(TRACKER_EVENTS.c.sender_id.in_(chunk))
                .order_by(TRACKER_EVENTS.c.id)
            ).mappings()
            for row in rows:
                try:
                    data = json.loads(row["data"]) if row["data"] else None
                except ValueError:
                    data = row["data"]
                conversations.setdefault(row["sender_id"], []).append(
                    {
                        "type": row["type_name"],
                        "at": _time(row["timestamp"]),
                        "intent": row["intent_name"],
                        "action": row["action_name"],
                        "data": data,
                    }
                )
    return conversations


def delete_conversations(engine: Engine, sender_ids: Iterable[str]) -> int:
    """Remove these conversations from the tracker store entirely; how many events went."""
    removed = 0
    with engine.begin() as connection:
        if not has_tracker_store(connection):
            return 0
        for chunk in _chunks(sender_ids):
            result = connection.execute(
                sa.delete(TRACKER_EVENTS).where(TRACKER_EVENTS.c.sender_id.in_(chunk))
            )
            removed += result.rowcount or 0
    return removed


def delete_events_before(engine: Engine, cutoff: datetime) -> int:
    """Remove every event older than `cutoff` (Rasa stores POSIX timestamps)."""
    with engine.begin() as connection:
        if not has_tracker_store(connection):
            return 0
        result = connection.execute(
            sa.delete(TRACKER_EVENTS).where(TRACKER_EVENTS.c.timestamp < cutoff.timestamp())
        )
        return result.rowcount or 0


def _time(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat()

"""The outbox: queue outreach rows (deduplicated, coalesced), claim due ones, record decisions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.db.models import Platform
from bot.proactive.models import (
    DecisionKind,
    Outreach,
    OutreachDecision,
    OutreachState,
    Urgency,
)
from bot.proactive.policy import ThrottlePolicy

# Rows looked up or written per statement: well under SQLite's bound-parameter limit.
CHUNK = 500
WAITING_STATES = (OutreachState.PENDING, OutreachState.DEFERRED)


@dataclass(frozen=True)
class OutreachDraft:
    """An outreach row a rule wants; the outbox decides whether it is new."""

    customer_id: int
    topic: str
    dedup_key: str
    payload: dict[str, Any] = field(default_factory=dict)
    coalesce_key: str | None = None
    # None: as soon as the throttle allows (after the topic's coalescing hold).
    not_before: datetime | None = None
    expires_at: datetime | None = None


def chunks[T](items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert_ignoring_duplicates(session: Session) -> Any:
    """INSERT ... ON CONFLICT (dedup_key) DO NOTHING on either database."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(Outreach).on_conflict_do_nothing(index_elements=["dedup_key"])
    if dialect == "sqlite":
        return sqlite.insert(Outreach).on_conflict_do_nothing(index_elements=["dedup_key"])
    return insert(Outreach)


def record(
    session: Session,
    outreach_id: int,
    kind: DecisionKind,
    reason: str,
    at: datetime,
    *,
    detail: str = "",
    until: datetime | None = None,
    worker: str | None = None,
) -> None:
    session.add(
        OutreachDecision(
            outreach_id=outreach_id,
            kind=kind,
            reason=reason,
            detail=detail[:300],
            at=at,
            until=until,
            worker=worker,
        )
    )


def queue_outreach(
    session: Session,
    drafts: Sequence[OutreachDraft],
    *,
    policy: ThrottlePolicy,
    now: datetime,
    event_id: int | None = None,
) -> list[int]:
    """Insert the drafts that are new (by dedup key) and return their ids.

    A draft with a coalesce key replaces any pending row with the same key: the older
    one is suppressed as superseded, and the new one keeps the older one's not-before,
    so a burst of updates goes out once, when the first one's hold ends, with the
    latest state. Runs in the caller's transaction, which also holds the event row.
    """
    if not drafts:
        return []
    coalesce_keys = sorted({d.coalesce_key for d in drafts if d.coalesce_key})
    waiting: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
    for keys in chunks(coalesce_keys):
        rows = session.execute(
            select(Outreach.coalesce_key, Outreach.id, Outreach.not_before).where(
                Outreach.coalesce_key.in_(keys), Outreach.state.in_(WAITING_STATES)
            )
        )
        for key, outreach_id, not_before in rows:
            waiting[key].append((outreach_id, not_before))

    values = []
    for draft in drafts:
        topic = policy.topic(draft.topic)
        not_before = draft.not_before or now + topic.coalesce_window
        earlier = [nb for _, nb in waiting.get(draft.coalesce_key or "", [])]
        if earlier:
            not_before = min([not_before, *earlier])
        expires_at = draft.expires_at or not_before + topic.expires_after
        values.append(
            {
                "customer_id": draft.customer_id,
                "event_id": event_id,
                "topic": draft.topic,
                "urgency": Urgency.URGENT if topic.urgent else Urgency.NORMAL,
                "dedup_key": draft.dedup_key,
                "coalesce_key": draft.coalesce_key,
                "payload": draft.payload,
                "state": OutreachState.PENDING,
                "not_before": not_before,
                "next_attempt_at": not_before,
                "expires_at": expires_at,
                "attempts": 0,
                "created_at": now,
            }
        )
    statement = _insert_ignoring_duplicates(session).returning(Outreach.id, Outreach.coalesce_key)
    inserted: list[tuple[int, str | None]] = []
    for part in chunks(values, 1000):
        inserted += [(row[0], row[1]) for row in session.execute(statement, list(part))]

    superseded: list[tuple[int, int]] = []
    for new_id, key in inserted:
        superseded += [(old_id, new_id) for old_id, _ in waiting.pop(key or "", [])]
    supersede(session, superseded, now)
    return [new_id for new_id, _ in inserted]


def supersede(
    session: Session, pairs: Sequence[tuple[int, int | None]], now: datetime, reason: str = ""
) -> None:
    """Suppress waiting rows that a newer row (or a newer fact) made pointless."""
    for part in chunks(pairs):
        ids = [old for old, _ in part]
        session.execute(
            update(Outreach)
            .where(Outreach.id.in_(ids), Outreach.state.in_(WAITING_STATES))
            .values(state=OutreachState.SUPPRESSED, lease_until=None, claimed_by=None)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            insert(OutreachDecision),
            [
                {
                    "outreach_id": old,
                    "kind": DecisionKind.SUPPRESS,
                    "reason": "superseded",
                    "detail": reason or f"replaced by outreach #{new} with the latest state",
                    "at": now,
                    "until": None,
                    "worker": None,
                }
                for old, new in part
            ],
        )


@dataclass(frozen=True)
class ClaimedOutreach:
    """A due row this worker now holds, as plain values (the claim's session is gone)."""

    id: int
    customer_id: int
    topic: str
    urgent: bool
    dedup_key: str
    expires_at: datetime | None
    attempts: int
    sent_at: datetime | None
    delivered_at: datetime | None
    platform: Platform | None
    sender_id: str | None
    recovered: bool  # its previous holder's lease ran out


def claim_due(
    session: Session, *, now: datetime, worker: str, limit: int, lease: timedelta
) -> list[ClaimedOutreach]:
    """Claim up to `limit` due rows for `worker` until `now + lease`.

    On PostgreSQL the inner SELECT locks with FOR UPDATE SKIP LOCKED, so several workers
    claim disjoint rows without waiting on each other; SQLite serialises writers, so the
    single UPDATE is atomic there too. Rows whose holder's lease ran out (a worker that
    died mid-batch) are due again.
    """
    due = or_(
        and_(Outreach.state.in_(WAITING_STATES), Outreach.next_attempt_at <= now),
        and_(Outreach.state == OutreachState.SENDING, Outreach.lease_until < now),
    )
    candidates = (
        select(Outreach.id)
        .where(due)
        # Urgent first, then oldest due first.
        .order_by(Outreach.urgency.desc(), Outreach.next_attempt_at, Outreach.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(
        update(Outreach)
        .where(Outreach.id.in_(candidates.scalar_subquery()))
        .values(state=OutreachState.SENDING, claimed_by=worker, lease_until=now + lease)
        .returning(
            Outreach.id,
            Outreach.customer_id,
            Outreach.topic,
            Outreach.urgency,
            Outreach.dedup_key,
            Outreach.expires_at,
            Outreach.attempts,
            Outreach.sent_at,
            Outreach.delivered_at,
            Outreach.platform,
            Outreach.sender_id,
        )
        .execution_options(synchronize_session=False)
    ).all()
    return [
        ClaimedOutreach(
            id=row.id,
            customer_id=row.customer_id,
            topic=row.topic,
            urgent=row.urgency == Urgency.URGENT,
            dedup_key=row.dedup_key,
            expires_at=row.expires_at,
            attempts=row.attempts,
            sent_at=row.sent_at,
            delivered_at=row.delivered_at,
            platform=row.platform,
            sender_id=row.sender_id,
            recovered=row.sent_at is not None,
        )
        for row in rows
    ]


def confirm_delivery(
    session: Session, outreach_id: int, sender_id: str, topic: str, now: datetime
) -> Outreach | None:
    """Called by the EXTERNAL_* action: the row, if this is its one and only message.

    The conditional UPDATE is the idempotency point of delivery. A dispatcher that died
    after Rasa ran the action, a second worker that took over an expired lease, or a
    customer typing the intent's payload by hand all reach this line; only the first
    call for a row the dispatcher approved for this very conversation, with the intent
    of its own topic, gets the row back.
    """
    claimed = session.execute(
        update(Outreach)
        .where(
            Outreach.id == outreach_id,
            Outreach.sender_id == sender_id,
            Outreach.topic == topic,
            Outreach.state == OutreachState.SENDING,
            Outreach.sent_at.is_not(None),
            Outreach.delivered_at.is_(None),
        )
        .values(delivered_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(Outreach, outreach_id)


def pending_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Outreach)
            .where(Outreach.state.in_([*WAITING_STATES, OutreachState.SENDING]))
        )
        or 0
    )


def dead_letter_identity(session: Session, sender_id: str, now: datetime) -> int:
    """Outreach bound for a conversation the platform says is gone: dead, with the reason."""
    rows = session.scalars(
        select(Outreach).where(
            Outreach.sender_id == sender_id,
            Outreach.state.in_([*WAITING_STATES, OutreachState.SENDING]),
        )
    ).all()
    for row in rows:
        row.state = OutreachState.DEAD
        row.claimed_by, row.lease_until = None, None
        row.delivered_at = None
        row.last_error = "the platform reported the user unreachable"
        record(session, row.id, DecisionKind.DEAD, "identity_unreachable", now)
    return len(rows)

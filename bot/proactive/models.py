"""Tables of the proactive side: business events, the outreach outbox and its decisions."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.db.models import Base, Customer, Platform, _enum


class OutreachState(enum.StrEnum):
    PENDING = "pending"  # waiting for its not-before time or the dispatcher
    SENDING = "sending"  # claimed by a dispatcher (lease); approved once sent_at is set
    SENT = "sent"
    DEFERRED = "deferred"  # the throttle said "later"; next_attempt_at says when
    SUPPRESSED = "suppressed"  # the throttle said "never" (opt-out, superseded, ...)
    EXPIRED = "expired"  # stale before it could go out
    DEAD = "dead"  # delivery failed for good


# States a row never leaves.
FINAL_STATES = frozenset(
    {
        OutreachState.SENT,
        OutreachState.SUPPRESSED,
        OutreachState.EXPIRED,
        OutreachState.DEAD,
    }
)


class Urgency(enum.StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"  # outage, security, failed payment: exempt from caps and quiet hours


class DecisionKind(enum.StrEnum):
    SEND = "send"  # the throttle approved it and delivery started
    DELIVERED = "delivered"  # Rasa accepted it for the customer's channel
    DEFER = "defer"
    SUPPRESS = "suppress"
    EXPIRE = "expire"
    RETRY = "retry"  # a delivery attempt failed and will be tried again
    DEAD = "dead"


class BusinessEvent(Base):
    """Something that happened in the shop or the cloud, as it arrived (API, CLI or scan).

    Named so that it cannot collide with Rasa's tracker-store table `events`, which
    lives in the same database.
    """

    __tablename__ = "business_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    # The sender's Idempotency-Key (or event id): a repeat has no second effect.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # Hash of the canonical request, so a reused key with a different body is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # api, cli, scan
    data: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    outreach_count: Mapped[int] = mapped_column(default=0)


class Outreach(Base):
    """One message Herald intends to send one customer: the durable outbox row."""

    __tablename__ = "outreach"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed together with sent_at below, which also serves lookups by customer.
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("business_events.id"), index=True)
    topic: Mapped[str] = mapped_column(String(32))
    urgency: Mapped[Urgency] = mapped_column(_enum(Urgency))
    # One message per event per customer, however often the event arrives.
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    # Rows sharing this key (e.g. one order's shipping updates) coalesce into the newest.
    coalesce_key: Mapped[str | None] = mapped_column(String(200), index=True)
    # Facts the message is built from (order number, incident id, ...); live data fills in.
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[OutreachState] = mapped_column(_enum(OutreachState))
    not_before: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    # A dispatcher's claim; another may take the row over once the lease has run out.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    # Where it went (or would have gone): chosen at dispatch time, not at creation.
    platform: Mapped[Platform | None] = mapped_column(_enum(Platform))
    sender_id: Mapped[str | None] = mapped_column(String(160))
    created_at: Mapped[datetime]
    # When the throttle approved it (counts against caps from then on).
    sent_at: Mapped[datetime | None]
    # Set by the EXTERNAL_* action as it builds the message: at most one message per row.
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))

    customer: Mapped[Customer] = relationship()
    event: Mapped[BusinessEvent | None] = relationship()
    decisions: Mapped[list[OutreachDecision]] = relationship(
        back_populates="outreach", order_by="OutreachDecision.id"
    )

    @property
    def urgent(self) -> bool:
        return self.urgency is Urgency.URGENT


class OutreachDecision(Base):
    """Every decision about an outreach row, with its reason: the throttle's audit trail."""

    __tablename__ = "outreach_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    outreach_id: Mapped[int] = mapped_column(ForeignKey("outreach.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[DecisionKind] = mapped_column(_enum(DecisionKind))
    # A short machine-readable reason (opted_out, quiet_hours, cap_1_per_1d, ...).
    reason: Mapped[str] = mapped_column(String(60))
    detail: Mapped[str] = mapped_column(String(300), default="")
    # For a deferral or retry: when the row is due again.
    until: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(64))

    outreach: Mapped[Outreach] = relationship(back_populates="decisions")


# The dispatcher's claim query walks this index: due rows by state and time.
Index("ix_outreach_state_next_attempt_at", Outreach.state, Outreach.next_attempt_at)
# Caps and cooldowns read a customer's recent sends.
Index("ix_outreach_customer_id_sent_at", Outreach.customer_id, Outreach.sent_at)
Index("ix_outreach_decisions_kind_at", OutreachDecision.kind, OutreachDecision.at)

"""proactive outbox and events: business events, outreach rows and their decisions

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str) -> sa.Enum:
    # Same shape as bot.db.models._enum: a CHECK constraint, not a native enum type.
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    op.create_table(
        "business_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outreach_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_events")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_business_events_idempotency_key")),
    )
    op.create_table(
        "outreach",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("urgency", _enum("urgency", "normal", "urgent"), nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("coalesce_key", sa.String(length=200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            _enum(
                "outreachstate",
                "pending",
                "sending",
                "sent",
                "deferred",
                "suppressed",
                "expired",
                "dead",
            ),
            nullable=False,
        ),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("platform", _enum("platform", "web", "slack", "telegram"), nullable=True),
        sa.Column("sender_id", sa.String(length=160), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_outreach_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["business_events.id"], name=op.f("fk_outreach_event_id_business_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_outreach_dedup_key")),
    )
    with op.batch_alter_table("outreach", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outreach_coalesce_key"), ["coalesce_key"])
        batch_op.create_index("ix_outreach_customer_id_sent_at", ["customer_id", "sent_at"])
        batch_op.create_index(batch_op.f("ix_outreach_event_id"), ["event_id"])
        batch_op.create_index("ix_outreach_state_next_attempt_at", ["state", "next_attempt_at"])

    op.create_table(
        "outreach_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outreach_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "kind",
            _enum(
                "decisionkind",
                "send",
                "delivered",
                "defer",
                "suppress",
                "expire",
                "retry",
                "dead",
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=60), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["outreach_id"],
            ["outreach.id"],
            name=op.f("fk_outreach_decisions_outreach_id_outreach"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_decisions")),
    )
    with op.batch_alter_table("outreach_decisions", schema=None) as batch_op:
        batch_op.create_index("ix_outreach_decisions_kind_at", ["kind", "at"])
        batch_op.create_index(batch_op.f("ix_outreach_decisions_outreach_id"), ["outreach_id"])


def downgrade() -> None:
    with op.batch_alter_table("outreach_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outreach_decisions_outreach_id"))
        batch_op.drop_index("ix_outreach_decisions_kind_at")
    op.drop_table("outreach_decisions")
    with op.batch_alter_table("outreach", schema=None) as batch_op:
        batch_op.drop_index("ix_outreach_state_next_attempt_at")
        batch_op.drop_index(batch_op.f("ix_outreach_event_id"))
        batch_op.drop_index("ix_outreach_customer_id_sent_at")
        batch_op.drop_index(batch_op.f("ix_outreach_coalesce_key"))
    op.drop_table("outreach")
    op.drop_table("business_events")

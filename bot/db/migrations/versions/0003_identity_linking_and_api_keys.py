"""identity linking: one-time link codes and per-chat attempt limits

API keys are not stored: they come from the environment (bot/api/auth.py).

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _platform() -> sa.Enum:
    return sa.Enum(
        "web",
        "slack",
        "telegram",
        name="platform",
        native_enum=False,
        create_constraint=True,
        length=32,
    )


def upgrade() -> None:
    op.create_table(
        "link_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", _platform(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_link_codes_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_codes")),
    )
    with op.batch_alter_table("link_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_codes_customer_id"), ["customer_id"])
        batch_op.create_index(batch_op.f("ix_link_codes_external_id"), ["external_id"])

    op.create_table(
        "link_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", _platform(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("code_requests", sa.Integer(), nullable=False),
        sa.Column("requests_window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_throttles")),
        sa.UniqueConstraint("platform", "external_id", name=op.f("uq_link_throttles_platform")),
    )


def downgrade() -> None:
    op.drop_table("link_throttles")
    with op.batch_alter_table("link_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_link_codes_external_id"))
        batch_op.drop_index(batch_op.f("ix_link_codes_customer_id"))
    op.drop_table("link_codes")

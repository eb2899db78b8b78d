"""Tables of account linking: one-time codes sent by email, and per-chat attempt limits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.models import Base, Platform, _enum


class LinkCode(Base):
    """A one-time code emailed to a customer so one chat account can prove it is theirs.

    Only a keyed hash of the code is stored, bound to the chat account that asked for it,
    so a leaked table neither reveals live codes nor lets a code work from another chat.
    """

    __tablename__ = "link_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[Platform] = mapped_column(_enum(Platform))
    external_id: Mapped[str] = mapped_column(String(128), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class LinkThrottle(Base):
    """How often one chat account asked for codes and got them wrong, and any lock-out.

    Kept per chat account, not per customer, and whether or not the email given was
    known, so the limits themselves reveal nothing about who has an account.
    """

    __tablename__ = "link_throttles"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[Platform] = mapped_column(_enum(Platform))
    external_id: Mapped[str] = mapped_column(String(128))
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    code_requests: Mapped[int] = mapped_column(default=0)
    requests_window_start: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

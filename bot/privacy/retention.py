"""Conversation retention: purge tracker events older than HERALD_RETENTION_DAYS, daily.

Link codes and linking limits are short-lived by nature; their leftovers go in the
same sweep so the identity tables never grow into a record of who tried what.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.db import session_scope
from bot.db.session import get_engine
from bot.identity.linking import REQUEST_WINDOW
from bot.identity.models import LinkCode, LinkThrottle
from bot.privacy.tracker import delete_events_before
from bot.settings import Settings

logger = logging.getLogger(__name__)

# How long a used or expired link code is kept, for "why did linking fail" questions.
LINK_CODE_KEEP = timedelta(days=1)
# How often the worker runs the purge.
PURGE_INTERVAL = timedelta(days=1)


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    tracker_events: int
    link_codes: int
    link_throttles: int

    def summary(self) -> str:
        return (
            f"purged {self.tracker_events} conversation events older than "
            f"{self.cutoff:%Y-%m-%d %H:%M} UTC, {self.link_codes} old link codes and "
            f"{self.link_throttles} idle linking limits"
        )


def purge_conversations(
    session: Session, tracker_engine: Engine, days: int, now: datetime | None = None
) -> PurgeReport:
    """Delete conversation events older than `days` days, and stale linking leftovers."""
    if days < 1:
        raise ValueError("retention must be at least one day")
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=days)
    events = delete_events_before(tracker_engine, cutoff)
    codes = session.connection().execute(
        sa.delete(LinkCode).where(LinkCode.expires_at < now - LINK_CODE_KEEP)
    )
    throttles = session.connection().execute(
        sa.delete(LinkThrottle).where(
            sa.or_(LinkThrottle.locked_until.is_(None), LinkThrottle.locked_until < now),
            sa.or_(
                LinkThrottle.requests_window_start.is_(None),
                LinkThrottle.requests_window_start < now - REQUEST_WINDOW,
            ),
            LinkThrottle.updated_at < now - REQUEST_WINDOW,
        )
    )
    report = PurgeReport(cutoff, events, int(codes.rowcount or 0), int(throttles.rowcount or 0))
    logger.info("retention: %s", report.summary())
    return report


def purge_once(settings: Settings) -> PurgeReport:
    """One scheduled purge with the configured retention (the worker runs this daily)."""
    with session_scope(settings.database_url) as session:
        return purge_conversations(
            session, get_engine(settings.tracker_database_url), settings.retention_days
        )

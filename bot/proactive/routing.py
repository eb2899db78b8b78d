"""Which conversation an outreach goes to: the customer's most recently used verified channel."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.db.models import ChannelIdentity, Customer, Platform
from bot.db.session import get_engine
from bot.proactive.outbox import chunks

logger = logging.getLogger(__name__)

# Without any conversation yet, prefer a channel that reaches a phone over web chat,
# which only shows the message the next time the customer opens it.
PLATFORM_PREFERENCE = {Platform.TELEGRAM: 0, Platform.SLACK: 1, Platform.WEB: 2}

# Rasa's SQL tracker store: one row per event. Proactive triggers are user events too,
# with an EXTERNAL_* intent, and are not the customer speaking.
_LAST_USER_MESSAGES = text(
    "SELECT sender_id, MAX(timestamp) FROM events "
    "WHERE sender_id IN :senders AND type_name = 'user' "
    "AND (intent_name IS NULL OR intent_name NOT LIKE 'EXTERNAL%') "
    "GROUP BY sender_id"
).bindparams(bindparam("senders", expanding=True))


@dataclass(frozen=True)
class Route:
    identity_id: int
    platform: Platform
    sender_id: str


def last_user_messages(tracker_url: str | None, sender_ids: Sequence[str]) -> dict[str, datetime]:
    """When each conversation last had a message from the customer, from Rasa's tracker store.

    The tracker store shares Herald's database by default; if it is elsewhere or not
    created yet, routing falls back to the platform preference alone.
    """
    if not tracker_url or not sender_ids:
        return {}
    engine = get_engine(tracker_url)
    found: dict[str, datetime] = {}
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("events"):
                return {}
            for part in chunks(sender_ids):
                for sender_id, stamp in connection.execute(
                    _LAST_USER_MESSAGES, {"senders": list(part)}
                ):
                    if stamp is not None:
                        found[sender_id] = datetime.fromtimestamp(float(stamp), UTC)
    except SQLAlchemyError as error:
        logger.warning("cannot read the tracker store for channel recency: %s", error)
        return {}
    return found


def choose_routes(
    session: Session,
    customer_ids: Collection[int],
    *,
    tracker_url: str | None,
    unavailable: Collection[Platform] = (),
) -> dict[int, Route | None]:
    """Each customer's best conversation: verified, reachable, not forgotten, most recent.

    None for a customer Herald must not or cannot message.
    """
    routes: dict[int, Route | None] = dict.fromkeys(customer_ids)
    if not customer_ids:
        return routes
    identities: list[ChannelIdentity] = []
    for part in chunks(sorted(customer_ids)):
        identities += session.scalars(
            select(ChannelIdentity)
            .join(Customer, Customer.id == ChannelIdentity.customer_id)
            .where(
                ChannelIdentity.customer_id.in_(part),
                ChannelIdentity.verified.is_(True),
                ChannelIdentity.unreachable_at.is_(None),
                Customer.forgotten_at.is_(None),
            )
        ).all()
    usable = [i for i in identities if i.platform not in unavailable]
    recency = last_user_messages(tracker_url, [i.sender_id for i in usable])
    epoch = datetime.min.replace(tzinfo=UTC)

    def rank(identity: ChannelIdentity) -> tuple[datetime, int, int]:
        # Most recent conversation first; then the push-capable platforms; then newest link.
        return (
            recency.get(identity.sender_id, epoch),
            -PLATFORM_PREFERENCE[identity.platform],
            identity.id,
        )

    for identity in sorted(usable, key=rank):
        assert identity.customer_id is not None
        # Later (better-ranked) identities overwrite earlier ones.
        routes[identity.customer_id] = Route(identity.id, identity.platform, identity.sender_id)
    return routes

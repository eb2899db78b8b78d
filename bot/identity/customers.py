"""Resolve a conversation to the verified customer behind it; the one door to customer data."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import ChannelIdentity, Customer, Platform

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConversationIdentity:
    """What a Rasa sender id says: which platform, and that platform's user id."""

    platform: Platform
    external_id: str

    @classmethod
    def parse(cls, sender_id: str) -> ConversationIdentity | None:
        platform, sep, external_id = sender_id.partition(":")
        if not sep or not external_id:
            return None
        try:
            return cls(Platform(platform), external_id)
        except ValueError:
            return None


def verified_customer(session: Session, sender_id: str) -> Customer | None:
    """The customer a conversation belongs to, only if that identity is verified.

    Connectors are the only producers of sender ids: web chat uses `web:<customer id>` after
    checking the shop's signed token and `web:anon-...` otherwise; Slack and Telegram use the
    platform's user id, which counts only once the customer linked it.
    """
    identity = ConversationIdentity.parse(sender_id)
    if identity is None:
        return None
    if identity.platform is Platform.WEB:
        # Web chat ids are minted only from a verified shop token; no linking step exists.
        # Only the canonical form the connectors mint ("web:42"): no "web:042", no "web:４２".
        external_id = identity.external_id
        if (
            not (external_id.isascii() and external_id.isdigit())
            or str(int(external_id)) != external_id
        ):
            return None
        customer = session.get(Customer, int(external_id))
        return customer if customer is not None and customer.forgotten_at is None else None
    row = session.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.platform == identity.platform,
            ChannelIdentity.external_id == identity.external_id,
            ChannelIdentity.verified.is_(True),
        )
    )
    if row is None or row.customer is None or row.customer.forgotten_at is not None:
        return None
    return row.customer

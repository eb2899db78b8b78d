"""Point a Herald stack's Telegram and Slack channels at local fake platforms."""

from __future__ import annotations

import requests
from sqlalchemy import select

from bot.db import session_scope
from bot.db.models import ChannelIdentity, Platform
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram

SLACK_SIGNING_SECRET = "e2e-slack-signing-secret-0123456789abcdef"
# Short spacing so a test of 100 messages takes seconds; the default limits (1 a second per
# chat, 30 a second overall) are tested on a virtual clock in tests/connectors/test_pacing.py.
E2E_CHAT_INTERVAL = "0.02"


def channel_env(telegram: FakeTelegram, slack: FakeSlack) -> dict[str, str]:
    """Environment that switches both channels on; the webhook secret is a generated one."""
    return {
        "HERALD_TELEGRAM_TOKEN": telegram.token,
        "HERALD_TELEGRAM_API_URL": telegram.api_url,
        "HERALD_TELEGRAM_MODE": "webhook",
        "HERALD_TELEGRAM_CHAT_INTERVAL": E2E_CHAT_INTERVAL,
        "HERALD_SLACK_BOT_TOKEN": slack.token,
        "HERALD_SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
        "HERALD_SLACK_API_URL": slack.api_url,
        "HERALD_SLACK_CHANNEL_INTERVAL": E2E_CHAT_INTERVAL,
    }


def trigger_intent(
    rasa_url: str, api_token: str, sender_id: str, intent: str, output_channel: str
) -> requests.Response:
    """What proactive delivery does: make Rasa act on an intent and say it on a channel."""
    return requests.post(
        f"{rasa_url}/conversations/{sender_id}/trigger_intent",
        params={"output_channel": output_channel, "token": api_token},
        json={"name": intent, "entities": {}},
        timeout=120,
    )


def linked_identities(database_url: str, platform: Platform) -> list[tuple[int, str]]:
    """(customer id, external id) of verified identities on a platform in the demo shop."""
    with session_scope(database_url) as session:
        rows = session.scalars(
            select(ChannelIdentity)
            .where(ChannelIdentity.platform == platform, ChannelIdentity.verified.is_(True))
            .order_by(ChannelIdentity.id)
        ).all()
        return [(row.customer_id, row.external_id) for row in rows if row.customer_id]


def unreachable_at(database_url: str, platform: Platform, external_id: str) -> object:
    with session_scope(database_url) as session:
        return session.scalar(
            select(ChannelIdentity.unreachable_at).where(
                ChannelIdentity.platform == platform, ChannelIdentity.external_id == external_id
            )
        )

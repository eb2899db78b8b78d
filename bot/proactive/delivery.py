"""Delivery through Rasa's HTTP API: trigger EXTERNAL_* intents, read conversation activity."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from bot.db.models import Platform

logger = logging.getLogger(__name__)

# Rasa's output channel names, as our connectors register them.
OUTPUT_CHANNELS: dict[Platform, str] = {
    Platform.WEB: "webchat",
    Platform.TELEGRAM: "telegram",
    Platform.SLACK: "slack",
}
# What a platform says, passed on in Rasa's error, when a user can never be reached.
PERMANENT_MARKERS = (
    "bot was blocked",
    "blocked by the user",
    "user is deactivated",
    "chat not found",
    "bot was kicked",
    "channel_not_found",
    "account_inactive",
    "user_not_found",
    "cannot_dm_bot",
    "is_archived",
)


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    TRANSIENT = "transient"  # try again later
    PERMANENT = "permanent"  # never works for this row
    CHANNEL_UNAVAILABLE = "channel_unavailable"  # Rasa has no such output channel running
    AMBIGUOUS = "ambiguous"  # no answer: Rasa may or may not have run the action


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    detail: str = ""
    retry_after: float | None = None
    # The platform said this user cannot be reached (blocked the bot, left the workspace).
    identity_unreachable: bool = False


@dataclass(frozen=True)
class DeliveryTarget:
    sender_id: str
    platform: Platform
    intent: str
    outreach_id: int


class Delivery(Protocol):
    async def trigger(self, target: DeliveryTarget) -> DeliveryResult: ...

    async def last_user_message_at(self, sender_id: str) -> datetime | None: ...

    async def close(self) -> None: ...


def retry_after_seconds(headers: Any, body: Any) -> float | None:
    """Retry-After as seconds or an HTTP date, or Telegram's parameters.retry_after."""
    raw = headers.get("Retry-After") if headers is not None else None
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                when = parsedate_to_datetime(raw)
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                pass
    if isinstance(body, dict):
        parameters = body.get("parameters")
        if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int | float):
            return float(parameters["retry_after"])
    return None


def classify(status: int, headers: Any, body: Any) -> DeliveryResult:
    """What a trigger_intent answer means for the outreach row."""
    if status == 200:
        if isinstance(body, dict) and "messages" in body:
            # Rasa fell back to a collecting channel: the requested one is not enabled, and
            # the message went nowhere a customer would see it.
            return DeliveryResult(Outcome.CHANNEL_UNAVAILABLE, "output channel not enabled in Rasa")
        return DeliveryResult(Outcome.DELIVERED)
    text = str(body)[:300]
    if status in (429, 503):
        wait = retry_after_seconds(headers, body)
        return DeliveryResult(Outcome.TRANSIENT, f"HTTP {status}", retry_after=wait)
    if status >= 500:
        lowered = text.lower()
        if any(marker in lowered for marker in PERMANENT_MARKERS):
            return DeliveryResult(Outcome.PERMANENT, text, identity_unreachable=True)
        return DeliveryResult(Outcome.TRANSIENT, f"HTTP {status}: {text}")
    if status == 400:
        return DeliveryResult(Outcome.PERMANENT, f"HTTP 400: {text}")
    # 401/403: our token is wrong; 404: the running model lacks the intent (a deploy in
    # progress). Both are fixed by an operator, not by giving up on the customer.
    return DeliveryResult(Outcome.TRANSIENT, f"HTTP {status}: {text}")


class RasaDelivery:
    """Talks to Rasa's HTTP API with its token; one session, reused for every call."""

    def __init__(self, rasa_url: str, token: str, *, timeout: float = 30.0) -> None:
        self.rasa_url = rasa_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=100)
            )
        return self._session

    def _url(self, sender_id: str, path: str) -> str:
        return f"{self.rasa_url}/conversations/{quote(sender_id, safe=':')}/{path}"

    async def trigger(self, target: DeliveryTarget) -> DeliveryResult:
        params = {
            "output_channel": OUTPUT_CHANNELS[target.platform],
            "token": self._token,
            "include_events": "NONE",
        }
        body = {"name": target.intent, "entities": {"outreach_id": str(target.outreach_id)}}
        try:
            async with self._client().post(
                self._url(target.sender_id, "trigger_intent"), params=params, json=body
            ) as reply:
                try:
                    payload: Any = await reply.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    payload = await reply.text()
                return classify(reply.status, reply.headers, payload)
        except TimeoutError:
            return DeliveryResult(Outcome.AMBIGUOUS, "Rasa did not answer in time")
        except (aiohttp.ClientConnectionError, OSError) as error:
            # Nothing reached Rasa (refused) or the answer was lost mid-way (reset).
            if isinstance(error, aiohttp.ClientConnectorError):
                return DeliveryResult(Outcome.TRANSIENT, f"cannot reach Rasa: {error}")
            return DeliveryResult(Outcome.AMBIGUOUS, f"connection lost: {error}")
        except aiohttp.ClientError as error:
            return DeliveryResult(Outcome.TRANSIENT, f"HTTP client error: {error}")

    async def last_user_message_at(self, sender_id: str) -> datetime | None:
        """When the customer last wrote in this conversation's current session, if ever.

        Proactive triggers show up as user events too (marked external); they are not the
        customer talking, so they do not count.
        """
        params = {"token": self._token, "include_events": "APPLIED"}
        try:
            async with self._client().get(self._url(sender_id, "tracker"), params=params) as reply:
                if reply.status != 200:
                    logger.warning("tracker lookup answered HTTP %s", reply.status)
                    return None
                tracker = await reply.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as error:
            logger.warning("tracker lookup failed: %s", error)
            return None
        return last_user_message_time(tracker)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def last_user_message_time(tracker: Any) -> datetime | None:
    events = tracker.get("events") if isinstance(tracker, dict) else None
    latest: float | None = None
    for event in events or []:
        if not isinstance(event, dict) or event.get("event") != "user":
            continue
        metadata = event.get("metadata") or {}
        if metadata.get("is_external") or str(event.get("text", "")).startswith("EXTERNAL"):
            continue
        stamp = event.get("timestamp")
        if isinstance(stamp, int | float) and (latest is None or stamp > latest):
            latest = float(stamp)
    return datetime.fromtimestamp(latest, UTC) if latest is not None else None

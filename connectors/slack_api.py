"""Talking to Slack: verifying its requests, reading events and clicks, posting Block Kit.

Kept free of Rasa so the same code is tested directly against a fake Slack Web API;
connectors/slack.py wires it into Rasa through a slack-bolt app.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, List, Mapping, Optional, Tuple

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from connectors.messages import (
    SLACK_BUTTON_ACTION_PREFIX,
    OutgoingMessage,
    SlackPart,
    slack_escape,
    slack_parts,
    slack_unescape,
)
from connectors.pacing import Pacer
from connectors.unreachable import UnreachableReporter

logger = logging.getLogger(__name__)

PLATFORM = "slack"
DEFAULT_API_URL = "https://slack.com/api/"
# Slack rejects requests older than five minutes as possible replays; so do we.
MAX_REQUEST_AGE_SECONDS = 300
# Errors that will not go away by retrying: the person cannot be messaged any more.
PERMANENT_ERRORS = frozenset(
    {
        "user_not_found",
        "account_inactive",
        "channel_not_found",
        "is_archived",
        "cannot_dm_bot",
        "user_disabled",
        "not_in_channel",
    }
)
# Slack wraps links, e-mail addresses, mentions and channels as <target|label>.
_MARKUP = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def _as_typed(match: "re.Match[str]") -> str:
    target, label = match.group(1), match.group(2)
    if target.startswith("@"):
        return ""  # mentions of the bot (or a colleague) are not part of the question
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        return "@" + (label or target[1:].split("^")[0])
    if target.startswith("mailto:"):
        return label or target[len("mailto:") :]
    return label or target


def plain_text(text: str) -> str:
    """What the customer typed, without Slack's markup: `<mailto:a@b.c|a@b.c>` -> `a@b.c`."""
    return slack_unescape(_MARKUP.sub(_as_typed, text)).strip()


class _Clock:
    def __init__(self, now: Optional[float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now if self._now is not None else time.time()


def signature_is_valid(
    signing_secret: str,
    body: bytes,
    timestamp: Optional[str],
    signature: Optional[str],
    now: Optional[float] = None,
) -> bool:
    """Slack's v0 scheme: HMAC-SHA256 of `v0:{timestamp}:{body}`, within five minutes.

    Anything missing, malformed, stale or forged is simply invalid; this never raises.
    """
    if not signing_secret or not timestamp or not signature:
        return False
    if not timestamp.isdigit() or not signature.isascii() or not signature.startswith("v0="):
        return False
    verifier = SignatureVerifier(signing_secret, clock=_Clock(now))  # type: ignore[arg-type]
    try:
        return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except (ValueError, TypeError):
        return False


@dataclass(frozen=True)
class SlackInbound:
    """A customer's message or button click, and where the answer goes."""

    user_id: str
    channel: str
    text: str
    # Answer in this thread (mentions in channels); None answers in the DM itself.
    thread_ts: Optional[str] = None

    @property
    def sender_id(self) -> str:
        return f"{PLATFORM}:{self.user_id}"


def parse_event(event: Mapping[str, Any], bot_user_id: Optional[str]) -> Optional[SlackInbound]:
    """A direct message or a mention of the bot; None for everything else.

    The bot's own messages, other bots, edits, joins and plain channel chatter are ignored:
    in channels the bot only speaks when mentioned, and then in a thread.
    """
    kind = event.get("type")
    user = event.get("user")
    channel = event.get("channel")
    if event.get("bot_id") or event.get("subtype") or not isinstance(user, str):
        return None
    if not isinstance(channel, str) or (bot_user_id is not None and user == bot_user_id):
        return None
    text = event.get("text")
    text = plain_text(text) if isinstance(text, str) else ""
    if kind == "message" and event.get("channel_type") == "im":
        thread = event.get("thread_ts")
        return SlackInbound(user, channel, text, thread if isinstance(thread, str) else None)
    if kind == "app_mention":
        thread = event.get("thread_ts") or event.get("ts")
        return SlackInbound(user, channel, text, thread if isinstance(thread, str) else None)
    return None


@dataclass(frozen=True)
class SlackClick:
    """A press of one of our Block Kit buttons."""

    inbound: SlackInbound
    title: str
    message_ts: Optional[str]
    blocks: Tuple[Dict[str, Any], ...]


def parse_block_action(body: Mapping[str, Any]) -> Optional[SlackClick]:
    """The payload of the button a customer clicked (block_actions interactivity)."""
    if body.get("type") != "block_actions":
        return None
    user = (body.get("user") or {}).get("id")
    channel = (body.get("channel") or {}).get("id")
    actions = body.get("actions") or []
    if not isinstance(user, str) or not isinstance(channel, str) or not actions:
        return None
    action = actions[0]
    if not str(action.get("action_id", "")).startswith(SLACK_BUTTON_ACTION_PREFIX):
        return None
    value = action.get("value")
    if not isinstance(value, str) or not value:
        return None  # a link button: Slack opened the link, nothing to answer
    container = body.get("container") or {}
    message = body.get("message") or {}
    thread = container.get("thread_ts") or message.get("thread_ts")
    title = ((action.get("text") or {}).get("text")) or value
    return SlackClick(
        inbound=SlackInbound(user, channel, value, thread if isinstance(thread, str) else None),
        title=str(title),
        message_ts=container.get("message_ts") or message.get("ts"),
        blocks=tuple(b for b in message.get("blocks") or [] if isinstance(b, dict)),
    )


class Outcome(Enum):
    SENT = "sent"
    UNREACHABLE = "unreachable"
    FAILED = "failed"


def _error_code(error: SlackApiError) -> str:
    try:
        return str(error.response.get("error") or "")
    except (AttributeError, TypeError):
        return ""


def _retry_after(error: SlackApiError) -> Optional[float]:
    if getattr(error.response, "status_code", None) != 429:
        return None
    headers = getattr(error.response, "headers", {}) or {}
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                break
    return 1.0


class SlackDelivery:
    """Posts the bot's messages to Slack within its limits.

    About one message a second per channel (the pacer); a 429 pauses sending for its
    Retry-After and the message goes again; permanent errors (the user left, the
    conversation is archived) are reported to the app so outreach stops.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        pacer: Pacer,
        reporter: UnreachableReporter,
        *,
        max_attempts: int = 5,
    ) -> None:
        self.client = client
        self.pacer = pacer
        self.reporter = reporter
        self.max_attempts = max_attempts
        # user id -> DM channel id; conversations.open returns the same one every time.
        self._dm_channels: Dict[str, str] = {}

    async def send(
        self,
        user_id: str,
        message: OutgoingMessage,
        channel: Optional[str] = None,
        thread_ts: Optional[str] = None,
    ) -> Outcome:
        """Reply where the customer wrote, or open a DM first (proactive messages)."""
        if channel is None:
            channel = await self._dm_channel(user_id)
            if channel is None:
                return Outcome.UNREACHABLE
        for part in slack_parts(message):
            outcome = await self._post(user_id, channel, part, thread_ts)
            if outcome is not Outcome.SENT:
                return outcome
        return Outcome.SENT

    async def _dm_channel(self, user_id: str) -> Optional[str]:
        known = self._dm_channels.get(user_id)
        if known:
            return known
        for attempt in range(1, self.max_attempts + 1):
            try:
                reply = await self.client.conversations_open(users=user_id)
            except SlackApiError as error:
                if await self._handled(error, user_id, attempt):
                    continue
                return None
            except (SlackClientError, OSError, asyncio.TimeoutError) as error:
                logger.warning("Slack unreachable opening a DM: %s", type(error).__name__)
                return None
            channel_id = (reply.get("channel") or {}).get("id")
            if isinstance(channel_id, str):
                self._dm_channels[user_id] = channel_id
                return channel_id
            return None
        return None

    async def _post(
        self, user_id: str, channel: str, part: SlackPart, thread_ts: Optional[str]
    ) -> Outcome:
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self.pacer.turn(channel):
                    await self.client.chat_postMessage(
                        channel=channel,
                        text=part.text,
                        blocks=list(part.blocks),
                        thread_ts=thread_ts,
                        unfurl_links=False,
                    )
                return Outcome.SENT
            except SlackApiError as error:
                if await self._handled(error, user_id, attempt):
                    continue
                return (
                    Outcome.UNREACHABLE
                    if _error_code(error) in PERMANENT_ERRORS
                    else Outcome.FAILED
                )
            except (SlackClientError, OSError, asyncio.TimeoutError) as error:
                # The request may have reached Slack; a second post could be a duplicate.
                logger.warning("Slack post failed: %s; not retried", type(error).__name__)
                return Outcome.FAILED
        logger.error("gave up on a Slack message after %d attempts", self.max_attempts)
        return Outcome.FAILED

    async def _handled(self, error: SlackApiError, user_id: str, attempt: int) -> bool:
        """True if the call should be tried again (rate limited), after waiting as asked."""
        retry_after = _retry_after(error)
        if retry_after is not None:
            logger.warning("Slack asked to retry after %.0f s (attempt %d)", retry_after, attempt)
            self.pacer.pause(retry_after)
            await self.pacer.wait_until_unpaused()
            return True
        code = _error_code(error)
        if code in PERMANENT_ERRORS:
            logger.info("Slack user unreachable: %s", code)
            self._dm_channels.pop(user_id, None)
            await self.reporter.report(PLATFORM, user_id)
        else:
            logger.error("Slack refused a message: %s", code or "unknown error")
        return False

    async def mark_chosen(self, click: SlackClick) -> None:
        """Replace the clicked buttons with the choice, as Slack apps do, so it isn't re-clicked."""
        if not click.message_ts or not click.blocks:
            return
        blocks: List[Dict[str, Any]] = [b for b in click.blocks if b.get("type") != "actions"]
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"You chose *{slack_escape(click.title)}*"}
                ],
            }
        )
        fallback = next(
            (b["text"]["text"] for b in blocks if b.get("type") == "section" and b.get("text")),
            click.title,
        )
        try:
            await self.client.chat_update(
                channel=click.inbound.channel, ts=click.message_ts, text=fallback, blocks=blocks
            )
        except (SlackApiError, SlackClientError, OSError, asyncio.TimeoutError) as error:
            logger.debug("could not mark the chosen button: %s", type(error).__name__)


def build_client(token: str, api_url: Optional[str] = None) -> AsyncWebClient:
    """slack_sdk's async client, pointed at `api_url` (the real Web API unless a test says)."""
    base = (api_url or DEFAULT_API_URL).rstrip("/") + "/"
    return AsyncWebClient(token=token, base_url=base)

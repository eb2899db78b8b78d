"""Web chat history: the token holder's own conversation, read from Rasa, so a reload keeps it."""

from __future__ import annotations

import logging
import re
from typing import Any

import aiohttp
from aiohttp import web

from bot.identity.tokens import InvalidCustomerToken, verify_customer_token
from bot.settings import Settings

logger = logging.getLogger(__name__)

SETTINGS_KEY = web.AppKey("webchat_settings", Settings)
# Same shape connectors/identity.py accepts, so both sides name the same conversation.
_ANONYMOUS_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# Enough to pick up where the customer left off; older turns are in the tracker still.
MAX_MESSAGES = 200
# Rasa records proactive triggers as user turns with this text; the customer never typed them.
EXTERNAL_PREFIX = "EXTERNAL: "


def conversation_of(request: web.Request, settings: Settings) -> str | None:
    """`web:<customer id>` for a valid customer token, `web:anon-<id>` for a visitor, else None.

    A present but invalid token is never downgraded to an anonymous conversation.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        try:
            claims = verify_customer_token(token.strip(), settings.customer_token_secret)
        except InvalidCustomerToken:
            return None
        return f"web:{claims.customer_id}" if claims.customer_id > 0 else None
    anonymous = request.headers.get("X-Herald-Anonymous-Id", "")
    if _ANONYMOUS_ID.match(anonymous):
        return f"web:anon-{anonymous}"
    return None


async def history(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    sender_id = conversation_of(request, settings)
    if sender_id is None:
        return web.json_response(
            {"error": "a valid customer token or anonymous id is required"}, status=401
        )
    try:
        events = await _tracker_events(settings, sender_id)
    except (aiohttp.ClientError, TimeoutError) as error:
        logger.warning("could not read web chat history from Rasa: %s", type(error).__name__)
        return web.json_response({"error": "history is unavailable right now"}, status=503)
    return web.json_response(
        {"sender_id": sender_id, "messages": transcript(events)[-MAX_MESSAGES:]},
        headers={"Cache-Control": "no-store"},
    )


async def _tracker_events(settings: Settings, sender_id: str) -> list[dict[str, Any]]:
    url = f"{settings.rasa_url.rstrip('/')}/conversations/{sender_id}/tracker"
    params = {"include_events": "ALL", "token": settings.rasa_api_token}
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, params=params) as reply,
    ):
        if reply.status == 404:
            return []
        reply.raise_for_status()
        tracker = await reply.json()
    events = tracker.get("events") if isinstance(tracker, dict) else None
    return [e for e in events or [] if isinstance(e, dict)]


def transcript(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the customer saw: their messages (buttons shown by title) and the bot's."""
    messages: list[dict[str, Any]] = []
    offered: dict[str, str] = {}
    for event in events:
        kind = event.get("event")
        text = event.get("text") or ""
        if kind == "user":
            if not text or text.startswith(EXTERNAL_PREFIX):
                continue
            messages.append(
                {"from": "user", "text": offered.get(text, text), "at": event.get("timestamp")}
            )
            offered = {}
        elif kind == "bot":
            data = event.get("data") or {}
            message = _bot_message(text, data if isinstance(data, dict) else {})
            if message:
                message["at"] = event.get("timestamp")
                messages.append(message)
                offered = {r["payload"]: r["title"] for r in message.get("quick_replies", [])}
    return messages


def _bot_message(text: str, data: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"from": "bot"}
    if text:
        message["text"] = text
    replies, links = [], []
    for button in data.get("buttons") or data.get("quick_replies") or []:
        if not isinstance(button, dict) or not button.get("title"):
            continue
        if button.get("url"):
            links.append({"title": str(button["title"]), "url": str(button["url"])})
        else:
            title = str(button["title"])
            replies.append({"title": title, "payload": str(button.get("payload") or title)})
    if replies:
        message["quick_replies"] = replies
    if links:
        message["links"] = links
    if isinstance(data.get("image"), str):
        message["image"] = data["image"]
    return message if len(message) > 1 else {}


def register(app: web.Application, settings: Settings) -> None:
    """GET /webchat/history with the customer token (or a visitor's anonymous id)."""
    app[SETTINGS_KEY] = settings
    app.router.add_get("/webchat/history", history)

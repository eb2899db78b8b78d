"""Telegram as a Rasa channel: a webhook (or polling locally) in, the Bot API out.

Rasa's bundled Telegram channel uses aiogram; this one uses python-telegram-bot through
connectors/telegram_api.py. Configuration comes from the environment:

- HERALD_TELEGRAM_TOKEN: the bot token from @BotFather; without it the channel is off.
- HERALD_TELEGRAM_MODE: `webhook` (default) or `polling` for a laptop without a public URL.
- HERALD_TELEGRAM_WEBHOOK_SECRET: the secret Telegram sends in a header with every update;
  `herald telegram set-webhook` registers it together with the URL.
- HERALD_TELEGRAM_API_URL: the Bot API's base URL (tests point it at a local fake).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from telegram import Update

from connectors.dedup import SeenDeliveries
from connectors.identity import secrets_match
from connectors.messages import OutgoingMessage
from connectors.pacing import telegram_pacer
from connectors.telegram_api import (
    PLATFORM,
    TelegramDelivery,
    TelegramInbound,
    UpdateHandler,
    build_bot,
    poll_updates,
)
from connectors.unreachable import UnreachableReporter

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
WEBHOOK = "webhook"
POLLING = "polling"


def chat_id_of(recipient_id: Text) -> Optional[int]:
    """`telegram:<user id>` -> the private chat with that user (same id in Telegram)."""
    platform, _, external_id = recipient_id.partition(":")
    if platform != PLATFORM:
        return None
    try:
        return int(external_id)
    except ValueError:
        return None


class TelegramOutput(OutputChannel):
    """Renders the bot's messages for Telegram: plain text, inline keyboards, photos."""

    @classmethod
    def name(cls) -> Text:
        return PLATFORM

    def __init__(self, delivery: TelegramDelivery) -> None:
        self.delivery = delivery

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        chat_id = chat_id_of(recipient_id)
        if chat_id is None:
            logger.warning("not a Telegram conversation; message dropped")
            return
        outgoing = OutgoingMessage.from_rasa(message)
        if not outgoing.is_empty:
            await self.delivery.send(chat_id, outgoing)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})


class TelegramInput(InputChannel):
    """POST /webhooks/telegram/webhook, or polling, chosen by HERALD_TELEGRAM_MODE."""

    @classmethod
    def name(cls) -> Text:
        return PLATFORM

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls(
            token=os.environ.get("HERALD_TELEGRAM_TOKEN", ""),
            webhook_secret=os.environ.get("HERALD_TELEGRAM_WEBHOOK_SECRET", ""),
            mode=os.environ.get("HERALD_TELEGRAM_MODE", WEBHOOK).strip().lower() or WEBHOOK,
            api_url=os.environ.get("HERALD_TELEGRAM_API_URL") or None,
        )

    def __init__(
        self,
        token: Text,
        webhook_secret: Text,
        mode: Text = WEBHOOK,
        api_url: Optional[Text] = None,
    ) -> None:
        self.mode = mode
        self.webhook_secret = webhook_secret
        self.delivery: Optional[TelegramDelivery] = None
        reason = self._off_reason(token, webhook_secret, mode)
        if reason:
            logger.info("Telegram channel is off: %s", reason)
            return
        self.delivery = TelegramDelivery(
            build_bot(token, api_url), telegram_pacer(), UnreachableReporter.from_env()
        )
        logger.info("Telegram channel is on (%s mode)", mode)

    @staticmethod
    def _off_reason(token: Text, webhook_secret: Text, mode: Text) -> Optional[Text]:
        if not token:
            return "HERALD_TELEGRAM_TOKEN is not set"
        if mode not in (WEBHOOK, POLLING):
            return f"HERALD_TELEGRAM_MODE must be {WEBHOOK} or {POLLING}, not {mode!r}"
        if mode == WEBHOOK and not webhook_secret:
            return "HERALD_TELEGRAM_WEBHOOK_SECRET is not set, and a webhook without it is open"
        return None

    def get_output_channel(self) -> Optional[OutputChannel]:
        return TelegramOutput(self.delivery) if self.delivery is not None else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = Blueprint("herald_telegram", __name__)
        delivery = self.delivery

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok" if delivery else "off", "mode": self.mode})

        if delivery is None:
            return blueprint

        async def to_rasa(inbound: TelegramInbound) -> None:
            await on_new_message(
                UserMessage(
                    inbound.text,
                    TelegramOutput(delivery),
                    inbound.sender_id,
                    input_channel=PLATFORM,
                    metadata={"channel": PLATFORM},
                )
            )

        handler = UpdateHandler(delivery, SeenDeliveries.from_env(PLATFORM), to_rasa)

        @blueprint.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            if self.mode != WEBHOOK:
                return response.json({"error": "this bot polls for updates"}, status=404)
            # The secret is checked before the body is even parsed.
            if not secrets_match(request.headers.get(SECRET_HEADER), self.webhook_secret):
                return response.json({"error": "forbidden"}, status=403)
            try:
                data = json.loads(request.body or b"")
                update = Update.de_json(data, delivery.bot) if isinstance(data, dict) else None
            except (ValueError, TypeError, KeyError):
                update = None
            if update is None:
                return response.json({"error": "expected a Telegram Update object"}, status=400)
            try:
                fresh = await handler.handle(update)
            except Exception:  # Telegram retries on 5xx; dedup forgot the id so it is redone
                logger.exception("handling a Telegram update failed")
                return response.json({"error": "internal error"}, status=500)
            return response.json({"status": "ok" if fresh else "duplicate"})

        if self.mode == POLLING:
            stop = asyncio.Event()

            @blueprint.listener("after_server_start")
            async def start_polling(app: Any, loop: Any) -> None:
                app.ctx.herald_telegram_polling = asyncio.ensure_future(
                    poll_updates(delivery.bot, handler.handle, stop)
                )

            @blueprint.listener("before_server_stop")
            async def stop_polling(app: Any, loop: Any) -> None:
                stop.set()
                task = getattr(app.ctx, "herald_telegram_polling", None)
                if task is not None:
                    task.cancel()
                await delivery.close()

        return blueprint

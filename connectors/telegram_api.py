"""Talking to the Telegram Bot API with python-telegram-bot: what comes in, what goes out.

Kept free of Rasa so the same code is tested directly against a fake Bot API server;
connectors/telegram.py wires it into Rasa as an input and output channel.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import Enum
from typing import Any, AsyncIterator, Awaitable, Callable, Optional, Union

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from connectors.dedup import SeenDeliveries
from connectors.limits import MAX_MESSAGE_CHARS, TOO_LONG_REPLY, clean_text
from connectors.messages import OutgoingMessage, TelegramPart, telegram_parts
from connectors.pacing import Pacer
from connectors.unreachable import UnreachableReporter

logger = logging.getLogger(__name__)

PLATFORM = "telegram"
DEFAULT_API_URL = "https://api.telegram.org"
# Telegram keeps callback_data to 64 bytes; longer payloads travel as a short reference.
CALLBACK_DATA_BYTES = 64
UNSUPPORTED_REPLY = "I can only read text messages. Please type your question and I'll help."
EXPIRED_BUTTON_REPLY = (
    "That button has expired. Please tell me what you need in a sentence and I'll help."
)
# Telegram shows "typing…" for five seconds per chat action.
TYPING_REFRESH_SECONDS = 4.0
# Telegram retries a webhook update until it gets a 2xx; these are the ones we act on.
ALLOWED_UPDATES = ["message", "callback_query"]


def quiet_http_logging() -> None:
    """Telegram request URLs contain the bot token: HTTP logs stay at WARNING or above."""
    for name in ("httpx", "httpcore", "telegram", "telegram.ext"):
        logging.getLogger(name).setLevel(logging.WARNING)


def build_bot(token: str, api_url: Optional[str] = None) -> Bot:
    """A PTB Bot whose requests go to `api_url` (the real Bot API unless a test says otherwise)."""
    quiet_http_logging()
    base = (api_url or DEFAULT_API_URL).rstrip("/")
    # PTB's default pool is a single connection; replies to many chats go out in parallel.
    request = HTTPXRequest(connection_pool_size=32, pool_timeout=10.0, read_timeout=10.0)
    updates_request = HTTPXRequest(connection_pool_size=1, read_timeout=10.0)
    return Bot(
        token,
        base_url=f"{base}/bot",
        base_file_url=f"{base}/file/bot",
        request=request,
        get_updates_request=updates_request,
    )


class CallbackPayloads:
    """Button payloads as callback_data: as is when they fit in 64 bytes, else a reference.

    References are kept in a bounded in-memory map; a press after a restart gets a polite
    "button expired" reply instead of the wrong action.
    """

    PREFIX = "ref:"

    def __init__(self, max_entries: int = 10_000) -> None:
        self._long: "OrderedDict[str, str]" = OrderedDict()
        self._max_entries = max_entries

    def encode(self, payload: str) -> str:
        if len(payload.encode()) <= CALLBACK_DATA_BYTES and not payload.startswith(self.PREFIX):
            return payload
        reference = self.PREFIX + hashlib.sha256(payload.encode()).hexdigest()[:32]
        self._long[reference] = payload
        self._long.move_to_end(reference)
        while len(self._long) > self._max_entries:
            self._long.popitem(last=False)
        return reference

    def decode(self, data: str) -> Optional[str]:
        if data.startswith(self.PREFIX):
            return self._long.get(data)
        return data


@dataclass(frozen=True)
class TelegramInbound:
    """A customer's message or button press, ready for Rasa."""

    update_id: int
    user_id: int
    chat_id: int
    # The text for Rasa: what they typed, or the payload of the button they pressed.
    text: str
    callback_query_id: Optional[str] = None
    # A photo, sticker or the like: answered with a polite note, never sent to Rasa.
    unsupported: bool = False
    # A button whose long payload is no longer known (pressed after a restart).
    expired_button: bool = False

    @property
    def sender_id(self) -> str:
        return f"{PLATFORM}:{self.user_id}"


def parse_update(update: Update, payloads: CallbackPayloads) -> Optional[TelegramInbound]:
    """What an update asks of the bot, or None for updates it ignores.

    Only private chats are served: order and account details must never appear in a group.
    """
    query = update.callback_query
    if query is not None:
        message = query.message
        if message is None or message.chat.type != ChatType.PRIVATE or query.from_user is None:
            return None
        payload = payloads.decode(query.data or "")
        return TelegramInbound(
            update_id=update.update_id,
            user_id=query.from_user.id,
            chat_id=message.chat.id,
            text=payload or "",
            callback_query_id=query.id,
            expired_button=payload is None,
        )
    message = update.message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    if message.chat.type != ChatType.PRIVATE:
        return None
    text = message.text
    if text is None:
        return TelegramInbound(
            update_id=update.update_id,
            user_id=message.from_user.id,
            chat_id=message.chat.id,
            text="",
            unsupported=True,
        )
    if text.split(" ", 1)[0].split("@", 1)[0] in ("/start", "/help"):
        # Telegram's own commands: a new chat starts with /start; Rasa should greet.
        text = "/greet"
    return TelegramInbound(
        update_id=update.update_id,
        user_id=message.from_user.id,
        chat_id=message.chat.id,
        text=text,
    )


class Outcome(Enum):
    SENT = "sent"
    UNREACHABLE = "unreachable"
    FAILED = "failed"


def _seconds(retry_after: Union[int, float, timedelta]) -> float:
    if isinstance(retry_after, timedelta):
        return retry_after.total_seconds()
    return float(retry_after)


class TelegramDelivery:
    """Sends the bot's messages to Telegram chats within Telegram's limits.

    Every send waits its turn with the pacer (1 a second per chat, 30 a second overall); a
    RetryAfter pauses all sends for as long as Telegram asks and the message is sent again;
    a 403 ("bot was blocked by the user") is reported to the app so outreach stops.
    """

    def __init__(
        self,
        bot: Bot,
        pacer: Pacer,
        reporter: UnreachableReporter,
        payloads: Optional[CallbackPayloads] = None,
        *,
        max_attempts: int = 5,
    ) -> None:
        self.bot = bot
        self.pacer = pacer
        self.reporter = reporter
        self.payloads = payloads or CallbackPayloads()
        self.max_attempts = max_attempts
        self._ready = asyncio.Lock()

    async def start(self) -> None:
        """Initialise PTB's Bot (one getMe) once, before the first call."""
        async with self._ready:
            if not self.bot._initialized:
                await self.bot.initialize()

    async def close(self) -> None:
        await self.bot.shutdown()
        await self.reporter.close()

    async def send(self, chat_id: int, message: OutgoingMessage) -> Outcome:
        """Send every part of a message in order; stop at the first part that cannot go."""
        await self.start()
        for part in telegram_parts(message):
            outcome = await self._send_part(chat_id, part)
            if outcome is not Outcome.SENT:
                return outcome
        return Outcome.SENT

    async def _send_part(self, chat_id: int, part: TelegramPart) -> Outcome:
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self.pacer.turn(str(chat_id)):
                    if part.photo:
                        await self.bot.send_photo(chat_id, photo=part.photo)
                    else:
                        await self.bot.send_message(
                            chat_id, part.text, reply_markup=self._keyboard(part)
                        )
                return Outcome.SENT
            except RetryAfter as error:
                seconds = _seconds(error.retry_after)
                logger.warning(
                    "Telegram asked to retry after %.0f s (attempt %d)", seconds, attempt
                )
                self.pacer.pause(seconds)
            except Forbidden as error:
                # "bot was blocked by the user", "user is deactivated": no use trying again.
                logger.info("Telegram user unreachable: %s", error.message)
                await self.reporter.report(PLATFORM, str(chat_id))
                return Outcome.UNREACHABLE
            except BadRequest as error:
                if "chat not found" in error.message.lower():
                    await self.reporter.report(PLATFORM, str(chat_id))
                    return Outcome.UNREACHABLE
                if part.photo:
                    # Telegram could not fetch the image: send its address instead.
                    return await self._send_part(chat_id, TelegramPart(text=part.photo))
                logger.error("Telegram refused a message: %s", error.message)
                return Outcome.FAILED
            except TimedOut:
                # It may have arrived; sending again could show the customer a duplicate.
                logger.warning("Telegram send timed out; not retried to avoid a duplicate")
                return Outcome.FAILED
            except NetworkError as error:
                logger.warning("Telegram unreachable (%s), attempt %d", error.message, attempt)
                await asyncio.sleep(min(2.0**attempt, 30.0))
            except TelegramError as error:
                logger.error("Telegram refused a message: %s", error.message)
                return Outcome.FAILED
        logger.error("gave up on a Telegram message after %d attempts", self.max_attempts)
        return Outcome.FAILED

    def _keyboard(self, part: TelegramPart) -> Optional[InlineKeyboardMarkup]:
        if not part.keyboard:
            return None
        rows = [
            [
                InlineKeyboardButton(button.title, url=button.url)
                if button.url
                else InlineKeyboardButton(
                    button.title, callback_data=self.payloads.encode(button.payload)
                )
                for button in row
            ]
            for row in part.keyboard
        ]
        return InlineKeyboardMarkup(rows)

    async def show_typing(self, chat_id: int) -> None:
        try:
            await self.bot.send_chat_action(chat_id, ChatAction.TYPING)
        except TelegramError as error:
            # Cosmetic: a failed typing indicator must not stop the reply.
            logger.debug("typing indicator not shown: %s", error)

    async def answer_callback(self, callback_query_id: str) -> None:
        """Stop the button's loading spinner in the customer's app."""
        try:
            await self.bot.answer_callback_query(callback_query_id)
        except TelegramError as error:
            logger.debug("callback query not answered: %s", error)

    @asynccontextmanager
    async def typing_while(self, chat_id: int) -> AsyncIterator[None]:
        """Show "typing…" until the block ends (Telegram hides it after five seconds)."""

        async def keep_typing() -> None:
            while True:
                await self.show_typing(chat_id)
                await asyncio.sleep(TYPING_REFRESH_SECONDS)

        await self.start()
        task = asyncio.ensure_future(keep_typing())
        try:
            yield
        finally:
            task.cancel()


class UpdateHandler:
    """One update, once: dedup by update_id, then answer it or hand it to the bot.

    The same handler serves the webhook and polling. If handing the message on fails, the
    update_id is forgotten again so Telegram's retry is processed.
    """

    def __init__(
        self,
        delivery: TelegramDelivery,
        seen: SeenDeliveries,
        on_message: Callable[[TelegramInbound], Awaitable[None]],
    ) -> None:
        self.delivery = delivery
        self.seen = seen
        self.on_message = on_message

    async def handle(self, update: Update) -> bool:
        """False if this update was already handled."""
        delivery_id = str(update.update_id)
        if not await self.seen.first_time(delivery_id):
            logger.info("ignored a repeated Telegram update")
            return False
        try:
            await self._handle(update)
        except BaseException:
            await self.seen.forget(delivery_id)
            raise
        return True

    async def _handle(self, update: Update) -> None:
        inbound = parse_update(update, self.delivery.payloads)
        if inbound is None:
            return
        if inbound.callback_query_id:
            await self.delivery.answer_callback(inbound.callback_query_id)
        if inbound.unsupported:
            await self.delivery.send(inbound.chat_id, OutgoingMessage(text=UNSUPPORTED_REPLY))
            return
        if inbound.expired_button:
            await self.delivery.send(inbound.chat_id, OutgoingMessage(text=EXPIRED_BUTTON_REPLY))
            return
        text = clean_text(inbound.text)
        if len(text) > MAX_MESSAGE_CHARS:
            await self.delivery.send(inbound.chat_id, OutgoingMessage(text=TOO_LONG_REPLY))
            return
        if not text:
            return
        async with self.delivery.typing_while(inbound.chat_id):
            await self.on_message(replace(inbound, text=text))


async def poll_updates(
    bot: Bot,
    handle: Callable[[Update], Awaitable[Any]],
    stop: asyncio.Event,
    *,
    long_poll_seconds: int = 25,
) -> None:
    """Polling mode for a laptop without a public URL: getUpdates in a loop until `stop`."""
    quiet_http_logging()
    offset: Optional[int] = None
    backoff = 1.0
    try:
        await bot.initialize()
        # getUpdates is refused while a webhook is set.
        await bot.delete_webhook(drop_pending_updates=False)
    except InvalidToken:
        logger.error("Telegram rejected HERALD_TELEGRAM_TOKEN; polling stopped")
        return
    except TelegramError as error:
        logger.warning("Telegram not reachable yet (%s); will keep trying", error.message)
    logger.info("Telegram channel polling for updates")
    while not stop.is_set():
        try:
            updates = await bot.get_updates(
                offset=offset, timeout=long_poll_seconds, allowed_updates=ALLOWED_UPDATES
            )
            backoff = 1.0
        except InvalidToken:
            logger.error("Telegram rejected HERALD_TELEGRAM_TOKEN; polling stopped")
            return
        except Conflict:
            logger.warning("another process is polling or a webhook is set; retrying in 30 s")
            await _sleep_unless(stop, 30.0)
            continue
        except RetryAfter as error:
            await _sleep_unless(stop, _seconds(error.retry_after))
            continue
        except TelegramError as error:
            logger.warning(
                "Telegram polling failed (%s); retrying in %.0f s", error.message, backoff
            )
            await _sleep_unless(stop, backoff)
            backoff = min(backoff * 2, 60.0)
            continue
        for update in updates:
            offset = update.update_id + 1
            asyncio.ensure_future(_handle_logged(handle, update))


async def _handle_logged(handle: Callable[[Update], Awaitable[Any]], update: Update) -> None:
    try:
        await handle(update)
    except Exception:  # one broken update must not stop polling for everyone else
        logger.exception("handling Telegram update %s failed", update.update_id)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)

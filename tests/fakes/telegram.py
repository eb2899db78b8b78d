"""A fake Telegram Bot API: the real HTTP protocol, on 127.0.0.1, recording every call.

PTB talks to it through `base_url`. It answers like Telegram (`{"ok": ..., "result": ...}`),
refuses what Telegram refuses (empty or over-long text, oversized callback_data), and can
be told to answer 429 with `retry_after` or 403 "bot was blocked by the user".
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from typing import Any

import requests
from aiohttp import web

from tests.fakes.server import Call, FakeServer

BOT_ID = 7_000_000_001
BOT_USERNAME = "lumen_herald_bot"
# Parameters PTB sends JSON-encoded; everything else stays a string as Telegram reads it.
JSON_PARAMS = {"reply_markup", "allowed_updates", "link_preview_options", "reply_parameters"}
INT_PARAMS = {"chat_id", "offset", "limit", "timeout", "message_id", "max_connections"}
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeTelegram(FakeServer):
    def __init__(self, token: str = "7000000001:AAFakeTokenForTestsOnly_abcdefghijk") -> None:
        super().__init__()
        self.token = token
        self._message_ids = itertools.count(1)
        self._blocked: set[int] = set()
        self._missing_chats: set[int] = set()
        # method -> retry_after values for the next calls of that method.
        self._flood: dict[str, deque[int]] = {}
        self._updates: deque[dict[str, Any]] = deque()
        self.webhook: dict[str, Any] = {}

    @property
    def api_url(self) -> str:
        """What HERALD_TELEGRAM_API_URL is set to: PTB adds /bot<token>/<method>."""
        return self.url

    # --- what a test tells it -------------------------------------------------------------

    def block(self, chat_id: int) -> None:
        """This user blocked the bot: sends to them get 403 Forbidden."""
        self._blocked.add(chat_id)

    def forget_chat(self, chat_id: int) -> None:
        """Telegram no longer knows this chat: 400 "chat not found"."""
        self._missing_chats.add(chat_id)

    def flood(self, method: str, *retry_after: int) -> None:
        """The next calls of `method` get 429 with these retry_after values."""
        self._flood.setdefault(method, deque()).extend(retry_after)

    def queue_update(self, update: dict[str, Any]) -> None:
        """An update for getUpdates (polling mode) to hand out."""
        self._updates.append(update)

    def sent_messages(self, chat_id: int | None = None) -> list[Call]:
        where = {} if chat_id is None else {"chat_id": chat_id}
        return self.calls("sendMessage", **where)

    def texts(self, chat_id: int) -> list[str]:
        return [str(c.params.get("text", "")) for c in self.sent_messages(chat_id)]

    # --- the Bot API ------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        return app

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await _params(request)
        self.record(method, params)
        flood = self._flood.get(method)
        if flood:
            retry_after = flood.popleft()
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry_after}",
                    "parameters": {"retry_after": retry_after},
                },
                status=429,
            )
        handler = getattr(self, "_" + method, None)
        if handler is None:
            return _error(404, "Not Found")
        result = handler(params)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, web.Response):
            return result
        return web.json_response({"ok": True, "result": result})

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Herald",
            "username": BOT_USERNAME,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._bot_user()

    def _refusal(self, chat_id: Any) -> web.Response | None:
        if not isinstance(chat_id, int):
            return _error(400, "Bad Request: chat_id is empty")
        if chat_id in self._blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        if chat_id in self._missing_chats:
            return _error(400, "Bad Request: chat not found")
        return None

    def _message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": self._bot_user(),
            **content,
        }

    def _sendMessage(self, params: dict[str, Any]) -> Any:
        refusal = self._refusal(params.get("chat_id"))
        if refusal is not None:
            return refusal
        text = str(params.get("text", ""))
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if _utf16_length(text) > 4096:
            return _error(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        if markup is not None:
            refusal = _check_markup(markup)
            if refusal is not None:
                return refusal
        content: dict[str, Any] = {"text": text}
        if markup is not None:
            content["reply_markup"] = markup
        return self._message(params["chat_id"], **content)

    def _sendPhoto(self, params: dict[str, Any]) -> Any:
        refusal = self._refusal(params.get("chat_id"))
        if refusal is not None:
            return refusal
        photo = [{"file_id": "AgAD", "file_unique_id": "AQAD", "width": 320, "height": 240}]
        return self._message(params["chat_id"], photo=photo)

    def _sendChatAction(self, params: dict[str, Any]) -> Any:
        return self._refusal(params.get("chat_id")) or True

    def _answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        return True

    def _setWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = dict(params)
        return True

    def _deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {}
        return True

    def _getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _getUpdates(self, params: dict[str, Any]) -> Any:
        if self.webhook.get("url"):
            return _error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = params.get("offset")
        if isinstance(offset, int):
            while self._updates and self._updates[0]["update_id"] < offset:
                self._updates.popleft()
        # Long polling, kept short so tests and shutdown stay quick.
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        while not self._updates and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return list(self._updates)


def _error(code: int, description: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": code, "description": description}, status=code
    )


def _check_markup(markup: Any) -> web.Response | None:
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list):
        return _error(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in rows:
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= 64:
                return _error(400, "Bad Request: BUTTON_DATA_INVALID")
            if data is None and not button.get("url"):
                return _error(400, "Bad Request: can't parse inline keyboard button")
    return None


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        body = await request.json()
        return dict(body) if isinstance(body, dict) else {}
    raw = dict(await request.post()) if request.can_read_body else dict(request.query)
    params: dict[str, Any] = {}
    for key, value in raw.items():
        value = value if isinstance(value, str) else str(value)
        if key in JSON_PARAMS:
            params[key] = json.loads(value)
        elif key in INT_PARAMS and value.lstrip("-").isdigit():
            params[key] = int(value)
        else:
            params[key] = value
    return params


# --- what Telegram sends to the bot's webhook ------------------------------------------------

_update_ids = itertools.count(int(time.time()) % 1_000_000 * 1000)


def next_update_id() -> int:
    return next(_update_ids)


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Ada", "language_code": "en"}


def message_update(
    user_id: int, text: str | None, update_id: int | None = None, chat_type: str = "private"
) -> dict[str, Any]:
    """An Update carrying a customer's message (text=None: a sticker, say)."""
    chat_id = user_id if chat_type == "private" else -100_000_000_000 - user_id
    message: dict[str, Any] = {
        "message_id": next_update_id() % 100_000,
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": chat_type, "first_name": "Ada"},
        "from": _user(user_id),
    }
    if text is None:
        message["sticker"] = {
            "file_id": "CAAC",
            "file_unique_id": "AgAD",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
    else:
        message["text"] = text
        if text.startswith("/"):
            command = text.split(" ", 1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return {
        "update_id": update_id if update_id is not None else next_update_id(),
        "message": message,
    }


def callback_update(
    user_id: int, data: str, message_text: str = "…", update_id: int | None = None
) -> dict[str, Any]:
    """An Update for a press on an inline keyboard button of one of the bot's messages."""
    return {
        "update_id": update_id if update_id is not None else next_update_id(),
        "callback_query": {
            "id": str(next_update_id()),
            "from": _user(user_id),
            "chat_instance": str(-user_id),
            "data": data,
            "message": {
                "message_id": next_update_id() % 100_000,
                "date": int(time.time()),
                "chat": {"id": user_id, "type": "private", "first_name": "Ada"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Herald"},
                "text": message_text,
            },
        },
    }


def post_update(webhook_url: str, secret: str | None, update: Any) -> requests.Response:
    """POST an update the way Telegram does: JSON body, secret token header."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    return requests.post(webhook_url, data=body, headers=headers, timeout=120)


def inline_keyboard(call: Call) -> list[dict[str, Any]]:
    """The buttons of a recorded sendMessage, flattened."""
    markup = call.params.get("reply_markup") or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]

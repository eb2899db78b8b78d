"""A fake Slack Web API, and requests signed exactly as Slack signs them.

slack_sdk's AsyncWebClient talks to it through `base_url`. It answers like Slack (HTTP 200
with `{"ok": false, "error": ...}` for API errors, HTTP 429 with Retry-After when rate
limited), checks the bot token, and records every call.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from collections import deque
from typing import Any

import requests
from aiohttp import web

from tests.fakes.server import Call, FakeServer

BOT_USER_ID = "U0HERALDBOT"
BOT_ID = "B0HERALD01"
TEAM_ID = "T0LUMEN001"


class FakeSlack(FakeServer):
    def __init__(self, token: str = "xoxb-0000000000-fake-token-for-tests") -> None:
        super().__init__()
        self.token = token
        self._ts = itertools.count(1)
        self._rate_limits: dict[str, deque[int]] = {}
        self._user_errors: dict[str, str] = {}

    @property
    def api_url(self) -> str:
        """What HERALD_SLACK_API_URL is set to (slack_sdk appends the method name)."""
        return f"{self.url}/api/"

    # --- what a test tells it -------------------------------------------------------------

    def rate_limit(self, method: str, *retry_after: int) -> None:
        """The next calls of `method` get HTTP 429 with these Retry-After values."""
        self._rate_limits.setdefault(method, deque()).extend(retry_after)

    def fail_user(self, user_id: str, error: str) -> None:
        """Messages to this user fail with a Slack error such as `user_not_found`."""
        self._user_errors[user_id] = error

    def posts(self, channel: str | None = None) -> list[Call]:
        where = {} if channel is None else {"channel": channel}
        return self.calls("chat.postMessage", **where)

    # --- the Web API --------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        return app

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _params(request)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        self.record(method, params)
        pending = self._rate_limits.get(method)
        if pending:
            retry_after = pending.popleft()
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(retry_after)},
            )
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response(handler(params))

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://lumen-home.slack.com/",
            "team": "Lumen Home",
            "user": "herald",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
        }

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("users", ""))
        if user in self._user_errors:
            return {"ok": False, "error": self._user_errors[user]}
        if not user.startswith("U"):
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "channel": {"id": dm_channel(user)}}

    def _chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        if channel.startswith("D") and ("U" + channel[1:]) in self._user_errors:
            return {"ok": False, "error": self._user_errors["U" + channel[1:]]}
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("text") and not params.get("blocks"):
            return {"ok": False, "error": "no_text"}
        blocks = params.get("blocks") or []
        if len(blocks) > 50:
            return {"ok": False, "error": "invalid_blocks"}
        ts = self._next_ts()
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "ts": ts,
            "text": params.get("text", ""),
            "blocks": blocks,
        }
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}


def dm_channel(user_id: str) -> str:
    """The DM channel id the fake gives a user (Slack's start with D)."""
    return "D" + user_id[1:]


async def _params(request: web.Request) -> dict[str, Any]:
    """Slack reads arguments from the query string, a form or a JSON body alike."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        return {**params, **body} if isinstance(body, dict) else params
    for key, value in (await request.post()).items():
        text = value if isinstance(value, str) else str(value)
        if key in ("blocks", "attachments"):
            params[key] = json.loads(text)
        else:
            params[key] = text
    return params


# --- what Slack sends to the bot ----------------------------------------------------------

_event_ids = itertools.count(1)


def sign(body: bytes, signing_secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 signature headers for `body`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def event_callback(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "deprecated-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": "A0HERALD01",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_event_ids):010d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
    }


def _ts() -> str:
    return f"{time.time():.6f}"


def dm_event(user_id: str, text: str, event_id: str | None = None) -> dict[str, Any]:
    """A direct message from a customer to the bot."""
    return event_callback(
        {
            "type": "message",
            "channel": dm_channel(user_id),
            "user": user_id,
            "text": text,
            "ts": _ts(),
            "event_ts": _ts(),
            "channel_type": "im",
        },
        event_id,
    )


def mention_event(
    user_id: str, channel: str, text: str, event_id: str | None = None
) -> dict[str, Any]:
    """A customer mentioning the bot in a channel."""
    ts = _ts()
    return event_callback(
        {
            "type": "app_mention",
            "channel": channel,
            "user": user_id,
            "text": f"<@{BOT_USER_ID}> {text}",
            "ts": ts,
            "event_ts": ts,
        },
        event_id,
    )


def block_actions(user_id: str, posted: Call, button_index: int = 0) -> dict[str, Any]:
    """The interactivity payload Slack sends when the customer clicks one of our buttons."""
    blocks = posted.params.get("blocks") or []
    buttons = [e for b in blocks if b.get("type") == "actions" for e in b["elements"]]
    button = buttons[button_index]
    channel = str(posted.params["channel"])
    message_ts = _ts()
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "lumen-home"},
        "user": {"id": user_id, "username": "ada", "team_id": TEAM_ID},
        "api_app_id": "A0HERALD01",
        "token": "deprecated-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
            **({"thread_ts": posted.params["thread_ts"]} if posted.params.get("thread_ts") else {}),
        },
        "trigger_id": "1.2.3",
        "channel": {"id": channel, "name": "directmessage"},
        "message": {
            "type": "message",
            "user": BOT_USER_ID,
            "ts": message_ts,
            "text": posted.params.get("text", ""),
            "blocks": blocks,
        },
        "response_url": "https://hooks.slack.invalid/actions/T0/1/x",
        "actions": [
            {
                "action_id": button["action_id"],
                "block_id": "b1",
                "text": button["text"],
                "value": button.get("value"),
                "type": "button",
                "action_ts": _ts(),
            }
        ],
    }


def post_event(
    url: str,
    signing_secret: str,
    payload: dict[str, Any],
    *,
    timestamp: int | None = None,
    retry_num: int | None = None,
) -> requests.Response:
    """POST an Events API payload as Slack does: JSON, signed."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **sign(body, signing_secret, timestamp)}
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return requests.post(url, data=body, headers=headers, timeout=60)


def post_interaction(url: str, signing_secret: str, payload: dict[str, Any]) -> requests.Response:
    """POST an interactivity payload as Slack does: form-encoded `payload=<json>`, signed."""
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, signing_secret)}
    return requests.post(url, data=body, headers=headers, timeout=60)


def button_values(call: Call) -> list[str]:
    blocks = call.params.get("blocks") or []
    return [e.get("value", "") for b in blocks if b.get("type") == "actions" for e in b["elements"]]


def block_texts(call: Call) -> str:
    blocks = call.params.get("blocks") or []
    return "\n".join(b["text"]["text"] for b in blocks if b.get("type") == "section")

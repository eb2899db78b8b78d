"""Rasa's trigger_intent in front of a Telegram-like platform, for the proactive benchmark.

Run as its own process. Each trigger is checked against Telegram's limits (30 messages
a second overall, 1 a second per chat) and answered 429 with retry_after when it breaks
them; an accepted one runs the same delivery confirmation our EXTERNAL_* action runs,
so a duplicate shows up exactly as the customer would see it. GET /stats reports.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter, deque
from datetime import UTC, datetime

from aiohttp import web

from bot.db import session_scope
from bot.proactive.outbox import confirm_delivery


class TelegramLike:
    def __init__(self, database_url: str, token: str, per_second: int, per_chat: float) -> None:
        self.database_url = database_url
        self.token = token
        self.per_second = per_second
        self.chat_gap = 1.0 / per_chat
        self.window: deque[float] = deque()
        self.last_in_chat: dict[str, float] = {}
        self.requests = 0
        self.rejected_429 = 0
        self.delivered = 0
        self.duplicates = 0
        self.per_outreach: Counter[int] = Counter()
        self.delivery_times: list[float] = []
        self.started = time.monotonic()

    async def trigger(self, request: web.Request) -> web.Response:
        # Arrival time first: the platform counts a message when it arrives.
        now = time.monotonic()
        if request.query.get("token") != self.token:
            return web.json_response({"message": "unauthorised"}, status=401)
        body = await request.json()
        sender = request.match_info["sender"]
        outreach_id = int(body["entities"]["outreach_id"])
        topic = str(body["name"]).removeprefix("EXTERNAL_")
        self.requests += 1
        while self.window and self.window[0] <= now - 1.0:
            self.window.popleft()
        too_fast_in_chat = now - self.last_in_chat.get(sender, -1e9) < self.chat_gap
        if len(self.window) >= self.per_second or too_fast_in_chat:
            self.rejected_429 += 1
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 1",
                    "parameters": {"retry_after": 1},
                },
                status=429,
                headers={"Retry-After": "1"},
            )
        self.window.append(now)
        self.last_in_chat[sender] = now
        confirmed = await asyncio.to_thread(self._confirm, outreach_id, sender, topic)
        if confirmed:
            self.delivered += 1
            self.per_outreach[outreach_id] += 1
            self.delivery_times.append(now - self.started)
        else:
            self.duplicates += 1
        return web.json_response({"tracker": {}})

    def _confirm(self, outreach_id: int, sender: str, topic: str) -> bool:
        with session_scope(self.database_url) as session:
            return (
                confirm_delivery(session, outreach_id, sender, topic, datetime.now(UTC)) is not None
            )

    async def tracker(self, request: web.Request) -> web.Response:
        return web.json_response({"sender_id": request.match_info["sender"], "events": []})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": self.requests,
                "delivered": self.delivered,
                "rejected_429": self.rejected_429,
                "duplicates": self.duplicates,
                "outreach_delivered_twice": sum(1 for n in self.per_outreach.values() if n > 1),
                "delivery_times": self.delivery_times,
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--per-second", type=int, default=30)
    parser.add_argument("--per-chat-per-second", type=float, default=1.0)
    args = parser.parse_args()
    platform = TelegramLike(
        args.database_url, args.token, args.per_second, args.per_chat_per_second
    )
    app = web.Application()
    app.router.add_post("/conversations/{sender}/trigger_intent", platform.trigger)
    app.router.add_get("/conversations/{sender}/tracker", platform.tracker)
    app.router.add_get("/stats", platform.stats)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()

"""Platform pacing for proactive delivery: evenly spaced sends per platform and per chat."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from bot.db.models import Platform
from bot.proactive.policy import PlatformLimit

# Stay this far under each limit: an asyncio task wakes a little late at times, and two
# late ones must not add up to one message too many in a platform's one-second window.
SAFETY_MARGIN = 0.05
# Messages left unused in every window of a platform that allows many a second: the
# platform counts arrivals, and a busy network or machine can bunch a few of them up.
HEADROOM_MESSAGES = 1
# Per-chat bookkeeping older than this is forgotten (an outage touches each chat once).
CHAT_MEMORY_SECONDS = 60.0


class Pacer:
    """Hands out send times: at most N a second per platform and M a second per chat.

    Each send takes the next free slot, so sends are spread evenly rather than burst and
    stopped; a platform's retry-after pauses that platform for everyone.
    """

    def __init__(
        self,
        limits: dict[Platform, PlatformLimit],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        # Sends allowed in any one window (a second, stretched by the margin).
        self._per_window = {
            platform: max(1, int(limit.per_second) - HEADROOM_MESSAGES)
            if limit.per_second >= 10
            else max(1, int(limit.per_second))
            for platform, limit in limits.items()
        }
        self._interval = {
            platform: (1 + SAFETY_MARGIN) / self._per_window[platform] for platform in limits
        }
        self._chat_interval = {
            platform: (1 + SAFETY_MARGIN) / limit.per_chat_per_second
            for platform, limit in limits.items()
        }
        self._next_platform_slot: dict[Platform, float] = {}
        self._next_chat_slot: dict[tuple[Platform, str], float] = {}
        # The actual send times of the latest sends, per platform.
        self._recent: dict[Platform, deque[float]] = {}
        # What was really sent, for the worker's health endpoint.
        self.sent: dict[Platform, int] = {}
        self.busiest_second: dict[Platform, int] = {}
        self._last_chat_send: dict[tuple[Platform, str], float] = {}
        self._clock = clock
        self._sleep = sleep
        self._last_sweep = clock()

    async def wait_turn(self, platform: Platform, chat: str) -> None:
        """Return when a message to `chat` on `platform` may be sent."""
        now = self._clock()
        chat_key = (platform, chat)
        chat_slot = max(now, self._next_chat_slot.get(chat_key, now))
        self._next_chat_slot[chat_key] = chat_slot + self._chat_interval[platform]
        if chat_slot > now:
            await self._sleep(chat_slot - now)
        # The platform-wide slot is taken only once this chat's turn has come, so a chat
        # with a queue of its own does not hold up everyone else's messages.
        now = self._clock()
        slot = max(now, self._next_platform_slot.get(platform, now))
        self._next_platform_slot[platform] = slot + self._interval[platform]
        if slot > now:
            await self._sleep(slot - now)
        await self._hold_to_window(platform, chat_key)
        self._forget_idle_chats()

    async def _hold_to_window(self, platform: Platform, chat_key: tuple[Platform, str]) -> None:
        """The slots say when to send; this checks what was really sent.

        After the event loop stalls (a slow query, a busy machine), several tasks whose
        slots have passed wake at once and would go out together. Counting the actual
        sends of the last window, and the chat's last actual send, keeps even that burst
        within the limits. Check and record run without an await in between, so two
        tasks cannot both take the last place.
        """
        window = 1.0 + SAFETY_MARGIN
        recent = self._recent.setdefault(platform, deque(maxlen=self._per_window[platform]))
        while True:
            now = self._clock()
            wait = 0.0
            if len(recent) == recent.maxlen:
                wait = recent[0] + window - now
            wait = max(
                wait,
                self._last_chat_send.get(chat_key, -1e18) + self._chat_interval[platform] - now,
            )
            if wait <= 0:
                break
            await self._sleep(wait)
        in_last_second = 1 + sum(1 for sent in recent if sent > now - 1.0)
        self.busiest_second[platform] = max(self.busiest_second.get(platform, 0), in_last_second)
        self.sent[platform] = self.sent.get(platform, 0) + 1
        recent.append(now)
        self._last_chat_send[chat_key] = now

    def pause(self, platform: Platform, seconds: float) -> None:
        """The platform asked us to wait (HTTP 429 with retry-after): nobody sends before then."""
        until = self._clock() + seconds
        self._next_platform_slot[platform] = max(self._next_platform_slot.get(platform, 0), until)

    def _forget_idle_chats(self) -> None:
        now = self._clock()
        if now - self._last_sweep < CHAT_MEMORY_SECONDS:
            return
        self._last_sweep = now
        self._next_chat_slot = {
            key: slot
            for key, slot in self._next_chat_slot.items()
            if slot > now - CHAT_MEMORY_SECONDS
        }
        self._last_chat_send = {
            key: sent
            for key, sent in self._last_chat_send.items()
            if sent > now - CHAT_MEMORY_SECONDS
        }

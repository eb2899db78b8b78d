"""Platform pacing for proactive delivery: evenly spaced sends per platform and per chat.

Send times come from a slot book. One worker keeps it in memory; several workers (scale-out)
keep it in Redis, so that together they stay within a platform's limit instead of each
taking all of it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as redis

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


class SlotBook(Protocol):
    """The next free send time of each platform and chat, handed out one slot at a time."""

    async def take(self, key: str, interval: float) -> float:
        """Take `key`'s next slot and keep the following one `interval` seconds after it.

        Returns how many seconds from now the slot taken is.
        """
        ...

    async def hold(self, key: str, seconds: float) -> None:
        """No slot of `key` earlier than `seconds` from now (a platform's retry-after)."""
        ...


class LocalSlotBook:
    """Slots kept in this process: for a single worker."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._next: dict[str, float] = {}
        self._last_sweep = clock()

    async def take(self, key: str, interval: float) -> float:
        now = self._clock()
        slot = max(now, self._next.get(key, now))
        self._next[key] = slot + interval
        self._forget_passed(now)
        return slot - now

    async def hold(self, key: str, seconds: float) -> None:
        self._next[key] = max(self._next.get(key, 0.0), self._clock() + seconds)

    def _forget_passed(self, now: float) -> None:
        # Keys whose next slot is long past say nothing any more (an outage touches each
        # chat once).
        if now - self._last_sweep < CHAT_MEMORY_SECONDS:
            return
        self._last_sweep = now
        self._next = {k: v for k, v in self._next.items() if v > now - CHAT_MEMORY_SECONDS}


# Both run atomically in Redis, on Redis's clock, so workers on several machines agree.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local following = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.6f', following), 'PX',
           math.ceil((following - now) * 1000) + tonumber(ARGV[2]))
return string.format('%.6f', slot - now)
"""
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local held = now + tonumber(ARGV[1])
if held > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%.6f', held), 'PX',
             math.ceil(tonumber(ARGV[1]) * 1000) + tonumber(ARGV[2]))
end
return 1
"""


class RedisSlotBook:
    """Slots shared by every worker through Redis; `prefix` keeps deployments apart."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._take = client.register_script(_TAKE)
        self._hold = client.register_script(_HOLD)
        # A key outlives its next slot by this much, then Redis forgets it.
        self._linger_ms = str(math.ceil(CHAT_MEMORY_SECONDS * 1000))

    @classmethod
    def from_url(cls, url: str, prefix: str) -> RedisSlotBook:
        return cls(redis.Redis.from_url(url), prefix)

    async def take(self, key: str, interval: float) -> float:
        wait = await self._take(keys=[self._key(key)], args=[interval, self._linger_ms])
        return float(wait)

    async def hold(self, key: str, seconds: float) -> None:
        await self._hold(keys=[self._key(key)], args=[seconds, self._linger_ms])

    async def close(self) -> None:
        await self._client.aclose()

    def _key(self, key: str) -> str:
        return f"{self._prefix}:pacing:{key}"


class Pacer:
    """Hands out send times: at most N a second per platform and M a second per chat.

    Each send takes the next free slot, so sends are spread evenly rather than burst and
    stopped; a platform's retry-after pauses that platform for everyone.
    """

    def __init__(
        self,
        limits: dict[Platform, PlatformLimit],
        *,
        slots: SlotBook | None = None,
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
        self.slots = slots or LocalSlotBook(clock)
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
        chat_key = (platform, chat)
        wait = await self.slots.take(f"chat:{platform.value}:{chat}", self._chat_interval[platform])
        if wait > 0:
            await self._sleep(wait)
        # The platform-wide slot is taken only once this chat's turn has come, so a chat
        # with a queue of its own does not hold up everyone else's messages.
        wait = await self.slots.take(f"platform:{platform.value}", self._interval[platform])
        if wait > 0:
            await self._sleep(wait)
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

    async def pause(self, platform: Platform, seconds: float) -> None:
        """The platform asked us to wait (HTTP 429 with retry-after): nobody sends before then."""
        await self.slots.hold(f"platform:{platform.value}", seconds)

    def _forget_idle_chats(self) -> None:
        now = self._clock()
        if now - self._last_sweep < CHAT_MEMORY_SECONDS:
            return
        self._last_sweep = now
        self._last_chat_send = {
            key: sent
            for key, sent in self._last_chat_send.items()
            if sent > now - CHAT_MEMORY_SECONDS
        }

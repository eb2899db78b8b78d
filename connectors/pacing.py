"""Platform rate limits: space messages per chat and overall, and honour Retry-After."""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable, Deque, Dict, Optional

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Telegram: about one message a second to one chat, 30 a second across all chats.
TELEGRAM_CHAT_INTERVAL = 1.0
TELEGRAM_OVERALL_PER_SECOND = 30
# Slack: chat.postMessage allows about one message a second per channel.
SLACK_CHANNEL_INTERVAL = 1.0


@dataclass
class _Chat:
    lock: asyncio.Lock
    # When the last message to this chat finished sending (its response arrived).
    last_sent: float = float("-inf")
    paused_until: float = float("-inf")


class Pacer:
    """Spaces sends so a platform never sees more than its limits.

    Per chat, a send starts at least `chat_interval` seconds after the previous one to that
    chat *finished*, so however the network delays requests, the platform sees them spaced.
    Overall, at most `overall_limit` sends are under way or finished within any `window`.
    Sends to one chat go out in the order they were asked for (asyncio locks are fair).
    """

    def __init__(
        self,
        chat_interval: float,
        overall_limit: Optional[int] = None,
        *,
        window: float = 1.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_idle_chats: int = 10_000,
    ) -> None:
        self.chat_interval = chat_interval
        self.overall_limit = overall_limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._chats: Dict[str, _Chat] = {}
        self._recent: Deque[float] = deque()
        self._in_flight = 0
        self._paused_until = float("-inf")
        self._max_idle_chats = max_idle_chats
        self._slot_freed: Optional[asyncio.Event] = None

    def pause(self, seconds: float, chat: Optional[str] = None) -> None:
        """The platform said "retry after": no send (to `chat`, or at all) before then."""
        until = self._clock() + max(0.0, seconds)
        if chat is None:
            self._paused_until = max(self._paused_until, until)
        else:
            state = self._chat(chat)
            state.paused_until = max(state.paused_until, until)

    async def wait_until_unpaused(self) -> None:
        """For calls that are not paced per chat but must still respect a retry-after."""
        while self._clock() < self._paused_until:
            await self._sleep(self._paused_until - self._clock())

    @asynccontextmanager
    async def turn(self, chat: str) -> AsyncIterator[None]:
        """Wait until a message to `chat` may go out; send it inside the block."""
        state = self._chat(chat)
        async with state.lock:
            await self._wait_for_chat(state)
            await self._reserve_overall()
            try:
                yield
            finally:
                now = self._clock()
                state.last_sent = now
                self._release_overall(now)
        self._forget_idle_chats()

    async def _wait_for_chat(self, state: _Chat) -> None:
        while True:
            now = self._clock()
            ready_at = max(
                state.last_sent + self.chat_interval, state.paused_until, self._paused_until
            )
            if now >= ready_at:
                return
            await self._sleep(ready_at - now)

    async def _reserve_overall(self) -> None:
        if self.overall_limit is None:
            while self._clock() < self._paused_until:
                await self._sleep(self._paused_until - self._clock())
            return
        while True:
            now = self._clock()
            while self._recent and self._recent[0] <= now - self.window:
                self._recent.popleft()
            if now < self._paused_until:
                await self._sleep(self._paused_until - now)
                continue
            if len(self._recent) + self._in_flight < self.overall_limit:
                self._in_flight += 1
                return
            if self._recent:
                # Sends finish in order of the clock, so the oldest leaves the window first.
                await self._sleep(self._recent[0] + self.window - now)
            else:
                # Every slot is a send still under way: wait for one to finish.
                self._slot_freed = self._slot_freed or asyncio.Event()
                await self._slot_freed.wait()

    def _release_overall(self, now: float) -> None:
        if self.overall_limit is None:
            return
        self._in_flight -= 1
        self._recent.append(now)
        if self._slot_freed is not None:
            self._slot_freed.set()
            self._slot_freed = None

    def _chat(self, chat: str) -> _Chat:
        state = self._chats.get(chat)
        if state is None:
            state = self._chats[chat] = _Chat(lock=asyncio.Lock())
        return state

    def _forget_idle_chats(self) -> None:
        """Keep memory bounded: a chat whose spacing has long passed needs no state."""
        if len(self._chats) <= self._max_idle_chats:
            return
        horizon = self._clock() - max(self.chat_interval, 1.0)
        for chat, state in list(self._chats.items()):
            idle = state.last_sent < horizon and state.paused_until < horizon
            if idle and not state.lock.locked():
                del self._chats[chat]


def interval_from_env(name: str, default: float) -> float:
    """A spacing override (tests use a short one); never below zero, bad values ignored."""
    raw = os.environ.get(name, "")
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value >= 0 else default


def telegram_pacer() -> Pacer:
    return Pacer(
        interval_from_env("HERALD_TELEGRAM_CHAT_INTERVAL", TELEGRAM_CHAT_INTERVAL),
        int(interval_from_env("HERALD_TELEGRAM_OVERALL_PER_SECOND", TELEGRAM_OVERALL_PER_SECOND))
        or TELEGRAM_OVERALL_PER_SECOND,
    )


def slack_pacer() -> Pacer:
    return Pacer(interval_from_env("HERALD_SLACK_CHANNEL_INTERVAL", SLACK_CHANNEL_INTERVAL))

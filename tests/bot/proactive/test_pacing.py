"""Platform pacing: within each platform's limits overall and per chat, even after a 429,
and for several workers together."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import redis.asyncio as redis

from bot.db.models import Platform
from bot.proactive.pacing import Pacer, RedisSlotBook
from bot.proactive.policy import load_policy


@dataclass
class FakeTime:
    now: float = 1000.0
    sends: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def most_in_any_window(times: list[float], window: float = 1.0) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


async def test_telegram_gets_at_most_thirty_a_second_and_nearly_that() -> None:
    time = FakeTime()
    pacer = Pacer(load_policy().platforms, clock=time.clock, sleep=time.sleep)

    for chat in range(300):
        await pacer.wait_turn(Platform.TELEGRAM, str(chat))
        time.sends.append(time.now)

    assert most_in_any_window(time.sends) <= 30
    assert pacer.busiest_second[Platform.TELEGRAM] <= 30
    assert pacer.sent[Platform.TELEGRAM] == 300
    rate = (len(time.sends) - 1) / (time.sends[-1] - time.sends[0])
    assert rate >= 0.9 * 30


async def test_one_chat_gets_at_most_one_a_second_without_holding_up_others() -> None:
    time = FakeTime()
    pacer = Pacer(load_policy().platforms, clock=time.clock, sleep=time.sleep)
    start = time.now

    for _ in range(5):
        await pacer.wait_turn(Platform.SLACK, "C1")
        time.sends.append(time.now)
    await pacer.wait_turn(Platform.SLACK, "C2")

    gaps = [b - a for a, b in zip(time.sends, time.sends[1:], strict=False)]
    assert min(gaps) >= 1.0
    # C2 waited only for the platform-wide spacing, not for C1's queue.
    assert time.now - start < 5


async def test_a_retry_after_pauses_the_whole_platform() -> None:
    time = FakeTime()
    pacer = Pacer(load_policy().platforms, clock=time.clock, sleep=time.sleep)

    await pacer.pause(Platform.TELEGRAM, 12.0)
    await pacer.wait_turn(Platform.TELEGRAM, "anyone")

    assert time.now >= 1012.0
    before = time.now
    await pacer.wait_turn(Platform.WEB, "web:1")
    assert time.now == before  # other platforms are not held back


# -- several workers: the slot book in Redis --------------------------------------------

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def shared_slots() -> AsyncIterator[Callable[[], RedisSlotBook]]:
    """Slot books of several workers of one deployment, as each would open its own."""
    prefix = f"test{uuid.uuid4().hex[:8]}"
    books: list[RedisSlotBook] = []

    def open_book() -> RedisSlotBook:
        books.append(RedisSlotBook.from_url(REDIS_URL, prefix))
        return books[-1]

    yield open_book
    cleanup = redis.Redis.from_url(REDIS_URL)
    keys = [key async for key in cleanup.scan_iter(f"{prefix}:*")]
    if keys:
        await cleanup.delete(*keys)
    await cleanup.aclose()
    for book in books:
        await book.close()


async def send_from_both(
    pacers: list[Pacer], messages: int, chat_of: Callable[[int], str]
) -> list[float]:
    """`messages` sends, handed out in turn to the workers' pacers; their send times."""
    sends: list[float] = []

    async def send(index: int) -> None:
        await pacers[index % len(pacers)].wait_turn(Platform.TELEGRAM, chat_of(index))
        sends.append(time.monotonic())

    await asyncio.gather(*(send(index) for index in range(messages)))
    return sorted(sends)


async def test_two_workers_alone_would_send_twice_telegrams_limit() -> None:
    pacers = [Pacer(load_policy().platforms) for _ in range(2)]

    sends = await send_from_both(pacers, 60, str)

    assert most_in_any_window(sends) > 30


async def test_two_workers_sharing_redis_stay_within_telegrams_limit_together(
    shared_slots: Callable[[], RedisSlotBook],
) -> None:
    pacers = [Pacer(load_policy().platforms, slots=shared_slots()) for _ in range(2)]

    sends = await send_from_both(pacers, 60, str)

    assert most_in_any_window(sends) <= 30
    rate = (len(sends) - 1) / (sends[-1] - sends[0])
    assert rate >= 0.7 * 30


async def test_a_chat_gets_one_message_a_second_whichever_worker_sends_it(
    shared_slots: Callable[[], RedisSlotBook],
) -> None:
    pacers = [Pacer(load_policy().platforms, slots=shared_slots()) for _ in range(2)]

    sends = await send_from_both(pacers, 3, lambda _: "one-chat")

    assert min(b - a for a, b in zip(sends, sends[1:], strict=False)) >= 0.95


async def test_a_retry_after_one_worker_got_holds_every_worker(
    shared_slots: Callable[[], RedisSlotBook],
) -> None:
    told, other = (Pacer(load_policy().platforms, slots=shared_slots()) for _ in range(2))

    await told.pause(Platform.TELEGRAM, 0.5)
    started = time.monotonic()
    await other.wait_turn(Platform.TELEGRAM, "someone")

    assert time.monotonic() - started >= 0.45


async def test_a_scale_out_worker_paces_through_redis_and_a_lone_one_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.proactive.pacing import LocalSlotBook
    from bot.proactive.worker import Worker
    from bot.settings import get_settings

    get_settings.cache_clear()
    lone = Worker(get_settings())
    monkeypatch.setenv("HERALD_PACING_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("HERALD_PACING_KEY_PREFIX", "testworker")
    get_settings.cache_clear()
    scaled = Worker(get_settings())
    try:
        assert isinstance(lone.dispatcher.pacer.slots, LocalSlotBook)
        assert scaled.dispatcher.pacer.slots is scaled.shared_slots
        assert isinstance(scaled.shared_slots, RedisSlotBook)
    finally:
        get_settings.cache_clear()
        for worker in (lone, scaled):
            await worker.delivery.close()
            if worker.shared_slots is not None:
                await worker.shared_slots.close()

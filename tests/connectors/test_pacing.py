"""Platform rate limits with the real defaults, on a virtual clock so no test waits."""

from __future__ import annotations

import asyncio

import pytest

from connectors.pacing import (
    SLACK_CHANNEL_INTERVAL,
    TELEGRAM_CHAT_INTERVAL,
    TELEGRAM_OVERALL_PER_SECOND,
    Pacer,
    interval_from_env,
    slack_pacer,
    telegram_pacer,
)


class VirtualClock:
    """Time that passes only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def telegram_defaults(clock: VirtualClock) -> Pacer:
    return Pacer(
        TELEGRAM_CHAT_INTERVAL, TELEGRAM_OVERALL_PER_SECOND, clock=clock, sleep=clock.sleep
    )


async def send_times(pacer: Pacer, clock: VirtualClock, chats: list[str]) -> list[float]:
    times = []
    for chat in chats:
        async with pacer.turn(chat):
            times.append(clock.now)
    return times


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


def test_the_defaults_are_the_platforms_published_limits() -> None:
    assert (TELEGRAM_CHAT_INTERVAL, TELEGRAM_OVERALL_PER_SECOND) == (1.0, 30)
    assert SLACK_CHANNEL_INTERVAL == 1.0


async def test_telegram_sends_one_message_a_second_to_one_chat() -> None:
    clock = VirtualClock()
    times = await send_times(telegram_defaults(clock), clock, ["chat-1"] * 100)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 1.0
    assert times[-1] - times[0] == pytest.approx(99.0)  # and no slower than it must be


async def test_telegram_sends_at_most_30_a_second_overall() -> None:
    clock = VirtualClock()
    times = await send_times(telegram_defaults(clock), clock, [f"chat-{i}" for i in range(100)])
    assert max_in_any_window(times) == 30
    assert times[29] == times[0]  # different chats are not spaced per chat


async def test_other_chats_do_not_wait_for_a_busy_chat() -> None:
    clock = VirtualClock()
    pacer = telegram_defaults(clock)
    times = await send_times(pacer, clock, ["busy", "busy", "quiet"])
    assert times == [1000.0, 1001.0, 1001.0]


async def test_retry_after_pauses_everything_for_that_long() -> None:
    clock = VirtualClock()
    pacer = telegram_defaults(clock)
    await send_times(pacer, clock, ["a"])
    pacer.pause(7)
    times = await send_times(pacer, clock, ["b", "a"])
    assert times[0] >= 1007.0 and times[1] >= 1007.0


async def test_a_pause_for_one_chat_leaves_others_alone() -> None:
    clock = VirtualClock()
    pacer = telegram_defaults(clock)
    pacer.pause(5, chat="a")
    times = await send_times(pacer, clock, ["b", "a"])
    assert times == [1000.0, 1005.0]


async def test_slack_spaces_each_channel_by_a_second_with_no_overall_cap() -> None:
    clock = VirtualClock()
    pacer = Pacer(SLACK_CHANNEL_INTERVAL, clock=clock, sleep=clock.sleep)
    times = await send_times(pacer, clock, ["C1", "C1", *[f"D{i}" for i in range(50)]])
    assert times[1] - times[0] >= 1.0
    assert max_in_any_window(times) == 51


async def test_messages_to_one_chat_keep_their_order_when_sent_concurrently() -> None:
    pacer = Pacer(0.005, 30)
    sent: list[int] = []

    async def send(n: int) -> None:
        async with pacer.turn("chat"):
            sent.append(n)

    await asyncio.gather(*(send(n) for n in range(20)))
    assert sent == list(range(20))


async def test_sends_under_way_count_against_the_overall_limit() -> None:
    pacer = Pacer(0.0, 3, window=0.05)
    started: list[int] = []
    release = asyncio.Event()

    async def send(n: int) -> None:
        async with pacer.turn(f"chat-{n}"):
            started.append(n)
            await release.wait()

    tasks = [asyncio.ensure_future(send(n)) for n in range(5)]
    await asyncio.sleep(0.02)
    assert len(started) == 3  # two wait while three are in flight
    release.set()
    await asyncio.gather(*tasks)
    assert sorted(started) == list(range(5))


def test_overrides_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_TELEGRAM_CHAT_INTERVAL", "0.05")
    monkeypatch.setenv("HERALD_SLACK_CHANNEL_INTERVAL", "-3")
    assert telegram_pacer().chat_interval == 0.05
    assert telegram_pacer().overall_limit == 30
    assert slack_pacer().chat_interval == 1.0  # nonsense is ignored
    monkeypatch.setenv("HERALD_TELEGRAM_CHAT_INTERVAL", "soon")
    assert interval_from_env("HERALD_TELEGRAM_CHAT_INTERVAL", 1.0) == 1.0

"""Platform pacing: within each platform's limits overall and per chat, even after a 429."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.db.models import Platform
from bot.proactive.pacing import Pacer
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

    pacer.pause(Platform.TELEGRAM, 12.0)
    await pacer.wait_turn(Platform.TELEGRAM, "anyone")

    assert time.now >= 1012.0
    before = time.now
    await pacer.wait_turn(Platform.WEB, "web:1")
    assert time.now == before  # other platforms are not held back

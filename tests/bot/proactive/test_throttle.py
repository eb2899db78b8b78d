"""The throttle's decisions, one rule at a time, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.proactive.policy import QuietHours, ThrottlePolicy, load_policy
from bot.proactive.throttle import Candidate, PastSend, Preferences, Verdict, decide

BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")
# 13:00 in Berlin (UTC+1 in November).
NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def policy() -> ThrottlePolicy:
    return load_policy().throttle


def renewal(key: str = "renewal:1", expires_at: datetime | None = None) -> Candidate:
    return Candidate("renewal", urgent=False, dedup_key=key, expires_at=expires_at)


def outage(key: str = "outage:1") -> Candidate:
    return Candidate("outage", urgent=True, dedup_key=key)


def sent(topic: str, at: datetime, urgent: bool = False, key: str | None = None) -> PastSend:
    return PastSend(topic, urgent, at, key or f"{topic}:{at.isoformat()}")


def test_a_first_message_in_the_daytime_goes_out(policy: ThrottlePolicy) -> None:
    decision = decide(renewal(), Preferences(BERLIN), [], NOON, policy)
    assert decision.verdict is Verdict.SEND


@pytest.mark.parametrize(
    ("opted_out", "candidate", "reason"),
    [
        ({"renewal"}, renewal(), "opted_out"),
        ({"all"}, renewal(), "stopped_all"),
        ({"outage"}, outage(), "opted_out"),  # urgent, but the customer said no to outages
        ({"all"}, outage(), "stopped_all"),
    ],
)
def test_opt_outs_suppress_even_urgent_messages(
    policy: ThrottlePolicy, opted_out: set[str], candidate: Candidate, reason: str
) -> None:
    decision = decide(candidate, Preferences(BERLIN, frozenset(opted_out)), [], NOON, policy)
    assert (decision.verdict, decision.reason) == (Verdict.SUPPRESS, reason)


def test_opting_out_of_one_topic_leaves_the_others(policy: ThrottlePolicy) -> None:
    prefs = Preferences(BERLIN, frozenset({"shipping"}))
    assert decide(renewal(), prefs, [], NOON, policy).verdict is Verdict.SEND


def test_quiet_hours_defer_a_non_urgent_message_to_their_end(policy: ThrottlePolicy) -> None:
    late = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)  # 23:30 in Berlin

    decision = decide(renewal(), Preferences(BERLIN), [], late, policy)

    assert decision.verdict is Verdict.DEFER and decision.reason == "quiet_hours"
    assert decision.until == datetime(2026, 11, 21, 8, 0, tzinfo=BERLIN)


def test_quiet_hours_are_in_the_customers_own_time_zone(policy: ThrottlePolicy) -> None:
    # 12:00 UTC is 21:00 in Tokyo: quiet there, daytime in Berlin.
    assert decide(renewal(), Preferences(TOKYO), [], NOON, policy).reason == "quiet_hours"
    assert decide(renewal(), Preferences(BERLIN), [], NOON, policy).verdict is Verdict.SEND


def test_urgent_messages_go_out_in_quiet_hours(policy: ThrottlePolicy) -> None:
    night = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    assert decide(outage(), Preferences(BERLIN), [], night, policy).verdict is Verdict.SEND


def test_the_customers_own_quiet_hours_replace_the_default(policy: ThrottlePolicy) -> None:
    prefs = Preferences(BERLIN, quiet_hours=QuietHours(time(12, 0), time(14, 0)))

    decision = decide(renewal(), prefs, [], NOON, policy)  # 13:00 Berlin

    assert decision.verdict is Verdict.DEFER
    assert decision.until == datetime(2026, 11, 20, 14, 0, tzinfo=BERLIN)
    late = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)  # default quiet, not theirs
    assert decide(renewal(), prefs, [], late, policy).verdict is Verdict.SEND


def test_the_daily_cap_defers_until_the_window_frees(policy: ThrottlePolicy) -> None:
    earlier = NOON - timedelta(hours=3)
    history = [sent("shipping", earlier)]

    decision = decide(renewal(), Preferences(BERLIN), history, NOON, policy)

    assert decision.verdict is Verdict.DEFER
    assert decision.reason == "cap_1_per_1d"
    assert decision.until == earlier + timedelta(days=1)


def test_the_weekly_cap_counts_the_last_seven_days(policy: ThrottlePolicy) -> None:
    history = [sent("shipping", NOON - timedelta(days=d)) for d in (2, 4, 6)]

    decision = decide(renewal(), Preferences(BERLIN), history, NOON, policy)

    assert decision.reason == "cap_3_per_7d"
    assert decision.until == NOON - timedelta(days=6) + timedelta(days=7)


def test_urgent_messages_are_exempt_from_caps_and_do_not_use_them_up(
    policy: ThrottlePolicy,
) -> None:
    busy = [sent("shipping", NOON - timedelta(hours=2))]
    assert decide(outage(), Preferences(BERLIN), busy, NOON, policy).verdict is Verdict.SEND

    urgent_only = [sent("outage", NOON - timedelta(hours=h), urgent=True) for h in (1, 2, 3)]
    assert decide(renewal(), Preferences(BERLIN), urgent_only, NOON, policy).verdict is Verdict.SEND


def test_cooldown_per_topic(policy: ThrottlePolicy) -> None:
    # Renewal reminders are at least three days apart, whatever the caps allow.
    last = NOON - timedelta(days=2)

    decision = decide(
        renewal("renewal:2"), Preferences(BERLIN), [sent("renewal", last)], NOON, policy
    )

    assert decision.reason == "cooldown"
    assert decision.until == last + timedelta(days=3)


def test_mid_conversation_defers_non_urgent_until_the_customer_is_idle(
    policy: ThrottlePolicy,
) -> None:
    spoke = NOON - timedelta(minutes=4)

    decision = decide(renewal(), Preferences(BERLIN), [], NOON, policy, last_user_message_at=spoke)

    assert decision.reason == "mid_conversation"
    assert decision.until == spoke + timedelta(minutes=10)
    urgent = decide(outage(), Preferences(BERLIN), [], NOON, policy, last_user_message_at=spoke)
    assert urgent.verdict is Verdict.SEND
    long_ago = NOON - timedelta(hours=1)
    idle = decide(renewal(), Preferences(BERLIN), [], NOON, policy, last_user_message_at=long_ago)
    assert idle.verdict is Verdict.SEND


def test_one_message_per_dedup_key(policy: ThrottlePolicy) -> None:
    history = [sent("outage", NOON - timedelta(minutes=5), urgent=True, key="outage:1")]
    decision = decide(outage("outage:1"), Preferences(BERLIN), history, NOON, policy)
    assert (decision.verdict, decision.reason) == (Verdict.SUPPRESS, "duplicate")


def test_a_stale_message_expires(policy: ThrottlePolicy) -> None:
    decision = decide(renewal(expires_at=NOON), Preferences(BERLIN), [], NOON, policy)
    assert (decision.verdict, decision.reason) == (Verdict.EXPIRE, "expired")


def test_a_message_that_could_only_go_out_after_expiry_expires_now(
    policy: ThrottlePolicy,
) -> None:
    late = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)  # 23:00 Berlin, quiet until 08:00

    decision = decide(
        renewal(expires_at=late + timedelta(hours=2)), Preferences(BERLIN), [], late, policy
    )

    assert (decision.verdict, decision.reason) == (Verdict.EXPIRE, "quiet_hours_until_expiry")


def test_a_deferral_clears_every_known_reason_at_once(policy: ThrottlePolicy) -> None:
    # 20:30 Berlin: the daily cap frees at 21:00, but quiet hours start then.
    now = datetime(2026, 11, 20, 19, 30, tzinfo=UTC)
    history = [sent("shipping", now - timedelta(hours=23, minutes=30))]

    decision = decide(renewal(), Preferences(BERLIN), history, now, policy)

    assert decision.reason == "cap_1_per_1d"
    assert decision.until == datetime(2026, 11, 21, 8, 0, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("start", "end", "clock", "quiet"),
    [
        (time(21), time(8), time(23), True),
        (time(21), time(8), time(7, 59), True),
        (time(21), time(8), time(8), False),
        (time(21), time(8), time(20, 59), False),
        (time(12), time(13), time(12, 30), True),
        (time(12), time(13), time(13), False),
        (time(9), time(9), time(9), False),  # an empty window
    ],
)
def test_quiet_hours_windows(start: time, end: time, clock: time, quiet: bool) -> None:
    assert QuietHours(start, end).contains(clock) is quiet


def test_quiet_hours_end_across_a_daylight_saving_change() -> None:
    # Europe/Berlin leaves summer time on 25 October 2026 at 03:00.
    before = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # 00:00 local (CEST)
    end = QuietHours(time(21), time(8)).end_after(before, BERLIN)
    assert end == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)  # 08:00 CET

"""Whatever events, clock moves and preference changes come, the throttle keeps its promises.

A Hypothesis state machine drives the real `decide` the way the dispatcher does (due rows
in order, deferrals come back when due) and checks after every step: never more
non-urgent messages than the caps allow in any window, nothing non-urgent in quiet hours
or mid-conversation, nothing after an opt-out, never two messages for one dedup key,
and urgent messages held back by nothing but opt-outs, dedup and expiry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bot.proactive.policy import QuietHours, load_policy
from bot.proactive.throttle import Candidate, PastSend, Preferences, Verdict, decide
from bot.proactive.topics import ALL, TOPICS

POLICY = load_policy().throttle
ZONES = (ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Tokyo"), ZoneInfo("America/Los_Angeles"))
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass
class Item:
    customer: int
    candidate: Candidate
    due: datetime
    done: bool = False
    outcome: tuple[Verdict, str] | None = None


@dataclass(frozen=True)
class Send:
    customer: int
    topic: str
    urgent: bool
    at: datetime
    dedup_key: str
    prefs: Preferences
    last_user_message_at: datetime | None


@dataclass
class CustomerState:
    zone: ZoneInfo
    opted_out: set[str] = field(default_factory=set)
    quiet: QuietHours | None = None
    last_user_message_at: datetime | None = None

    def preferences(self) -> Preferences:
        return Preferences(self.zone, frozenset(self.opted_out), self.quiet)


class ThrottleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.customers = [CustomerState(zone) for zone in ZONES]
        self.items: list[Item] = []
        self.sends: list[Send] = []

    # -- what happens in the world ------------------------------------------------------

    @rule(
        customer=st.integers(0, len(ZONES) - 1),
        topic=st.sampled_from(TOPICS),
        # Few distinct keys per topic, so the same event arrives more than once.
        key=st.integers(0, 3),
        expires_in=st.none() | st.integers(1, 72 * 60),
    )
    def event_arrives(self, customer: int, topic: str, key: int, expires_in: int | None) -> None:
        expires_at = self.now + timedelta(minutes=expires_in) if expires_in else None
        candidate = Candidate(
            topic, POLICY.topic(topic).urgent, f"{topic}:{customer}:{key}", expires_at
        )
        self.items.append(Item(customer, candidate, self.now))

    @rule(minutes=st.integers(1, 36 * 60))
    def clock_moves(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule(customer=st.integers(0, len(ZONES) - 1), topic=st.sampled_from((*TOPICS, ALL)))
    def customer_opts_out(self, customer: int, topic: str) -> None:
        self.customers[customer].opted_out.add(topic)

    @rule(customer=st.integers(0, len(ZONES) - 1), topic=st.sampled_from((*TOPICS, ALL)))
    def customer_resumes(self, customer: int, topic: str) -> None:
        self.customers[customer].opted_out.discard(topic)

    @rule(
        customer=st.integers(0, len(ZONES) - 1),
        start=st.integers(0, 23),
        end=st.integers(0, 23),
    )
    def customer_sets_quiet_hours(self, customer: int, start: int, end: int) -> None:
        self.customers[customer].quiet = QuietHours(time(start), time(end))

    @rule(customer=st.integers(0, len(ZONES) - 1))
    def customer_writes(self, customer: int) -> None:
        self.customers[customer].last_user_message_at = self.now

    # -- the dispatcher ---------------------------------------------------------------

    @precondition(lambda self: any(not i.done and i.due <= self.now for i in self.items))
    @rule()
    def dispatcher_runs(self) -> None:
        due = [i for i in self.items if not i.done and i.due <= self.now]
        for item in sorted(due, key=lambda i: (not i.candidate.urgent, i.due)):
            state = self.customers[item.customer]
            history = [
                PastSend(s.topic, s.urgent, s.at, s.dedup_key)
                for s in self.sends
                if s.customer == item.customer
            ]
            decision = decide(
                item.candidate,
                state.preferences(),
                history,
                self.now,
                POLICY,
                last_user_message_at=state.last_user_message_at,
            )
            item.outcome = (decision.verdict, decision.reason)
            if decision.verdict is Verdict.DEFER:
                assert decision.until is not None and decision.until > self.now
                item.due = decision.until
                continue
            item.done = True
            if decision.verdict is Verdict.SEND:
                self.sends.append(
                    Send(
                        item.customer,
                        item.candidate.topic,
                        item.candidate.urgent,
                        self.now,
                        item.candidate.dedup_key,
                        state.preferences(),
                        state.last_user_message_at,
                    )
                )

    # -- the promises -----------------------------------------------------------------

    @invariant()
    def never_more_than_the_caps(self) -> None:
        for customer in range(len(ZONES)):
            times = [s.at for s in self.sends if s.customer == customer and not s.urgent]
            for at in times:
                for cap in POLICY.caps:
                    inside = [t for t in times if at - cap.window < t <= at]
                    assert len(inside) <= cap.max_messages, (cap.name, inside)

    @invariant()
    def nothing_non_urgent_in_quiet_hours(self) -> None:
        for send in self.sends:
            quiet = send.prefs.quiet_hours or POLICY.default_quiet_hours
            if not send.urgent and quiet is not None:
                assert not quiet.contains(send.at.astimezone(send.prefs.zone).time()), send

    @invariant()
    def nothing_after_an_opt_out(self) -> None:
        for send in self.sends:
            assert send.topic not in send.prefs.opted_out and ALL not in send.prefs.opted_out

    @invariant()
    def never_two_messages_for_one_dedup_key(self) -> None:
        keys = [s.dedup_key for s in self.sends]
        assert len(keys) == len(set(keys))

    @invariant()
    def no_interruption_mid_conversation(self) -> None:
        for send in self.sends:
            if not send.urgent and send.last_user_message_at is not None:
                assert send.at >= send.last_user_message_at + POLICY.mid_conversation_idle

    @invariant()
    def urgent_held_back_only_by_opt_out_dedup_or_expiry(self) -> None:
        allowed = {"allowed", "opted_out", "stopped_all", "duplicate", "expired"}
        for item in self.items:
            if item.candidate.urgent and item.outcome is not None:
                assert item.outcome[1] in allowed, item.outcome


TestThrottleMachine = ThrottleMachine.TestCase
TestThrottleMachine.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

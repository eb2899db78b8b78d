"""The throttle: a pure decision (send, defer, suppress or expire) for one outreach, right now."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.proactive.policy import QuietHours, ThrottlePolicy
from bot.proactive.topics import ALL


class Verdict(enum.StrEnum):
    SEND = "send"
    DEFER = "defer"
    SUPPRESS = "suppress"
    EXPIRE = "expire"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    until: datetime | None = None  # for DEFER: when to ask again
    detail: str = ""


@dataclass(frozen=True)
class Candidate:
    """What the throttle needs to know about the message it is asked about."""

    topic: str
    urgent: bool
    dedup_key: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class PastSend:
    """A message already approved for this customer."""

    topic: str
    urgent: bool
    at: datetime
    dedup_key: str


@dataclass(frozen=True)
class Preferences:
    """A customer's choices: opted-out topics ("all" is the global stop) and quiet hours."""

    zone: ZoneInfo
    opted_out: frozenset[str] = field(default_factory=frozenset)
    # The customer's own quiet hours; None means the policy's default.
    quiet_hours: QuietHours | None = None


def effective_quiet_hours(prefs: Preferences, policy: ThrottlePolicy) -> QuietHours | None:
    return prefs.quiet_hours or policy.default_quiet_hours


def decide(
    candidate: Candidate,
    prefs: Preferences,
    history: Sequence[PastSend],
    now: datetime,
    policy: ThrottlePolicy,
    last_user_message_at: datetime | None = None,
) -> Decision:
    """Whether `candidate` may go out at `now`, and if not, why and until when.

    Order matters: hard stops first (expired, duplicate, opted out), then the reasons to
    wait. A deferral points at the earliest time every known reason to wait is gone, so
    a row is not woken up only to be deferred again for the next reason.
    """
    if candidate.expires_at is not None and now >= candidate.expires_at:
        return Decision(Verdict.EXPIRE, "expired")
    if any(past.dedup_key == candidate.dedup_key for past in history):
        return Decision(Verdict.SUPPRESS, "duplicate")
    if ALL in prefs.opted_out:
        return Decision(Verdict.SUPPRESS, "stopped_all")
    if candidate.topic in prefs.opted_out:
        return Decision(Verdict.SUPPRESS, "opted_out")

    first_reason: str | None = None
    moment = now
    # Each pass moves `moment` past one reason to wait; a handful of passes settle it.
    for _ in range(12):
        waits = _reasons_to_wait(candidate, prefs, history, moment, policy, last_user_message_at)
        if not waits:
            break
        first_reason = first_reason or waits[0][0]
        moment = max(until for _, until in waits)
    if first_reason is None:
        return Decision(Verdict.SEND, "allowed")
    if candidate.expires_at is not None and moment >= candidate.expires_at:
        return Decision(
            Verdict.EXPIRE,
            f"{first_reason}_until_expiry",
            detail=f"held back by {first_reason} until after it expires",
        )
    return Decision(Verdict.DEFER, first_reason, until=moment)


def _reasons_to_wait(
    candidate: Candidate,
    prefs: Preferences,
    history: Sequence[PastSend],
    moment: datetime,
    policy: ThrottlePolicy,
    last_user_message_at: datetime | None,
) -> list[tuple[str, datetime]]:
    waits: list[tuple[str, datetime]] = []
    quiet = effective_quiet_hours(prefs, policy)
    if (
        not candidate.urgent
        and quiet is not None
        and quiet.contains(moment.astimezone(prefs.zone).time())
    ):
        waits.append(("quiet_hours", quiet.end_after(moment, prefs.zone)))

    if last_user_message_at is not None and (
        not candidate.urgent or policy.mid_conversation_applies_to_urgent
    ):
        free_at = last_user_message_at + policy.mid_conversation_idle
        if moment < free_at:
            waits.append(("mid_conversation", free_at))

    cooldown = policy.topic(candidate.topic).cooldown
    if not candidate.urgent and cooldown > timedelta(0):
        same_topic = [past.at for past in history if past.topic == candidate.topic]
        if same_topic and moment < max(same_topic) + cooldown:
            waits.append(("cooldown", max(same_topic) + cooldown))

    if not candidate.urgent:
        for cap in policy.caps:
            inside = sorted(
                past.at for past in history if not past.urgent and past.at > moment - cap.window
            )
            if len(inside) >= cap.max_messages:
                # Free again once enough of them have left the window.
                waits.append((cap.name, inside[len(inside) - cap.max_messages] + cap.window))
    return waits

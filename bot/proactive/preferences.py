"""Customers' notification preferences: read them for the throttle, change them from chat."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import Customer, NotificationPreference
from bot.proactive.outbox import chunks
from bot.proactive.policy import QuietHours
from bot.proactive.throttle import Preferences
from bot.proactive.topics import ALL, TOPICS


def zone_of(customer: Customer) -> ZoneInfo:
    try:
        return ZoneInfo(customer.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _quiet_hours(row: NotificationPreference | None) -> QuietHours | None:
    if row is None or not row.quiet_start or not row.quiet_end:
        return None
    start_h, start_m = map(int, row.quiet_start.split(":"))
    end_h, end_m = map(int, row.quiet_end.split(":"))
    return QuietHours(time(start_h, start_m), time(end_h, end_m))


def preferences_of(customer: Customer, rows: Iterable[NotificationPreference]) -> Preferences:
    rows = list(rows)
    return Preferences(
        zone=zone_of(customer),
        opted_out=frozenset(row.topic for row in rows if row.opted_out),
        quiet_hours=_quiet_hours(next((row for row in rows if row.topic == ALL), None)),
    )


def load_preferences(session: Session, customer_ids: Collection[int]) -> dict[int, Preferences]:
    """Preferences of the customers who may be contacted at all (forgotten ones are absent)."""
    rows: dict[int, list[NotificationPreference]] = {cid: [] for cid in customer_ids}
    customers: dict[int, Customer] = {}
    for part in chunks(sorted(customer_ids)):
        customers.update(
            (c.id, c)
            for c in session.scalars(
                select(Customer).where(Customer.id.in_(part), Customer.forgotten_at.is_(None))
            )
        )
        for row in session.scalars(
            select(NotificationPreference).where(NotificationPreference.customer_id.in_(part))
        ):
            rows[row.customer_id].append(row)
    return {cid: preferences_of(customers[cid], rows[cid]) for cid in customers}


# -- changing preferences from chat --------------------------------------------------


def _row(session: Session, customer: Customer, topic: str, now: datetime) -> NotificationPreference:
    row = session.scalar(
        select(NotificationPreference).where(
            NotificationPreference.customer_id == customer.id,
            NotificationPreference.topic == topic,
        )
    )
    if row is None:
        row = NotificationPreference(customer_id=customer.id, topic=topic, opted_out=False)
        session.add(row)
    row.updated_at = now
    return row


def current_rows(session: Session, customer: Customer) -> dict[str, NotificationPreference]:
    return {
        row.topic: row
        for row in session.scalars(
            select(NotificationPreference).where(NotificationPreference.customer_id == customer.id)
        )
    }


def stop(session: Session, customer: Customer, topics: Collection[str], now: datetime) -> None:
    """Opt out of these topics; "all" is the global stop."""
    for topic in topics:
        _row(session, customer, topic, now).opted_out = True


def resume(session: Session, customer: Customer, topics: Collection[str], now: datetime) -> None:
    """Opt back in. Resuming everything clears every opt-out; resuming one topic after a
    global stop turns on just that topic and keeps the rest off, as the customer asked."""
    rows = current_rows(session, customer)
    if ALL in topics:
        for row in rows.values():
            if row.opted_out:
                row.opted_out = False
                row.updated_at = now
        return
    if ALL in rows and rows[ALL].opted_out:
        rows[ALL].opted_out = False
        rows[ALL].updated_at = now
        for topic in TOPICS:
            if topic not in topics:
                _row(session, customer, topic, now).opted_out = True
    for topic in topics:
        _row(session, customer, topic, now).opted_out = False


def only(
    session: Session,
    customer: Customer,
    keep: Collection[str],
    urgent_topics: Collection[str],
    now: datetime,
) -> list[str]:
    """Keep `keep` (the urgent topics if empty) and opt out of the rest; returns what is on."""
    wanted = set(keep) or set(urgent_topics)
    rows = current_rows(session, customer)
    if ALL in rows and rows[ALL].opted_out:
        rows[ALL].opted_out = False
        rows[ALL].updated_at = now
    for topic in TOPICS:
        _row(session, customer, topic, now).opted_out = topic not in wanted
    return [topic for topic in TOPICS if topic in wanted]


def set_quiet_hours(session: Session, customer: Customer, hours: QuietHours, now: datetime) -> None:
    row = _row(session, customer, ALL, now)
    row.quiet_start = f"{hours.start:%H:%M}"
    row.quiet_end = f"{hours.end:%H:%M}"


# -- reading quiet hours from what the customer wrote ---------------------------------

_TIME = re.compile(
    r"(?P<word>midnight|noon|midday)"
    r"|(?P<half>half past )?(?P<hour>\b\d{1,2})(?:[:.h](?P<minute>\d{2}))?"
    r"\s*(?P<ampm>a\.?m\.?|p\.?m\.?)?(?![\d%])",
    re.IGNORECASE,
)
_WORD_HOURS = {"midnight": 0, "noon": 12, "midday": 12}
_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}
_END_WORDS = re.compile(r"\b(before|until|till|til|up to)\b", re.IGNORECASE)
_START_WORDS = re.compile(r"\b(after|from|past|starting|start at|onwards)\b", re.IGNORECASE)
_NIGHT = re.compile(r"\b(night|nights|overnight|evening|late)\b", re.IGNORECASE)


@dataclass(frozen=True)
class ClockTime:
    hour: int
    minute: int
    # Whether am/pm or a 24-hour form made the time unambiguous.
    explicit: bool


def _clock_times(message: str) -> list[tuple[int, ClockTime]]:
    """(position, time) for every clock time in the message, in order."""
    normalised = message
    for word, number in _NUMBER_WORDS.items():
        normalised = re.sub(rf"\b{word}\b", str(number), normalised, flags=re.IGNORECASE)
    found = []
    for match in _TIME.finditer(normalised):
        if match.group("word"):
            hour = _WORD_HOURS[match.group("word").lower()]
            found.append((match.start(), ClockTime(hour, 0, True)))
            continue
        hour = int(match.group("hour"))
        minute = int(match.group("minute") or 0)
        if match.group("half"):
            minute = 30
        ampm = (match.group("ampm") or "").lower().replace(".", "")
        if hour > 24 or minute > 59 or (ampm and not 1 <= hour <= 12):
            continue
        if ampm == "pm" and hour != 12:
            hour += 12
        elif ampm == "am" and hour == 12:
            hour = 0
        explicit = bool(ampm) or hour == 0 or hour > 12 or match.group("hour").startswith("0")
        found.append((match.start(), ClockTime(hour % 24, minute, explicit)))
    return found


def _as_evening(clock: ClockTime) -> time:
    """A bare "9" or "10:30" that starts quiet hours means the evening one."""
    hour = clock.hour
    if not clock.explicit and 5 <= hour < 12:
        hour += 12
    return time(hour, clock.minute)


def _as_morning(clock: ClockTime) -> time:
    return time(clock.hour, clock.minute)


def parse_quiet_hours(message: str, default: QuietHours) -> QuietHours | None:
    """Quiet hours from what a customer wrote, or None if it names no time of day.

    "no messages after 9pm" -> 21:00 until the default morning end; "nothing before 7"
    -> the default evening start until 07:00; "between 22:00 and 7:00" and "11pm-7am" ->
    that window; "only message me between 9am and 6pm" -> quiet from 18:00 to 09:00.
    "at night" alone -> the default window.
    """
    times = _clock_times(message)
    if len(times) >= 2:
        (_, first), (_, second) = times[0], times[1]
        if re.search(r"\bonly\b", message, re.IGNORECASE):
            # The customer named when they *do* want messages.
            return QuietHours(_as_evening(second), _as_morning(first))
        start, end = _as_evening(first), _as_morning(second)
        if not first.explicit and first.hour < 5:
            start = time(first.hour, first.minute)
        return QuietHours(start, end)
    if len(times) == 1:
        position, clock = times[0]
        before = message[:position]
        end_word = _END_WORDS.search(before)
        start_word = _START_WORDS.search(before)
        ends_here = end_word is not None and (
            start_word is None or end_word.start() > start_word.start()
        )
        if re.search(r"\bend\w*\b|\bstop at\b", before, re.IGNORECASE) or ends_here:
            return QuietHours(default.start, _as_morning(clock))
        return QuietHours(_as_evening(clock), default.end)
    if _NIGHT.search(message):
        return default
    return None

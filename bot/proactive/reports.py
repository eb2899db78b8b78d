"""How proactive outreach went, per topic and channel: sent, deferred, suppressed, replied."""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.db.models import NotificationPreference
from bot.db.session import get_engine
from bot.proactive.models import DecisionKind, Outreach, OutreachDecision, OutreachState
from bot.proactive.outbox import chunks
from bot.proactive.topics import ALL

NO_CHANNEL = "none"

# Customer messages in a conversation after a given time (Rasa's SQL tracker store).
# Proactive triggers are user events with an EXTERNAL_* intent and do not count.
_USER_MESSAGES = text(
    "SELECT sender_id, timestamp FROM events "
    "WHERE sender_id IN :senders AND type_name = 'user' AND timestamp >= :since "
    "AND (intent_name IS NULL OR intent_name NOT LIKE 'EXTERNAL%')"
).bindparams(bindparam("senders", expanding=True))


@dataclass
class ReportRow:
    topic: str
    channel: str
    sent: int = 0
    deferred: int = 0  # rows deferred at least once (sent later, or not at all)
    suppressed: dict[str, int] = field(default_factory=dict)  # by reason
    expired: int = 0
    dead: int = 0
    waiting: int = 0
    replied: int = 0
    opted_out: int = 0  # opted out of this topic (or everything) soon after a send

    @property
    def suppressed_total(self) -> int:
        return sum(self.suppressed.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "channel": self.channel,
            "sent": self.sent,
            "deferred": self.deferred,
            "suppressed": dict(sorted(self.suppressed.items())),
            "suppressed_total": self.suppressed_total,
            "expired": self.expired,
            "dead": self.dead,
            "waiting": self.waiting,
            "replied": self.replied,
            "opted_out": self.opted_out,
        }


@dataclass
class OutreachReport:
    since: datetime
    until: datetime
    replied_within: timedelta
    rows: list[ReportRow]
    # Customers currently opted out, per topic ("all" = stopped everything).
    opted_out_now: dict[str, int]
    tracker_store_found: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "replied_within_hours": self.replied_within.total_seconds() / 3600,
            "replies_counted": self.tracker_store_found,
            "rows": [row.as_json() for row in self.rows],
            "opted_out_now": self.opted_out_now,
        }


def _user_messages(
    tracker_url: str | None, senders: list[str], since: datetime
) -> dict[str, list[float]] | None:
    """Sorted message times per conversation, or None if there is no tracker store to read."""
    if not tracker_url:
        return None
    times: dict[str, list[float]] = defaultdict(list)
    try:
        with get_engine(tracker_url).connect() as connection:
            if not inspect(connection).has_table("events"):
                return None
            for part in chunks(senders):
                rows = connection.execute(
                    _USER_MESSAGES, {"senders": list(part), "since": since.timestamp()}
                )
                for sender_id, stamp in rows:
                    times[sender_id].append(float(stamp))
    except SQLAlchemyError:
        return None
    for stamps in times.values():
        stamps.sort()
    return times


def build_report(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    replied_within: timedelta,
    tracker_url: str | None,
) -> OutreachReport:
    """The numbers behind `herald report` and GET /reports/outreach.

    Replied: a customer message in the same conversation within `replied_within` after
    the message was delivered, read from Rasa's tracker store (proactive triggers are
    excluded). Opted out: the customer stopped that topic, or everything, in that window.
    """
    table: dict[tuple[str, str], ReportRow] = {}

    def row_for(topic: str, channel: str | None) -> ReportRow:
        key = (topic, channel or NO_CHANNEL)
        if key not in table:
            table[key] = ReportRow(topic, channel or NO_CHANNEL)
        return table[key]

    created = (Outreach.created_at >= since) & (Outreach.created_at < until)
    outreach = session.execute(
        select(
            Outreach.id,
            Outreach.customer_id,
            Outreach.topic,
            Outreach.platform,
            Outreach.state,
            Outreach.sender_id,
            Outreach.delivered_at,
        ).where(created)
    ).all()
    channel_of = {o.id: (o.platform.value if o.platform else None) for o in outreach}
    topic_of = {o.id: o.topic for o in outreach}
    delivered = []
    for o in outreach:
        row = row_for(o.topic, channel_of[o.id])
        match o.state:
            case OutreachState.SENT:
                row.sent += 1
                if o.delivered_at is not None and o.sender_id:
                    delivered.append(o)
            case OutreachState.EXPIRED:
                row.expired += 1
            case OutreachState.DEAD:
                row.dead += 1
            case OutreachState.PENDING | OutreachState.DEFERRED | OutreachState.SENDING:
                row.waiting += 1

    deferred_rows = set()
    decisions = session.execute(
        select(OutreachDecision.outreach_id, OutreachDecision.kind, OutreachDecision.reason)
        .join(Outreach, Outreach.id == OutreachDecision.outreach_id)
        .where(created, OutreachDecision.kind.in_((DecisionKind.DEFER, DecisionKind.SUPPRESS)))
    )
    for outreach_id, kind, reason in decisions:
        if kind is DecisionKind.DEFER:
            if outreach_id not in deferred_rows:
                deferred_rows.add(outreach_id)
                row_for(topic_of[outreach_id], channel_of[outreach_id]).deferred += 1
        else:
            row = row_for(topic_of[outreach_id], channel_of[outreach_id])
            row.suppressed[reason] = row.suppressed.get(reason, 0) + 1

    messages = _user_messages(tracker_url, sorted({o.sender_id for o in delivered}), since)
    window = replied_within.total_seconds()
    if messages is not None:
        for o in delivered:
            stamps = messages.get(o.sender_id, [])
            start = o.delivered_at.timestamp()
            first = bisect.bisect_right(stamps, start)
            if first < len(stamps) and stamps[first] <= start + window:
                row_for(o.topic, channel_of[o.id]).replied += 1

    preferences: dict[int, list[NotificationPreference]] = defaultdict(list)
    for part in chunks(sorted({o.customer_id for o in delivered})):
        for pref in session.scalars(
            select(NotificationPreference).where(
                NotificationPreference.customer_id.in_(part),
                NotificationPreference.opted_out.is_(True),
            )
        ):
            preferences[pref.customer_id].append(pref)
    for o in delivered:
        for pref in preferences.get(o.customer_id, []):
            stopped_after = o.delivered_at <= pref.updated_at <= o.delivered_at + replied_within
            if pref.topic in (o.topic, ALL) and stopped_after:
                row_for(o.topic, channel_of[o.id]).opted_out += 1
                break

    opted_out_now = {
        topic: int(count)
        for topic, count in session.execute(
            select(NotificationPreference.topic, func.count())
            .where(NotificationPreference.opted_out.is_(True))
            .group_by(NotificationPreference.topic)
        )
    }
    return OutreachReport(
        since=since,
        until=until,
        replied_within=replied_within,
        rows=sorted(table.values(), key=lambda r: (r.topic, r.channel)),
        opted_out_now=dict(sorted(opted_out_now.items())),
        tracker_store_found=messages is not None,
    )


def format_report(report: OutreachReport) -> str:
    """A plain-text table for the terminal."""
    headers = (
        "topic",
        "channel",
        "sent",
        "deferred",
        "suppressed",
        "expired",
        "dead",
        "waiting",
        "replied",
        "opted out",
    )
    lines = [
        [
            r.topic,
            r.channel,
            r.sent,
            r.deferred,
            r.suppressed_total,
            r.expired,
            r.dead,
            r.waiting,
            r.replied,
            r.opted_out,
        ]
        for r in report.rows
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *lines, strict=False)]
    out = [
        f"Proactive outreach {report.since:%Y-%m-%d %H:%M} – {report.until:%Y-%m-%d %H:%M} UTC",
        "",
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    for line in lines:
        out.append("  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)))
    if not lines:
        out.append("(no outreach in this period)")
    reasons: dict[str, int] = defaultdict(int)
    for r in report.rows:
        for reason, count in r.suppressed.items():
            reasons[reason] += count
    if reasons:
        out += ["", "Suppressed by reason:"]
        out += [f"  {reason}: {count}" for reason, count in sorted(reasons.items())]
    if report.opted_out_now:
        out += ["", "Customers opted out now:"]
        out += [f"  {topic}: {count}" for topic, count in report.opted_out_now.items()]
    hours = report.replied_within.total_seconds() / 3600
    if report.tracker_store_found:
        out += ["", f"Replied = a customer message in that conversation within {hours:g} h."]
    else:
        out += ["", "Replies not counted: Rasa's tracker store was not found."]
    return "\n".join(out)


def plot_report(report: OutreachReport, path: Path) -> None:
    """A grouped bar chart per topic: sent, replied, deferred, suppressed, expired, opted out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topics = sorted({r.topic for r in report.rows})
    series = {
        "sent": "sent",
        "replied": "replied",
        "deferred": "deferred",
        "suppressed": "suppressed_total",
        "expired": "expired",
        "opted out": "opted_out",
    }
    values = {
        label: [sum(getattr(r, attr) for r in report.rows if r.topic == t) for t in topics]
        for label, attr in series.items()
    }
    figure, axes = plt.subplots(figsize=(max(6.0, 1.4 * len(topics) + 2), 4.5))
    width = 0.8 / len(series)
    for index, (label, counts) in enumerate(values.items()):
        positions = [i + (index - (len(series) - 1) / 2) * width for i in range(len(topics))]
        axes.bar(positions, counts, width, label=label)
    axes.set_xticks(range(len(topics)))
    axes.set_xticklabels(topics, rotation=20, ha="right")
    axes.set_ylabel("messages")
    axes.set_title(f"Proactive outreach since {report.since:%Y-%m-%d}")
    axes.legend(ncols=3, fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)

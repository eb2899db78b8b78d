"""`herald event|dispatch|scan|report` and the outreach report's numbers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from proactive_fakes import FakeRasa, tracker_event
from proactive_shop import add_customer, add_order
from sqlalchemy import select

from bot.cli import main
from bot.db import session_scope
from bot.db.models import (
    NotificationPreference,
    OrderStatus,
    Subscription,
    SubscriptionStatus,
    SupportTicket,
    TicketStatus,
)
from bot.proactive.models import DecisionKind, Outreach, OutreachState
from bot.proactive.outbox import record
from bot.proactive.reports import build_report, format_report
from bot.settings import get_settings

pytestmark = pytest.mark.parametrize("shop", ["sqlite"], indirect=True)


@pytest.fixture
def herald_env(
    shop: str, fake_rasa: FakeRasa, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Settings for in-process `herald` commands: this shop, the fake Rasa."""
    monkeypatch.setenv("HERALD_DATABASE_URL", shop)
    monkeypatch.setenv("HERALD_TRACKER_DATABASE_URL", shop)
    monkeypatch.setenv("HERALD_RASA_URL", fake_rasa.url)
    monkeypatch.setenv("HERALD_RASA_API_TOKEN", "rasa-token")
    monkeypatch.setenv("HERALD_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield shop
    get_settings.cache_clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_event_dispatch_and_report_from_the_command_line(
    herald_env: str, fake_rasa: FakeRasa, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    with session_scope(herald_env) as session:
        ana = add_customer(session, "Ana", timezone="UTC")
        add_order(session, ana, ("outdoor_camera",), status=OrderStatus.DELIVERED, at=now)
        ana_id = ana.id

    code, out, _ = run(
        capsys,
        "event",
        "outage-start",
        "--service",
        "camera-cloud",
        "--title",
        "Recordings delayed",
        "--key",
        "inc-7",
    )
    assert code == 0
    created = json.loads(out)
    assert created["outreach_queued"] == 1 and created["incident_id"]
    code, out, _ = run(
        capsys,
        "event",
        "outage-start",
        "--service",
        "camera-cloud",
        "--title",
        "Recordings delayed",
        "--key",
        "inc-7",
    )
    assert json.loads(out)["duplicate"] is True

    code, out, _ = run(capsys, "dispatch")
    assert code == 0 and json.loads(out)["sent"] == 1
    assert [t.sender_id for t in fake_rasa.deliveries] == [f"web:{ana_id}"]

    # The customer answers in that conversation.
    tracker_event(herald_env, f"web:{ana_id}", datetime.now(UTC) + timedelta(seconds=1))
    chart = tmp_path / "report.png"
    code, out, err = run(capsys, "report", "--since", "1d", "--plot", str(chart))
    assert code == 0
    assert "outage" in out and "web" in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = run(capsys, "report", "--json")
    (row,) = json.loads(out)["rows"]
    assert (row["sent"], row["replied"]) == (1, 1)


def test_bad_cli_events_say_what_is_wrong(
    herald_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "event", "order-paid", "--order", "55555")
    assert code == 2 and "data.order_number: no such order" in err
    code, _, err = run(
        capsys,
        "event",
        "maintenance",
        "--service",
        "voice",
        "--title",
        "t",
        "--starts-at",
        "tomorrow",
        "--ends-at",
        "2026-01-01T00:00:00Z",
    )
    assert code == 2 and "data.starts_at" in err


def test_scans_find_what_no_system_announced_and_run_idempotently(
    herald_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    with session_scope(herald_env) as session:
        ana = add_customer(session, "Ana")
        add_order(session, ana, ("hub",), status=OrderStatus.DELIVERED, at=now - timedelta(hours=3))
        add_order(
            session,
            ana,
            ("smart_bulb",),
            status=OrderStatus.SHIPPED,
            at=now - timedelta(days=2),
            eta=now - timedelta(days=1),
        )
        session.add(
            Subscription(
                customer_id=ana.id,
                plan="basic",
                price=3.99,
                status=SubscriptionStatus.ACTIVE,
                started_at=now - timedelta(300),
                renews_at=now + timedelta(days=4),
            )
        )
        session.add(
            SupportTicket(
                customer_id=ana.id,
                subject="Hub offline",
                status=TicketStatus.CLOSED,
                opened_at=now - timedelta(days=2),
                closed_at=now - timedelta(hours=5),
            )
        )

    code, out, _ = run(capsys, "scan")
    assert code == 0
    queued = json.loads(out)
    assert queued["renewals_due"] == 1 and queued["shipments_late"] == 1
    assert queued["setup_tips_due"] == 1 and queued["tickets_to_follow_up"] == 1
    assert json.loads(run(capsys, "scan")[1]) == dict.fromkeys(queued, 0)


def test_the_report_counts_deferrals_suppressions_replies_and_opt_outs(shop: str) -> None:
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with session_scope(shop) as session:
        ana = add_customer(session, "Ana")
        ben = add_customer(session, "Ben")
        common = {
            "payload": {},
            "not_before": now,
            "next_attempt_at": now,
            "created_at": now,
            "attempts": 1,
        }
        session.add_all(
            [
                Outreach(
                    customer_id=ana.id,
                    topic="renewal",
                    urgency="normal",
                    dedup_key="a",
                    state=OutreachState.SENT,
                    platform="web",
                    sender_id=f"web:{ana.id}",
                    sent_at=now,
                    delivered_at=now,
                    **common,
                ),
                Outreach(
                    customer_id=ben.id,
                    topic="renewal",
                    urgency="normal",
                    dedup_key="b",
                    state=OutreachState.SENT,
                    platform="web",
                    sender_id=f"web:{ben.id}",
                    sent_at=now,
                    delivered_at=now,
                    **common,
                ),
                Outreach(
                    customer_id=ben.id,
                    topic="shipping",
                    urgency="normal",
                    dedup_key="c",
                    state=OutreachState.SUPPRESSED,
                    platform="web",
                    **common,
                ),
            ]
        )
        session.flush()
        rows = {o.dedup_key: o.id for o in session.scalars(select(Outreach))}
        record(session, rows["a"], DecisionKind.DEFER, "quiet_hours", now - timedelta(hours=9))
        record(session, rows["c"], DecisionKind.SUPPRESS, "opted_out", now)
        session.add(
            NotificationPreference(
                customer_id=ben.id,
                topic="renewal",
                opted_out=True,
                updated_at=now + timedelta(minutes=5),
            )
        )
        ana_id = ana.id
    tracker_event(shop, f"web:{ana_id}", now + timedelta(minutes=2))
    tracker_event(shop, f"web:{ana_id}", now + timedelta(minutes=3), intent="EXTERNAL_renewal")

    with session_scope(shop) as session:
        report = build_report(
            session,
            since=now - timedelta(days=1),
            until=now + timedelta(1),
            replied_within=timedelta(hours=24),
            tracker_url=shop,
        )

    by_topic = {(r.topic, r.channel): r for r in report.rows}
    renewal = by_topic[("renewal", "web")]
    assert (renewal.sent, renewal.deferred, renewal.replied, renewal.opted_out) == (2, 1, 1, 1)
    assert by_topic[("shipping", "web")].suppressed == {"opted_out": 1}
    assert report.opted_out_now == {"renewal": 1}
    text = format_report(report)
    assert "opted_out: 1" in text and "renewal" in text

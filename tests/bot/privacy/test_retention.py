"""Conversation retention, and the privacy commands of `herald` as an operator runs them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from bot.db import migrate, session_scope
from bot.db.models import Customer, Platform
from bot.db.session import get_engine
from bot.identity.models import LinkCode, LinkThrottle
from bot.privacy.retention import purge_conversations
from bot.privacy.tracker import TRACKER_EVENTS
from tests.bot.privacy.test_export_forget import populate, tracker_event
from tests.bot.privacy.traces import traces

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def add_events(url: str, *ages: timedelta) -> None:
    engine = get_engine(url)
    TRACKER_EVENTS.create(engine, checkfirst=True)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(TRACKER_EVENTS),
            [
                tracker_event(f"web:anon-{n:08d}", f"message {n}", (NOW - age).timestamp())
                for n, age in enumerate(ages)
            ],
        )


def remaining(url: str) -> list[str]:
    with get_engine(url).connect() as connection:
        return sorted(connection.execute(sa.select(TRACKER_EVENTS.c.sender_id)).scalars())


def test_events_older_than_the_retention_period_are_purged(database: str) -> None:
    add_events(database, timedelta(days=91), timedelta(days=90, minutes=1), timedelta(days=89))

    with session_scope(database) as session:
        report = purge_conversations(session, get_engine(database), 90, now=NOW)

    assert report.tracker_events == 2
    assert remaining(database) == ["web:anon-00000002"]
    assert report.cutoff == NOW - timedelta(days=90)


def test_purging_clears_stale_linking_leftovers_only(database: str) -> None:
    with session_scope(database) as session:
        session.add(Customer(id=1, name="Ana Silva", email="ana@example.com"))
        session.flush()
        for external_id, expires in (("old", NOW - timedelta(days=2)), ("live", NOW)):
            session.add(
                LinkCode(
                    platform=Platform.SLACK,
                    external_id=external_id,
                    customer_id=1,
                    code_hash="0" * 64,
                    created_at=expires - timedelta(minutes=10),
                    expires_at=expires,
                )
            )
        session.add_all(
            [
                LinkThrottle(
                    platform=Platform.SLACK,
                    external_id="idle",
                    failed_attempts=2,
                    code_requests=1,
                    requests_window_start=NOW - timedelta(days=1),
                    updated_at=NOW - timedelta(days=1),
                ),
                LinkThrottle(
                    platform=Platform.SLACK,
                    external_id="locked",
                    failed_attempts=5,
                    code_requests=1,
                    locked_until=NOW + timedelta(minutes=5),
                    requests_window_start=NOW - timedelta(days=1),
                    updated_at=NOW - timedelta(days=1),
                ),
            ]
        )

    with session_scope(database) as session:
        report = purge_conversations(session, get_engine(database), 30, now=NOW)

    assert (report.tracker_events, report.link_codes, report.link_throttles) == (0, 1, 1)
    with session_scope(database) as session:
        assert session.scalars(select(LinkCode.external_id)).all() == ["live"]
        assert session.scalars(select(LinkThrottle.external_id)).all() == ["locked"]


def test_a_retention_of_less_than_a_day_is_refused(database: str) -> None:
    with session_scope(database) as session, pytest.raises(ValueError):
        purge_conversations(session, get_engine(database), 0, now=NOW)


def herald(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERALD_DATABASE_URL": url}
    env.pop("HERALD_TRACKER_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_operator_exports_then_forgets_a_customer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'herald.db'}"
    migrate(url)
    subject = populate(url)
    out = tmp_path / "exports" / "customer-2.json"

    exported = herald(url, "customer", "export", "2", "--out", str(out))

    assert exported.returncode == 0, exported.stderr
    document = json.loads(out.read_text())
    assert document["customer"]["email"] == subject.email
    assert set(document["conversations"]) == set(subject.sender_ids)
    assert out.stat().st_mode & 0o077 == 0  # personal data: readable by the operator only

    forgotten = herald(url, "customer", "forget", "2", "--yes")

    assert forgotten.returncode == 0, forgotten.stderr
    assert "customer 2 forgotten" in forgotten.stdout
    assert traces(url, [subject.email, subject.name, *subject.sender_ids]) == []
    # Nothing personal reached the command's own log lines either.
    assert subject.email not in forgotten.stderr + exported.stderr


def test_unknown_customers_and_bad_retention_are_clear_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'herald.db'}"
    migrate(url)

    missing = herald(url, "customer", "export", "404")
    assert missing.returncode == 2 and "no customer with id 404" in missing.stderr

    refused = herald(url, "purge-conversations", "--days", "0")
    assert refused.returncode == 2 and "--days" in refused.stderr

    purged = herald(url, "purge-conversations", "--days", "30")
    assert purged.returncode == 0 and "purged 0 conversation events" in purged.stdout


async def test_the_worker_purges_old_conversations_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.proactive.worker import Worker
    from bot.settings import get_settings

    url = f"sqlite:///{tmp_path / 'herald.db'}"
    migrate(url)
    add_events(url, timedelta(days=400), timedelta(days=1))
    monkeypatch.setenv("HERALD_DATABASE_URL", url)
    monkeypatch.setenv("HERALD_RETENTION_DAYS", "30")
    get_settings.cache_clear()
    worker = Worker(get_settings())
    try:
        purging = asyncio.create_task(worker.purge_forever())
        for _ in range(100):
            if len(remaining(url)) == 1:
                break
            await asyncio.sleep(0.1)
        worker.stopping.set()
        await asyncio.wait_for(purging, 10)
    finally:
        await worker.delivery.close()
        get_settings.cache_clear()

    assert remaining(url) == ["web:anon-00000001"]

"""The one YAML policy: sensible defaults, overrides by file, clear errors for mistakes."""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path

import pytest

from bot.db.models import Platform
from bot.proactive.policy import PolicyError, load_policy, parse_duration
from bot.proactive.topics import TOPICS


def test_defaults_cover_every_topic_with_the_designed_limits() -> None:
    policy = load_policy()

    assert set(policy.throttle.topics) == set(TOPICS)
    assert {t for t, p in policy.throttle.topics.items() if p.urgent} == {
        "outage",
        "payment",
        "security",
    }
    assert [(c.window, c.max_messages) for c in policy.throttle.caps] == [
        (timedelta(days=1), 1),
        (timedelta(days=7), 3),
    ]
    quiet = policy.throttle.default_quiet_hours
    assert quiet is not None and (quiet.start, quiet.end) == (time(21), time(8))
    assert policy.platforms[Platform.TELEGRAM].per_second == 30
    assert policy.platforms[Platform.TELEGRAM].per_chat_per_second == 1
    assert policy.platforms[Platform.SLACK].per_chat_per_second == 1


def test_an_override_file_changes_only_what_it_names(tmp_path: Path) -> None:
    override = tmp_path / "policy.yml"
    override.write_text(
        "throttle:\n  topics:\n    shipping: {coalesce_window: 20s}\nscans: {enabled: false}\n"
    )

    policy = load_policy(override)

    assert policy.throttle.topics["shipping"].coalesce_window == timedelta(seconds=20)
    assert policy.throttle.topics["shipping"].expires_after == timedelta(days=2)
    assert policy.throttle.topics["renewal"].cooldown == timedelta(days=3)
    assert policy.scans.enabled is False


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("throttle: {caps: [{window: soon, max: 1}]}", "throttle.caps[0].window"),
        ("throttle: {caps: [{window: 1d, max: 0}]}", "throttle.caps[0].max"),
        ("throttle: {default_quiet_hours: {start: '25:00', end: '08:00'}}", "start"),
        ("throttle: {urgent_topics: [fire]}", "urgent_topics"),
        ("platforms: {telegram: {per_second: -1, per_chat_per_second: 1}}", "per_second"),
        ("- not a mapping", "mapping"),
    ],
)
def test_mistakes_in_the_policy_say_where(tmp_path: Path, yaml: str, message: str) -> None:
    override = tmp_path / "policy.yml"
    override.write_text(yaml)
    with pytest.raises(PolicyError, match=re.escape(message)):
        load_policy(override)


@pytest.mark.parametrize(
    ("raw", "seconds"), [("30s", 30), ("15m", 900), ("24h", 86400), ("7d", 604800), (90, 90)]
)
def test_durations(raw: object, seconds: int) -> None:
    assert parse_duration(raw, "x") == timedelta(seconds=seconds)

"""The proactive policy: policy.yml read into typed values, with an optional override file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bot.db.models import Platform

DEFAULT_POLICY_PATH = Path(__file__).with_name("policy.yml")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class PolicyError(ValueError):
    """The policy file is malformed; the message says which key and why."""


def parse_duration(value: Any, key: str) -> timedelta:
    """'15m', '24h', '7d', '30s' or a number of seconds."""
    if isinstance(value, bool):
        raise PolicyError(f"{key}: expected a duration like 15m, got {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    match = _DURATION.match(str(value))
    if not match:
        raise PolicyError(f"{key}: expected a duration like 30s, 15m, 24h or 7d, got {value!r}")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_clock(value: Any, key: str) -> time:
    match = _CLOCK.match(str(value).strip())
    if not match:
        raise PolicyError(f"{key}: expected a time like 21:00, got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class QuietHours:
    """A daily window of local clock time; start > end means it runs over midnight."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def end_after(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The first end of quiet hours after `moment`, as an aware UTC time."""
        local = moment.astimezone(zone)
        candidate = datetime.combine(local.date(), self.end, tzinfo=zone)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=zone)
        return candidate.astimezone(UTC)

    def label(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True)
class Cap:
    window: timedelta
    max_messages: int

    @property
    def name(self) -> str:
        return f"cap_{self.max_messages}_per_{format_duration(self.window)}"


@dataclass(frozen=True)
class TopicPolicy:
    urgent: bool
    cooldown: timedelta
    coalesce_window: timedelta
    expires_after: timedelta


@dataclass(frozen=True)
class ThrottlePolicy:
    topics: dict[str, TopicPolicy]
    caps: tuple[Cap, ...]
    default_quiet_hours: QuietHours | None
    mid_conversation_idle: timedelta
    mid_conversation_applies_to_urgent: bool

    def topic(self, name: str) -> TopicPolicy:
        try:
            return self.topics[name]
        except KeyError:
            raise PolicyError(f"topic {name!r} has no entry under throttle.topics") from None

    @property
    def history_window(self) -> timedelta:
        """How far back a decision needs to see a customer's sends."""
        spans = [cap.window for cap in self.caps] + [t.cooldown for t in self.topics.values()]
        return max(spans, default=timedelta(0))


@dataclass(frozen=True)
class SchedulePolicy:
    setup_tips_after_delivery: timedelta
    ticket_followup_after_close: timedelta
    maintenance_heads_up: timedelta
    renewal_notice: timedelta


@dataclass(frozen=True)
class ScanPolicy:
    enabled: bool
    interval: timedelta
    lookback: timedelta
    shipment_late_grace: timedelta


@dataclass(frozen=True)
class DispatchPolicy:
    batch_size: int
    poll_interval: timedelta
    lease: timedelta
    concurrency: int
    # Batches decided ahead while earlier ones are still being delivered.
    batches_in_flight: int
    request_timeout: timedelta
    max_attempts: int
    backoff_base: timedelta
    backoff_max: timedelta
    backoff_jitter: float
    channel_unavailable_for: timedelta


@dataclass(frozen=True)
class PlatformLimit:
    per_second: float
    per_chat_per_second: float


@dataclass(frozen=True)
class Policy:
    throttle: ThrottlePolicy
    schedule: SchedulePolicy
    scans: ScanPolicy
    dispatcher: DispatchPolicy
    platforms: dict[Platform, PlatformLimit]
    replied_within: timedelta


def _section(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise PolicyError(f"{key}: expected a mapping")
    return value


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyError(f"{key}: expected a whole number of at least 1, got {value!r}")
    return value


def _positive_number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise PolicyError(f"{key}: expected a positive number, got {value!r}")
    return float(value)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`, mapping by mapping; lists and scalars are replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def policy_from_dict(raw: dict[str, Any]) -> Policy:
    throttle = _section(raw, "throttle")
    urgent = set(throttle.get("urgent_topics") or [])
    topics_raw = _section(throttle, "topics")
    topics = {
        name: TopicPolicy(
            urgent=name in urgent,
            cooldown=parse_duration(spec.get("cooldown", 0), f"throttle.topics.{name}.cooldown"),
            coalesce_window=parse_duration(
                spec.get("coalesce_window", 0), f"throttle.topics.{name}.coalesce_window"
            ),
            expires_after=parse_duration(
                spec.get("expires_after", "1d"), f"throttle.topics.{name}.expires_after"
            ),
        )
        for name, spec in topics_raw.items()
    }
    unknown_urgent = urgent - set(topics)
    if unknown_urgent:
        raise PolicyError(f"throttle.urgent_topics: no such topic {sorted(unknown_urgent)}")
    caps = tuple(
        Cap(
            window=parse_duration(cap.get("window"), f"throttle.caps[{i}].window"),
            max_messages=_positive_int(cap.get("max"), f"throttle.caps[{i}].max"),
        )
        for i, cap in enumerate(throttle.get("caps") or [])
    )
    quiet_raw = throttle.get("default_quiet_hours")
    quiet = (
        QuietHours(
            parse_clock(quiet_raw.get("start"), "throttle.default_quiet_hours.start"),
            parse_clock(quiet_raw.get("end"), "throttle.default_quiet_hours.end"),
        )
        if quiet_raw
        else None
    )
    mid = _section(throttle, "mid_conversation")
    schedule = _section(raw, "schedule")
    scans = _section(raw, "scans")
    dispatcher = _section(raw, "dispatcher")
    backoff = _section(dispatcher, "backoff")
    platforms_raw = _section(raw, "platforms")
    platforms: dict[Platform, PlatformLimit] = {}
    for platform in Platform:
        spec = platforms_raw.get(platform.value)
        if not isinstance(spec, dict):
            raise PolicyError(f"platforms.{platform.value}: expected a mapping")
        platforms[platform] = PlatformLimit(
            per_second=_positive_number(
                spec.get("per_second"), f"platforms.{platform.value}.per_second"
            ),
            per_chat_per_second=_positive_number(
                spec.get("per_chat_per_second"), f"platforms.{platform.value}.per_chat_per_second"
            ),
        )
    jitter = backoff.get("jitter", 0.2)
    if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter < 1:
        raise PolicyError(f"dispatcher.backoff.jitter: expected 0 <= jitter < 1, got {jitter!r}")
    return Policy(
        throttle=ThrottlePolicy(
            topics=topics,
            caps=caps,
            default_quiet_hours=quiet,
            mid_conversation_idle=parse_duration(
                mid.get("idle_for", "10m"), "throttle.mid_conversation.idle_for"
            ),
            mid_conversation_applies_to_urgent=bool(mid.get("applies_to_urgent", False)),
        ),
        schedule=SchedulePolicy(
            **{
                key: parse_duration(schedule.get(key), f"schedule.{key}")
                for key in (
                    "setup_tips_after_delivery",
                    "ticket_followup_after_close",
                    "maintenance_heads_up",
                    "renewal_notice",
                )
            }
        ),
        scans=ScanPolicy(
            enabled=bool(scans.get("enabled", True)),
            interval=parse_duration(scans.get("interval"), "scans.interval"),
            lookback=parse_duration(scans.get("lookback"), "scans.lookback"),
            shipment_late_grace=parse_duration(
                scans.get("shipment_late_grace"), "scans.shipment_late_grace"
            ),
        ),
        dispatcher=DispatchPolicy(
            batch_size=_positive_int(dispatcher.get("batch_size"), "dispatcher.batch_size"),
            poll_interval=parse_duration(
                dispatcher.get("poll_interval"), "dispatcher.poll_interval"
            ),
            lease=parse_duration(dispatcher.get("lease"), "dispatcher.lease"),
            concurrency=_positive_int(dispatcher.get("concurrency"), "dispatcher.concurrency"),
            batches_in_flight=_positive_int(
                dispatcher.get("batches_in_flight", 2), "dispatcher.batches_in_flight"
            ),
            request_timeout=parse_duration(
                dispatcher.get("request_timeout"), "dispatcher.request_timeout"
            ),
            max_attempts=_positive_int(dispatcher.get("max_attempts"), "dispatcher.max_attempts"),
            backoff_base=parse_duration(backoff.get("base"), "dispatcher.backoff.base"),
            backoff_max=parse_duration(backoff.get("max"), "dispatcher.backoff.max"),
            backoff_jitter=float(jitter),
            channel_unavailable_for=parse_duration(
                dispatcher.get("channel_unavailable_for", "5m"),
                "dispatcher.channel_unavailable_for",
            ),
        ),
        platforms=platforms,
        replied_within=parse_duration(
            _section(raw, "reports").get("replied_within"), "reports.replied_within"
        ),
    )


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise PolicyError(f"{path}: {error}") from error
    if not isinstance(loaded, dict):
        raise PolicyError(f"{path}: expected a mapping at the top level")
    return loaded


def load_policy(override: Path | None = None) -> Policy:
    """policy.yml, with `override` (a YAML file of the same shape) on top of it."""
    raw = read_yaml(DEFAULT_POLICY_PATH)
    if override is not None:
        raw = merge(raw, read_yaml(override))
    return policy_from_dict(raw)


@lru_cache(maxsize=4)
def cached_policy(override: Path | None = None) -> Policy:
    """The policy for long-running processes (action server), read once per override path."""
    return load_policy(override)

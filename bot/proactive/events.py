"""Business events as they come in: kinds, the fields each carries, and validation."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.db.catalog import CLOUD_SERVICES

MAX_KEY_LENGTH = 200


class EventKind(enum.StrEnum):
    ORDER_PAID = "order.paid"
    SHIPMENT_STATUS_CHANGED = "shipment.status_changed"
    DEVICE_DELIVERED = "device.delivered"
    CUSTOMER_SIGNED_UP = "customer.signed_up"
    OUTAGE_OPENED = "outage.opened"
    OUTAGE_UPDATED = "outage.updated"
    OUTAGE_RESOLVED = "outage.resolved"
    MAINTENANCE_SCHEDULED = "maintenance.scheduled"
    RENEWAL_DUE = "renewal.due"
    PAYMENT_FAILED = "payment.failed"
    TICKET_CLOSED = "ticket.closed"
    SECURITY_ALERT = "security.alert"


# Shipment states a carrier event may report; the ones customers hear about.
SHIPMENT_UPDATES = ("shipped", "out_for_delivery", "delayed", "delivered")


class EventError(Exception):
    """The event cannot be accepted; `problems` say which field and why."""

    def __init__(self, problems: list[dict[str, str]], status: int = 422) -> None:
        super().__init__("; ".join(f"{p['field']}: {p['error']}" for p in problems))
        self.problems = problems
        self.status = status


@dataclass(frozen=True)
class FieldSpec:
    parse: Callable[[Any], Any]
    required: bool = True


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ValueError("expected a positive whole number")


def _text(limit: int) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("expected a non-empty string")
        if len(value) > limit:
            raise ValueError(f"at most {limit} characters")
        return value.strip()

    return parse


def parse_time(value: Any) -> datetime:
    """An ISO 8601 time with its offset: a time without a zone is ambiguous, so refused."""
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 time such as 2026-11-20T14:00:00Z")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("expected an ISO 8601 time such as 2026-11-20T14:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError("the time needs a UTC offset (e.g. Z or +01:00)")
    return moment.astimezone(UTC)


def _services(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list of cloud service slugs")
    unknown = [s for s in value if s not in CLOUD_SERVICES]
    if unknown:
        raise ValueError(f"unknown service {unknown[0]!r}; known: {', '.join(CLOUD_SERVICES)}")
    return list(dict.fromkeys(value))


def _one_of(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return str(value)

    return parse


def _optional(parse: Callable[[Any], Any]) -> FieldSpec:
    return FieldSpec(parse, required=False)


SPECS: dict[EventKind, dict[str, FieldSpec]] = {
    EventKind.ORDER_PAID: {"order_number": FieldSpec(_int)},
    EventKind.SHIPMENT_STATUS_CHANGED: {
        "order_number": FieldSpec(_int),
        "status": FieldSpec(_one_of(*SHIPMENT_UPDATES)),
        "carrier": _optional(_text(40)),
        "tracking_number": _optional(_text(64)),
        "eta": _optional(parse_time),
        "location": _optional(_text(120)),
    },
    EventKind.DEVICE_DELIVERED: {
        "order_number": FieldSpec(_int),
        "delivered_at": _optional(parse_time),
    },
    EventKind.CUSTOMER_SIGNED_UP: {"customer_id": FieldSpec(_int)},
    EventKind.OUTAGE_OPENED: {
        "services": FieldSpec(_services),
        "title": FieldSpec(_text(200)),
        "details": _optional(_text(2000)),
    },
    EventKind.OUTAGE_UPDATED: {
        "incident_id": FieldSpec(_int),
        "details": FieldSpec(_text(2000)),
        "title": _optional(_text(200)),
        "services": _optional(_services),
    },
    EventKind.OUTAGE_RESOLVED: {
        "incident_id": FieldSpec(_int),
        "details": _optional(_text(2000)),
    },
    EventKind.MAINTENANCE_SCHEDULED: {
        "services": FieldSpec(_services),
        "title": FieldSpec(_text(200)),
        "starts_at": FieldSpec(parse_time),
        "ends_at": FieldSpec(parse_time),
        "details": _optional(_text(2000)),
        "incident_id": _optional(_int),
    },
    EventKind.RENEWAL_DUE: {"subscription_id": FieldSpec(_int)},
    EventKind.PAYMENT_FAILED: {
        "invoice_number": FieldSpec(_text(16)),
        "reason": _optional(_text(200)),
    },
    EventKind.TICKET_CLOSED: {
        "ticket_id": FieldSpec(_int),
        "closed_at": _optional(parse_time),
    },
    EventKind.SECURITY_ALERT: {
        "customer_id": FieldSpec(_int),
        "message": FieldSpec(_text(300)),
    },
}


@dataclass(frozen=True)
class EventIn:
    """A validated event: its kind, typed data, when it happened, and its idempotency key."""

    kind: EventKind
    data: dict[str, Any]
    occurred_at: datetime
    idempotency_key: str | None
    # The request as sent (JSON-safe), stored with the event and hashed for key reuse.
    raw_data: dict[str, Any]

    @property
    def request_hash(self) -> str:
        canonical = json.dumps(
            {"kind": self.kind.value, "data": self.raw_data}, sort_keys=True, default=str
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_event(
    body: Any, *, idempotency_key: str | None = None, now: datetime | None = None
) -> EventIn:
    """Validate a request body {"kind", "data", "occurred_at"?, "id"?}; EventError if wrong.

    The Idempotency-Key header wins over the body's "id"; either makes a repeat harmless.
    """
    if not isinstance(body, Mapping):
        raise EventError([{"field": "body", "error": "expected a JSON object"}], status=400)
    problems: list[dict[str, str]] = []
    unknown = sorted(set(body) - {"kind", "data", "occurred_at", "id"})
    problems += [{"field": key, "error": "unknown field"} for key in unknown]
    try:
        kind = EventKind(str(body.get("kind")))
    except ValueError:
        choices = ", ".join(k.value for k in EventKind)
        raise EventError(
            [*problems, {"field": "kind", "error": f"expected one of {choices}"}]
        ) from None
    data = body.get("data", {})
    if not isinstance(data, Mapping):
        raise EventError([*problems, {"field": "data", "error": "expected an object"}])

    occurred_at = now or datetime.now(UTC)
    if body.get("occurred_at") is not None:
        try:
            occurred_at = parse_time(body["occurred_at"])
        except ValueError as error:
            problems.append({"field": "occurred_at", "error": str(error)})

    key = idempotency_key if idempotency_key is not None else body.get("id")
    if key is not None:
        if not isinstance(key, str | int) or isinstance(key, bool) or not str(key).strip():
            problems.append({"field": "id", "error": "expected a non-empty string"})
        elif len(str(key)) > MAX_KEY_LENGTH:
            problems.append({"field": "id", "error": f"at most {MAX_KEY_LENGTH} characters"})
        key = str(key).strip()

    spec = SPECS[kind]
    parsed: dict[str, Any] = {}
    for name in sorted(set(data) - set(spec)):
        problems.append({"field": f"data.{name}", "error": f"unknown field for {kind.value}"})
    for name, field in spec.items():
        if data.get(name) is None:
            if field.required:
                problems.append({"field": f"data.{name}", "error": "required"})
            continue
        try:
            parsed[name] = field.parse(data[name])
        except ValueError as error:
            problems.append({"field": f"data.{name}", "error": str(error)})

    maintenance = kind is EventKind.MAINTENANCE_SCHEDULED
    if maintenance and not problems and parsed["ends_at"] <= parsed["starts_at"]:
        problems.append({"field": "data.ends_at", "error": "must be after starts_at"})
    if problems:
        raise EventError(problems)
    return EventIn(
        kind=kind,
        data=parsed,
        occurred_at=occurred_at,
        idempotency_key=key,
        raw_data=json.loads(json.dumps(dict(data), default=str)),
    )

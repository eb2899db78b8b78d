"""Incoming events are checked field by field, with messages that say what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.proactive.events import EventError, EventKind, parse_event


def problems(body: Any, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(EventError) as caught:
        parse_event(body, **kwargs)
    return {p["field"]: p["error"] for p in caught.value.problems}


def test_a_valid_outage_event() -> None:
    event = parse_event(
        {
            "kind": "outage.opened",
            "data": {"services": ["camera-cloud"], "title": "Live view down"},
            "occurred_at": "2026-11-20T14:00:00+01:00",
            "id": "status-page-123",
        }
    )
    assert event.kind is EventKind.OUTAGE_OPENED
    assert event.occurred_at == datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
    assert event.idempotency_key == "status-page-123"


def test_the_idempotency_header_wins_over_the_body_id() -> None:
    body = {"kind": "order.paid", "data": {"order_number": 10001}, "id": "a"}
    assert parse_event(body, idempotency_key="b").idempotency_key == "b"


def test_the_same_request_hashes_the_same() -> None:
    one = parse_event({"kind": "order.paid", "data": {"order_number": 10001}})
    two = parse_event({"data": {"order_number": 10001}, "kind": "order.paid"})
    other = parse_event({"kind": "order.paid", "data": {"order_number": 10002}})
    assert one.request_hash == two.request_hash != other.request_hash


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        ({"kind": "volcano"}, "kind", "expected one of"),
        ({"kind": "order.paid", "data": {}}, "data.order_number", "required"),
        ({"kind": "order.paid", "data": {"order_number": "x"}}, "data.order_number", "whole"),
        (
            {"kind": "order.paid", "data": {"order_number": 1, "colour": "red"}},
            "data.colour",
            "unknown field",
        ),
        (
            {"kind": "outage.opened", "data": {"services": ["toaster"], "title": "x"}},
            "data.services",
            "unknown service",
        ),
        (
            {"kind": "outage.opened", "data": {"services": [], "title": "x"}},
            "data.services",
            "non-empty",
        ),
        (
            {"kind": "shipment.status_changed", "data": {"order_number": 1, "status": "lost"}},
            "data.status",
            "expected one of",
        ),
        (
            {"kind": "order.paid", "data": {"order_number": 1}, "occurred_at": "2026-11-20 14:00"},
            "occurred_at",
            "UTC offset",
        ),
        (
            {
                "kind": "maintenance.scheduled",
                "data": {
                    "services": ["voice"],
                    "title": "t",
                    "starts_at": "2026-11-21T10:00:00Z",
                    "ends_at": "2026-11-21T09:00:00Z",
                },
            },
            "data.ends_at",
            "after starts_at",
        ),
        ({"kind": "order.paid", "data": {"order_number": 1}, "extra": 1}, "extra", "unknown field"),
        ({"kind": "order.paid", "data": {"order_number": 1}, "id": "x" * 201}, "id", "at most"),
    ],
)
def test_bad_events_name_the_field(body: dict[str, Any], field: str, error: str) -> None:
    assert error in problems(body)[field]


@pytest.mark.parametrize("body", [[], "text", None, 3])
def test_a_body_that_is_not_an_object_is_a_400(body: Any) -> None:
    with pytest.raises(EventError) as caught:
        parse_event(body)
    assert caught.value.status == 400

"""The proactive HTTP API: event intake, event status, reports and the connectors' call-back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from proactive_shop import add_customer, add_order
from sqlalchemy import select

from bot.api.app import create_app
from bot.db import session_scope
from bot.db.models import ChannelIdentity, OrderStatus, Platform
from bot.proactive.models import DecisionKind, Outreach, OutreachDecision, OutreachState
from bot.settings import get_settings

EVENTS_KEY, ADMIN_KEY, INTERNAL_KEY = "events-key-123", "admin-key-456", "internal-key-789"
EVENTS = {"Authorization": f"Bearer {EVENTS_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
INTERNAL = {"Authorization": f"Bearer {INTERNAL_KEY}"}
OUTAGE = {"kind": "outage.opened", "data": {"services": ["camera-cloud"], "title": "Live view"}}

pytestmark = pytest.mark.parametrize("shop", ["sqlite"], indirect=True)


@pytest.fixture
def customers(shop: str) -> dict[str, int]:
    now = datetime.now(UTC)
    with session_scope(shop) as session:
        ana = add_customer(session, "Ana", telegram="31337")
        add_order(session, ana, ("doorbell",), status=OrderStatus.DELIVERED, at=now)
        ben = add_customer(session, "Ben")
        add_order(session, ben, ("thermostat",), status=OrderStatus.DELIVERED, at=now)
        return {"ana": ana.id, "ben": ben.id}


@pytest.fixture
async def client(shop: str) -> AsyncIterator[TestClient]:
    settings = replace(
        get_settings(),
        database_url=shop,
        tracker_database_url=shop,
        api_events_key=EVENTS_KEY,
        api_admin_key=ADMIN_KEY,
        internal_api_key=INTERNAL_KEY,
    )
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


async def post_event(client: TestClient, body: Any, **headers: str) -> tuple[int, Any]:
    reply = await client.post("/events", json=body, headers={**EVENTS, **headers})
    return reply.status, await reply.json()


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 403), (INTERNAL, 403), (ADMIN, 201)],
)
async def test_events_need_a_key_with_the_events_scope(
    client: TestClient, customers: dict[str, int], headers: dict[str, str], status: int
) -> None:
    reply = await client.post("/events", json=OUTAGE, headers=headers)
    assert reply.status == status


async def test_an_event_is_queued_once_however_often_it_is_posted(
    client: TestClient, customers: dict[str, int], shop: str
) -> None:
    status, first = await post_event(client, OUTAGE, **{"Idempotency-Key": "sp-1"})
    assert status == 201
    assert first["outreach_queued"] == 1 and first["duplicate"] is False

    status, again = await post_event(client, OUTAGE, **{"Idempotency-Key": "sp-1"})
    assert status == 200
    assert again == {**first, "duplicate": True}
    with session_scope(shop) as session:
        assert len(session.scalars(select(Outreach)).all()) == 1

    changed = {**OUTAGE, "data": {**OUTAGE["data"], "title": "Other"}}
    status, conflict = await post_event(client, changed, **{"Idempotency-Key": "sp-1"})
    assert status == 409 and "already used" in conflict["error"]

    # The body's id works as the key too.
    body = {"kind": "customer.signed_up", "data": {"customer_id": customers["ben"]}, "id": "w-1"}
    assert (await post_event(client, body))[0] == 201
    assert (await post_event(client, body))[0] == 200


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"kind": "outage.opened", "data": {"title": "x"}}, 422, "data.services"),
        ({"kind": "telepathy", "data": {}}, 422, "kind"),
        ([1, 2], 400, "body"),
        ({"kind": "order.paid", "data": {"order_number": 99999}}, 422, "data.order_number"),
    ],
)
async def test_bad_events_get_a_clear_4xx(
    client: TestClient, body: Any, status: int, field: str
) -> None:
    got, answer = await post_event(client, body)
    assert got == status
    assert field in {p["field"] for p in answer["problems"]}


async def test_malformed_json_is_a_400(client: TestClient) -> None:
    reply = await client.post("/events", data=b"{nope", headers=EVENTS)
    assert reply.status == 400
    assert "JSON" in (await reply.json())["error"]


async def test_an_events_outreach_can_be_inspected_with_its_decisions(
    client: TestClient, customers: dict[str, int], shop: str
) -> None:
    _, created = await post_event(client, OUTAGE)

    reply = await client.get(f"/events/{created['event_id']}", headers=EVENTS)

    summary = await reply.json()
    assert summary["outreach_states"] == {"pending": 1}
    (row,) = summary["outreach"]
    assert row["customer_id"] == customers["ana"] and row["topic"] == "outage"
    assert (await client.get("/events/999999", headers=EVENTS)).status == 404
    assert (await client.get(f"/events/{created['event_id']}")).status == 401


async def test_reports_need_the_admin_scope(client: TestClient, customers: dict[str, int]) -> None:
    await post_event(client, OUTAGE)

    assert (await client.get("/reports/outreach", headers=EVENTS)).status == 403
    reply = await client.get("/reports/outreach?since=7d", headers=ADMIN)

    assert reply.status == 200
    report = await reply.json()
    assert report["rows"][0]["topic"] == "outage" and report["rows"][0]["waiting"] == 1
    bad = await client.get("/reports/outreach?since=lately", headers=ADMIN)
    assert bad.status == 400


async def test_an_unreachable_identity_stops_its_pending_outreach(
    client: TestClient, customers: dict[str, int], shop: str
) -> None:
    await post_event(client, OUTAGE)
    with session_scope(shop) as session:
        # Routed to Telegram and waiting for a retry when the connector reports the block.
        row = session.scalars(select(Outreach)).one()
        row.platform, row.sender_id = Platform.TELEGRAM, "telegram:31337"
        row.next_attempt_at = datetime.now(UTC) + timedelta(minutes=5)
    report = {"platform": "telegram", "external_id": "31337"}

    assert (
        await client.post("/internal/identities/unreachable", json=report, headers=EVENTS)
    ).status == 403
    reply = await client.post("/internal/identities/unreachable", json=report, headers=INTERNAL)

    assert reply.status == 200
    body = await reply.json()
    assert body["dead_lettered"] == 1 and body["already_known"] is False
    with session_scope(shop) as session:
        identity = session.scalars(
            select(ChannelIdentity).where(ChannelIdentity.external_id == "31337")
        ).one()
        assert identity.unreachable_at is not None
        row = session.scalars(select(Outreach)).one()
        assert row.state is OutreachState.DEAD
        decision = session.scalars(select(OutreachDecision)).one()
        assert (decision.kind, decision.reason) == (DecisionKind.DEAD, "identity_unreachable")
    again = await client.post("/internal/identities/unreachable", json=report, headers=INTERNAL)
    assert (await again.json())["already_known"] is True


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"platform": "telegram", "external_id": "404404"}, 404),
        ({"platform": "fax", "external_id": "1"}, 422),
        ({"platform": "slack"}, 422),
        ({"platform": "slack", "external_id": ""}, 422),
    ],
)
async def test_bad_unreachable_reports(client: TestClient, body: Any, status: int) -> None:
    reply = await client.post("/internal/identities/unreachable", json=body, headers=INTERNAL)
    assert reply.status == status

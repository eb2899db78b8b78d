"""Business events in: POST /events (API key with the events scope), and what became of one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.api.auth import Scope, require_scope
from bot.db import session_scope
from bot.proactive.dispatcher import utc_now
from bot.proactive.events import EventError, EventIn, parse_event
from bot.proactive.models import BusinessEvent, Outreach
from bot.proactive.policy import Policy, load_policy
from bot.proactive.rules import IdempotencyConflict, IngestResult, find_duplicate, ingest_event
from bot.settings import Settings

# Outreach rows listed by GET /events/{id}; their states are always counted in full.
MAX_LISTED = 200


def problem(status: int, error: str, problems: list[dict[str, str]] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": error}
    if problems:
        body["problems"] = problems
    return web.json_response(body, status=status)


def ingest(database_url: str, event: EventIn, policy: Policy, source: str) -> IngestResult:
    """Ingest in one transaction; a concurrent twin with the same key yields the first result."""
    try:
        with session_scope(database_url) as session:
            return ingest_event(session, event, policy=policy, now=utc_now(), source=source)
    except IntegrityError:
        with session_scope(database_url) as session:
            duplicate = find_duplicate(session, event)
        if duplicate is None:
            raise
        return duplicate


def event_summary(database_url: str, event_id: int) -> dict[str, Any] | None:
    with session_scope(database_url) as session:
        event = session.get(BusinessEvent, event_id)
        if event is None:
            return None
        states = {
            state.value: int(count)
            for state, count in session.execute(
                select(Outreach.state, func.count())
                .where(Outreach.event_id == event_id)
                .group_by(Outreach.state)
            )
        }
        listed = session.scalars(
            select(Outreach)
            .where(Outreach.event_id == event_id)
            .order_by(Outreach.id)
            .limit(MAX_LISTED)
        ).all()
        return {
            "event_id": event.id,
            "kind": event.kind,
            "source": event.source,
            "occurred_at": event.occurred_at.isoformat(),
            "received_at": event.received_at.isoformat(),
            "outreach_queued": event.outreach_count,
            "outreach_states": states,
            "outreach": [
                {
                    "id": o.id,
                    "customer_id": o.customer_id,
                    "topic": o.topic,
                    "urgency": o.urgency.value,
                    "state": o.state.value,
                    "channel": o.platform.value if o.platform else None,
                    "decisions": [
                        {
                            "at": d.at.isoformat(),
                            "kind": d.kind.value,
                            "reason": d.reason,
                            "detail": d.detail,
                            "until": d.until.isoformat() if d.until else None,
                        }
                        for d in o.decisions
                    ],
                }
                for o in listed
            ],
        }


class EventsApi:
    def __init__(self, settings: Settings) -> None:
        self.database_url = settings.database_url
        self.policy = load_policy(settings.proactive_policy_path)

    async def post_event(self, request: web.Request) -> web.Response:
        """Validate, then record the event and its outreach; 201 new, 200 a repeat."""
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return problem(400, "the body must be a JSON object")
        try:
            event = parse_event(body, idempotency_key=request.headers.get("Idempotency-Key"))
        except EventError as error:
            return problem(error.status, "invalid event", error.problems)
        try:
            result = await asyncio.to_thread(ingest, self.database_url, event, self.policy, "api")
        except IdempotencyConflict as error:
            return problem(409, str(error))
        except EventError as error:
            return problem(error.status, "the event does not match the shop's data", error.problems)
        return web.json_response(result.as_json(), status=200 if result.duplicate else 201)

    async def get_event(self, request: web.Request) -> web.Response:
        """An event and what became of its outreach, with every decision and reason."""
        try:
            event_id = int(request.match_info["event_id"])
        except ValueError:
            return problem(404, "no such event")
        summary = await asyncio.to_thread(event_summary, self.database_url, event_id)
        if summary is None:
            return problem(404, "no such event")
        return web.json_response(summary)


def register(app: web.Application, settings: Settings) -> None:
    api = EventsApi(settings)
    guard = require_scope(Scope.EVENTS, settings)
    app.router.add_post("/events", guard(api.post_event))
    app.router.add_get("/events/{event_id}", guard(api.get_event))

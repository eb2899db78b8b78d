"""Calls from our own connectors: a platform said a user can no longer be reached."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.api.auth import Scope, require_scope
from bot.api.events import problem
from bot.db import session_scope
from bot.db.models import ChannelIdentity, Platform
from bot.proactive.dispatcher import utc_now
from bot.proactive.outbox import dead_letter_identity
from bot.settings import Settings


def mark_identity_unreachable(
    database_url: str, platform: Platform, external_id: str
) -> dict[str, Any] | None:
    with session_scope(database_url) as session:
        identity = session.scalar(
            select(ChannelIdentity).where(
                ChannelIdentity.platform == platform, ChannelIdentity.external_id == external_id
            )
        )
        if identity is None:
            return None
        now = utc_now()
        first_report = identity.unreachable_at is None
        if first_report:
            identity.unreachable_at = now
        dead = dead_letter_identity(session, identity.sender_id, now)
        return {
            "platform": platform.value,
            "unreachable_since": (identity.unreachable_at or now).isoformat(),
            "already_known": not first_report,
            "dead_lettered": dead,
        }


class InternalApi:
    def __init__(self, settings: Settings) -> None:
        self.database_url = settings.database_url

    async def identity_unreachable(self, request: web.Request) -> web.Response:
        """{"platform": "telegram"|"slack"|"web", "external_id": "..."}: stop sending there."""
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return problem(400, "the body must be a JSON object")
        if not isinstance(body, dict):
            return problem(400, "the body must be a JSON object")
        problems = []
        try:
            platform = Platform(str(body.get("platform")))
        except ValueError:
            problems.append({"field": "platform", "error": "expected telegram, slack or web"})
        external_id = body.get("external_id")
        if not isinstance(external_id, str | int) or isinstance(external_id, bool):
            problems.append({"field": "external_id", "error": "expected the platform's user id"})
        elif not str(external_id).strip() or len(str(external_id)) > 128:
            problems.append({"field": "external_id", "error": "expected 1 to 128 characters"})
        if problems:
            return problem(422, "invalid report", problems)
        result = await asyncio.to_thread(
            mark_identity_unreachable, self.database_url, platform, str(external_id).strip()
        )
        if result is None:
            return problem(404, "no such identity")
        return web.json_response(result)


def register(app: web.Application, settings: Settings) -> None:
    api = InternalApi(settings)
    app.router.add_post(
        "/internal/identities/unreachable",
        require_scope(Scope.INTERNAL, settings)(api.identity_unreachable),
    )

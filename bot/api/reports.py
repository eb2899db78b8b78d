"""Outreach reports for admins: GET /reports/outreach, the numbers `herald report` prints."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from aiohttp import web

from bot.api.auth import Scope, require_scope
from bot.api.events import problem
from bot.db import session_scope
from bot.proactive.dispatcher import utc_now
from bot.proactive.policy import PolicyError, load_policy, parse_duration
from bot.proactive.reports import build_report
from bot.settings import Settings

DEFAULT_PERIOD = timedelta(days=30)


class ReportsApi:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.replied_within = load_policy(settings.proactive_policy_path).replied_within

    def _report(self, since: datetime, until: datetime) -> dict[str, object]:
        with session_scope(self.settings.database_url) as session:
            report = build_report(
                session,
                since=since,
                until=until,
                replied_within=self.replied_within,
                tracker_url=self.settings.tracker_database_url or self.settings.database_url,
            )
        return report.as_json()

    async def outreach(self, request: web.Request) -> web.Response:
        """?since=7d (a duration back from now; default 30d)."""
        try:
            period = parse_duration(request.query.get("since", "30d"), "since")
        except PolicyError:
            return problem(400, "since: expected a duration like 24h or 7d")
        until = utc_now()
        body = await asyncio.to_thread(self._report, until - period, until)
        return web.json_response(body)


def register(app: web.Application, settings: Settings) -> None:
    api = ReportsApi(settings)
    app.router.add_get("/reports/outreach", require_scope(Scope.ADMIN, settings)(api.outreach))

"""Fakes for the connector tests: the platforms' APIs, and an inbox for unreachable reports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from connectors.unreachable import UnreachableReporter
from tests.fakes.server import FakeServer
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram

INTERNAL_KEY = "internal-key-for-connector-tests"


class ReportInbox(FakeServer):
    """Stands in for the app's /internal/identities/unreachable endpoint."""

    def __init__(self, status: int = 204) -> None:
        super().__init__()
        self.status = status

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/internal/identities/unreachable", self._report)
        return app

    async def _report(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        self.record("report", {**body, "authorization": request.headers.get("Authorization")})
        return web.Response(status=self.status)

    def reports(self) -> list[dict[str, Any]]:
        return [c.params for c in self.calls("report")]


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def inbox() -> AsyncIterator[ReportInbox]:
    async with ReportInbox() as server:
        yield server


@pytest.fixture
async def reporter(inbox: ReportInbox) -> AsyncIterator[UnreachableReporter]:
    reporter = UnreachableReporter(inbox.url, INTERNAL_KEY)
    yield reporter
    await reporter.close()

"""The app API's event, report and internal endpoints refuse calls without the right key."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.api.app import create_app
from bot.api.auth import Scope, require_scope
from bot.settings import Settings, get_settings

KEYS = {
    "api_events_key": "events-key-for-tests-0123456789abcdef",
    "api_admin_key": "admin-key-for-tests-0123456789abcdef",
    "internal_api_key": "internal-key-for-tests-0123456789abcd",
}


def settings_with_keys() -> Settings:
    return replace(get_settings(), **KEYS)


@pytest.fixture
async def guarded() -> AsyncIterator[TestClient]:
    """A tiny app with one handler per scope, to pin down require_scope itself."""
    settings = settings_with_keys()

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    for scope in Scope:
        app.router.add_get(f"/{scope.value}", require_scope(scope, settings)(ok))
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.mark.parametrize(
    "key, allowed",
    [
        (KEYS["api_events_key"], {"events"}),
        (KEYS["api_admin_key"], {"admin", "events"}),
        (KEYS["internal_api_key"], {"internal"}),
    ],
)
async def test_each_key_opens_only_its_scopes(
    guarded: TestClient, key: str, allowed: set[str]
) -> None:
    for scope in Scope:
        for headers in ({"Authorization": f"Bearer {key}"}, {"X-Api-Key": key}):
            reply = await guarded.get(f"/{scope.value}", headers=headers)
            assert reply.status == (200 if scope.value in allowed else 403), (scope, headers)


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, 401),
        ({"Authorization": f"Bearer {KEYS['api_admin_key']}x"}, 403),
        ({"Authorization": f"Bearer {KEYS['api_admin_key'][:-1]}"}, 403),
        ({"X-Api-Key": "guess"}, 403),
    ],
)
async def test_missing_or_wrong_keys_are_refused(
    guarded: TestClient, headers: dict[str, str], status: int
) -> None:
    for scope in Scope:
        reply = await guarded.get(f"/{scope.value}", headers=headers)
        assert reply.status == status
        assert "ok" not in await reply.json()


async def test_no_configured_key_means_nobody_gets_in() -> None:
    settings = replace(get_settings(), api_events_key="", api_admin_key="", internal_api_key="")

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/admin", require_scope(Scope.ADMIN, settings)(ok))
    async with TestClient(TestServer(app)) as client:
        for presented in ("", "anything"):
            reply = await client.get("/admin", headers={"X-Api-Key": presented})
            assert reply.status in (401, 403)


@pytest.fixture
async def herald_api(
    demo_settings: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[TestClient]:
    """The real app on a private copy of the demo shop (an accepted event is written)."""
    copy = tmp_path / "herald.db"
    with sqlite3.connect(demo_settings.split("///", 1)[1]) as source, sqlite3.connect(copy) as dest:
        source.backup(dest)
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{copy}")
    get_settings.cache_clear()
    async with TestClient(TestServer(create_app(settings_with_keys()))) as client:
        yield client
    get_settings.cache_clear()


# Herald's own endpoints, as registered by create_app, with the scope each needs.
ENDPOINTS = [
    ("POST", "/events", "events"),
    ("GET", "/events/1", "events"),
    ("GET", "/reports/outreach", "admin"),
    ("POST", "/internal/identities/unreachable", "internal"),
]


@pytest.mark.parametrize("method, path, scope", ENDPOINTS)
async def test_herald_endpoints_need_a_key_with_their_scope(
    herald_api: TestClient, method: str, path: str, scope: str
) -> None:
    body = {"kind": "order.paid", "data": {"order_number": 10001}}
    unauthenticated = await herald_api.request(method, path, json=body)
    assert unauthenticated.status == 401

    for key_name, key in KEYS.items():
        scopes = {
            "api_events_key": {"events"},
            "api_admin_key": {"admin", "events"},
            "internal_api_key": {"internal"},
        }[key_name]
        reply = await herald_api.request(
            method, path, json=body, headers={"Authorization": f"Bearer {key}"}
        )
        if scope in scopes:
            assert reply.status not in (401, 403), (path, key_name)
        else:
            assert reply.status == 403, (path, key_name)

"""API keys with scopes for the app's HTTP API: events in, admin and reports out."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from enum import StrEnum

from aiohttp import web

from bot.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Scope(StrEnum):
    EVENTS = "events"  # post business events
    ADMIN = "admin"  # read reports, outbox, customers
    INTERNAL = "internal"  # connectors reporting back (e.g. a user blocked the bot)


def keys_with_scopes(settings: Settings) -> list[tuple[str, frozenset[Scope]]]:
    keys = [
        (settings.api_events_key, frozenset({Scope.EVENTS})),
        (settings.api_admin_key, frozenset({Scope.ADMIN, Scope.EVENTS})),
        (settings.internal_api_key, frozenset({Scope.INTERNAL})),
    ]
    return [(key, scopes) for key, scopes in keys if key]


def presented_key(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return request.headers.get("X-Api-Key")


def scopes_of(request: web.Request, settings: Settings) -> frozenset[Scope]:
    key = presented_key(request)
    if not key:
        return frozenset()
    for candidate, scopes in keys_with_scopes(settings):
        # Constant-time comparison against every key, so timing reveals nothing.
        if hmac.compare_digest(key.encode(), candidate.encode()):
            return scopes
    return frozenset()


def require_scope(scope: Scope, settings: Settings) -> Callable[[Handler], Handler]:
    """Wrap a handler so it answers 401 without a key and 403 with a key lacking `scope`."""

    def decorate(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not presented_key(request):
                return web.json_response({"error": "API key required"}, status=401)
            if scope not in scopes_of(request, settings):
                return web.json_response({"error": f"this key lacks the {scope} scope"}, status=403)
            return await handler(request)

        return guarded

    return decorate

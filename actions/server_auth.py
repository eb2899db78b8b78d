"""Close the action server: a shared secret header, and errors that never echo the tracker."""

from __future__ import annotations

import hmac
import logging
import warnings
from http import HTTPStatus
from typing import Any

import pluggy
from sanic import Sanic, response
from sanic.exceptions import SanicException
from sanic.request import Request

from bot.logging import install as install_logging
from bot.logging import set_conversation
from bot.settings import get_settings

hookimpl = pluggy.HookimplMarker("rasa_sdk")
logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Herald-Action-Token"  # noqa: S105 (a header name, not a secret)
# Only the liveness probe stays open.
OPEN_PATHS = frozenset({"/health"})


def _sender_id(request: Request) -> str | None:
    try:
        body = request.json
    except Exception:  # sanic's own error type for a malformed body; the handler answers it
        return None
    sender_id = body.get("sender_id") if isinstance(body, dict) else None
    return sender_id if isinstance(sender_id, str) else None


def is_authorised(presented: str | None, expected: str) -> bool:
    return (
        bool(expected)
        and presented is not None
        and hmac.compare_digest(presented.encode(), expected.encode())
    )


@hookimpl  # type: ignore[misc]
def attach_sanic_app_extensions(app: Sanic[Any, Any]) -> None:
    # Our format (with the conversation's correlation id) and redaction on rasa-sdk's handlers.
    install_logging()
    expected = get_settings().action_server_token
    if not expected:
        logger.error("HERALD_ACTION_SERVER_TOKEN is not set: the action server refuses every call")
    # Rasa 3.6 and rasa-sdk 3.x speak the same protocol; the README explains the version gap.
    warnings.filterwarnings("ignore", message=".*compatible with this version of rasa_sdk.*")
    warnings.filterwarnings("ignore", message=".*might not be compatible.*")

    @app.on_request
    async def require_token(request: Request) -> Any:
        if request.path in OPEN_PATHS:
            return None
        if not is_authorised(request.headers.get(TOKEN_HEADER), expected):
            return response.json({"error": "unauthorised"}, status=401)
        set_conversation(_sender_id(request))
        return None

    async def opaque_error(request: Request, exception: Exception) -> Any:
        if isinstance(exception, SanicException):
            # Not found, bad JSON and the like: say which, never what was sent.
            status = exception.status_code
            return response.json({"error": HTTPStatus(status).phrase.lower()}, status=status)
        logger.error("action server error on %s", request.path, exc_info=exception)
        return response.json({"error": "internal error"}, status=500)

    # rasa-sdk registers a catch-all handler that answers with the request body (the whole
    # tracker); ours replaces it. Sanic refuses a second handler for the same exception
    # through add(), so the entry is overwritten in place.
    app.error_handler.cached_handlers[(Exception, None)] = opaque_error

"""REST web chat: like Rasa's `rest` channel, but the conversation comes from the customer token."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.identity import customer_token_secret, web_sender_id
from connectors.limits import MAX_MESSAGE_CHARS, TOO_LONG_REPLY, clean_text

logger = logging.getLogger(__name__)


class CustomerRestInput(InputChannel):
    """POST /webhooks/rest/webhook with {"message": ...} and `Authorization: Bearer <token>`.

    Without a valid token the caller is an anonymous visitor whose conversation id is
    `web:anon-<sender>`; a `sender` field can never name a customer's conversation.
    """

    @classmethod
    def name(cls) -> Text:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = Blueprint("customer_rest", __name__)
        secret = customer_token_secret()

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @blueprint.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = request.json
            except Exception:  # sanic raises its own error type for bad JSON
                body = None
            if not isinstance(body, dict):
                return response.json({"error": "expected a JSON object"}, status=400)
            raw = body.get("message")
            if not isinstance(raw, str):
                return response.json({"error": "'message' must be a string"}, status=400)
            token = _bearer_token(request) or body.get("token")
            sender_id = web_sender_id(token, body.get("sender"), secret)
            text = clean_text(raw)
            if len(text) > MAX_MESSAGE_CHARS:
                return response.json([{"recipient_id": sender_id, "text": TOO_LONG_REPLY}])
            if not text:
                return response.json({"error": "'message' is empty"}, status=400)
            collector = CollectingOutputChannel()
            await on_new_message(
                UserMessage(
                    text,
                    collector,
                    sender_id,
                    input_channel=self.name(),
                    metadata={"channel": "rest"},
                )
            )
            return response.json(collector.messages)

        return blueprint


def _bearer_token(request: Request) -> Optional[str]:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token else None

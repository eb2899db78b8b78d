"""Slack as a Rasa channel: a slack-bolt app mounted in Rasa's server, Block Kit out.

Rasa's bundled Slack channel uses slack_sdk directly; this one uses slack-bolt, with our
own checks in front of it. Configuration comes from the environment:

- HERALD_SLACK_BOT_TOKEN (xoxb-...) and HERALD_SLACK_SIGNING_SECRET: without both the
  channel is off.
- HERALD_SLACK_API_URL: the Web API's base URL (tests point it at a local fake).

Slack app settings: Event Subscriptions URL `<rasa>/webhooks/slack/events` (bot events
`message.im` and `app_mention`), Interactivity URL `<rasa>/webhooks/slack/interactions`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from slack_bolt.adapter.sanic import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp

from connectors.dedup import SeenDeliveries
from connectors.limits import MAX_MESSAGE_CHARS, TOO_LONG_REPLY, clean_text
from connectors.messages import SLACK_BUTTON_ACTION_PREFIX, OutgoingMessage
from connectors.pacing import slack_pacer
from connectors.slack_api import (
    PLATFORM,
    SlackDelivery,
    SlackInbound,
    build_client,
    parse_block_action,
    parse_event,
    signature_is_valid,
)
from connectors.unreachable import UnreachableReporter

logger = logging.getLogger(__name__)


def user_id_of(recipient_id: Text) -> Optional[Text]:
    platform, _, external_id = recipient_id.partition(":")
    return external_id if platform == PLATFORM and external_id else None


class SlackOutput(OutputChannel):
    """Renders the bot's messages as Block Kit, in the thread or DM the customer used."""

    @classmethod
    def name(cls) -> Text:
        return PLATFORM

    def __init__(
        self,
        delivery: SlackDelivery,
        channel: Optional[Text] = None,
        thread_ts: Optional[Text] = None,
    ) -> None:
        self.delivery = delivery
        self.channel = channel
        self.thread_ts = thread_ts

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        user_id = user_id_of(recipient_id)
        if user_id is None:
            logger.warning("not a Slack conversation; message dropped")
            return
        outgoing = OutgoingMessage.from_rasa(message)
        if not outgoing.is_empty:
            # Without a channel (a proactive message) the delivery opens a DM first.
            await self.delivery.send(user_id, outgoing, self.channel, self.thread_ts)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})


class SlackInput(InputChannel):
    """POST /webhooks/slack/events and /webhooks/slack/interactions."""

    @classmethod
    def name(cls) -> Text:
        return PLATFORM

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls(
            token=os.environ.get("HERALD_SLACK_BOT_TOKEN", ""),
            signing_secret=os.environ.get("HERALD_SLACK_SIGNING_SECRET", ""),
            api_url=os.environ.get("HERALD_SLACK_API_URL") or None,
        )

    def __init__(self, token: Text, signing_secret: Text, api_url: Optional[Text] = None) -> None:
        self.signing_secret = signing_secret
        self.delivery: Optional[SlackDelivery] = None
        self.app: Optional[AsyncApp] = None
        missing = [
            name
            for name, value in (
                ("HERALD_SLACK_BOT_TOKEN", token),
                ("HERALD_SLACK_SIGNING_SECRET", signing_secret),
            )
            if not value
        ]
        if missing:
            logger.info("Slack channel is off: %s not set", " and ".join(missing))
            return
        self.delivery = SlackDelivery(
            build_client(token, api_url), slack_pacer(), UnreachableReporter.from_env()
        )
        self.app = AsyncApp(
            client=build_client(token, api_url),
            signing_secret=signing_secret,
            # Acknowledge Slack at once (it wants an answer within 3 s), then let Rasa work.
            process_before_response=False,
            logger=logging.getLogger("connectors.slack.bolt"),
        )
        logger.info("Slack channel is on")

    def get_output_channel(self) -> Optional[OutputChannel]:
        return SlackOutput(self.delivery) if self.delivery is not None else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = Blueprint("herald_slack", __name__)
        delivery, app = self.delivery, self.app

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok" if delivery else "off"})

        if delivery is None or app is None:
            return blueprint

        async def to_rasa(inbound: SlackInbound) -> None:
            text = clean_text(inbound.text)
            reply_to = SlackOutput(delivery, inbound.channel, inbound.thread_ts)
            if len(text) > MAX_MESSAGE_CHARS:
                await reply_to.send_text_message(inbound.sender_id, TOO_LONG_REPLY)
                return
            if not text:
                return
            await on_new_message(
                UserMessage(
                    text,
                    reply_to,
                    inbound.sender_id,
                    input_channel=PLATFORM,
                    metadata={"channel": PLATFORM},
                )
            )

        _register_listeners(app, delivery, to_rasa)
        bolt = AsyncSlackRequestHandler(app)
        seen = SeenDeliveries.from_env(PLATFORM)

        async def receive(request: Request) -> HTTPResponse:
            body = request.body or b""
            # Signature first: nothing of an unsigned, stale or forged request is looked at.
            if not signature_is_valid(
                self.signing_secret,
                body,
                request.headers.get("X-Slack-Request-Timestamp"),
                request.headers.get("X-Slack-Signature"),
            ):
                return response.json({"error": "invalid signature"}, status=401)
            try:
                event_id = _event_id(request)
            except ValueError:
                return response.json({"error": "malformed body"}, status=400)
            if event_id is not None and not await seen.first_time(event_id):
                # Slack retries an event it thinks we missed (X-Slack-Retry-Num); once is enough.
                logger.info("ignored a repeated Slack event")
                return response.empty(status=200)
            try:
                return await bolt.handle(request)
            except ValueError:  # bolt parses the (signed) body and found it is not Slack's
                return response.json({"error": "malformed body"}, status=400)

        blueprint.add_route(receive, "/events", methods=["POST"], name="events")
        blueprint.add_route(receive, "/interactions", methods=["POST"], name="interactions")
        return blueprint


def _event_id(request: Request) -> Optional[Text]:
    if "json" not in (request.headers.get("Content-Type") or ""):
        return None
    data = json.loads(request.body)  # a ValueError here is a 400 for the caller
    event_id = data.get("event_id") if isinstance(data, dict) else None
    return event_id if isinstance(event_id, str) and event_id else None


def _register_listeners(
    app: AsyncApp, delivery: SlackDelivery, to_rasa: Callable[[SlackInbound], Awaitable[None]]
) -> None:
    """Messages (DMs), mentions in channels, and clicks on our buttons."""

    async def on_event(event: Dict[Text, Any], context: Dict[Text, Any]) -> None:
        inbound = parse_event(event, context.get("bot_user_id"))
        if inbound is not None:
            await to_rasa(inbound)

    async def on_click(ack: Any, body: Dict[Text, Any]) -> None:
        await ack()
        click = parse_block_action(body)
        if click is None:
            return
        await delivery.mark_chosen(click)
        await to_rasa(click.inbound)

    app.event("message")(on_event)
    app.event("app_mention")(on_event)
    app.action(re.compile(f"^{SLACK_BUTTON_ACTION_PREFIX}"))(on_click)

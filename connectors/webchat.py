"""Web chat over socket.io: each conversation is bound to the shop-signed customer token."""

from __future__ import annotations

import logging
import os
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncRedisManager, AsyncServer

from connectors.identity import customer_token_secret, web_sender_id
from connectors.limits import MAX_MESSAGE_CHARS, TOO_LONG_REPLY, clean_text
from connectors.messages import OutgoingMessage, webchat_payload

logger = logging.getLogger(__name__)

USER_EVENT = "user_uttered"
BOT_EVENT = "bot_uttered"


class WebChatOutput(OutputChannel):
    """Sends to every open tab of a conversation: the socket.io room named by its sender id."""

    @classmethod
    def name(cls) -> Text:
        return "webchat"

    def __init__(self, sio: AsyncServer) -> None:
        self.sio = sio

    async def _emit(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        await self.sio.emit(BOT_EVENT, message, room=recipient_id)

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        """One `bot_uttered` per bot message: text with its quick replies, image and links."""
        payload = webchat_payload(OutgoingMessage.from_rasa(message))
        if payload:
            await self._emit(recipient_id, payload)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})


def _shared_rooms() -> Optional[AsyncRedisManager]:
    """With several Rasa replicas, emits go through Redis to every replica's open sockets.

    A proactive message (trigger_intent) may be produced by a replica other than the one
    holding the customer's socket; without this it would be emitted to nobody.
    """
    url = os.environ.get("HERALD_SOCKETIO_REDIS_URL")
    if not url:
        return None
    return AsyncRedisManager(url, channel=os.environ.get("HERALD_SOCKETIO_CHANNEL", "socketio"))


class _SocketBlueprint(Blueprint):
    """A blueprint that also attaches the socket.io server to Rasa's Sanic app."""

    def __init__(self, sio: AsyncServer, path: Text, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ctx.sio = sio
        self.ctx.socketio_path = path

    def register(self, app: Sanic, options: Dict[Text, Any]) -> None:
        self.ctx.sio.attach(app, self.ctx.socketio_path)
        super().register(app, options)


class WebChatInput(InputChannel):
    """Socket.io input: the token in the connect handshake decides whose conversation it is."""

    @classmethod
    def name(cls) -> Text:
        return "webchat"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = credentials or {}
        return cls(
            socketio_path=credentials.get("socketio_path", "/socket.io"),
            allowed_origins=os.environ.get("HERALD_WEBCHAT_ORIGINS", "*"),
        )

    def __init__(self, socketio_path: Text = "/socket.io", allowed_origins: Text = "*") -> None:
        self.socketio_path = socketio_path
        origins = [o.strip() for o in allowed_origins.split(",") if o.strip()]
        self.allowed_origins: Any = "*" if origins == ["*"] else origins
        self.sio: Optional[AsyncServer] = None

    def get_output_channel(self) -> Optional[OutputChannel]:
        return WebChatOutput(self.sio) if self.sio is not None else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        sio = AsyncServer(
            async_mode="sanic",
            cors_allowed_origins=self.allowed_origins,
            client_manager=_shared_rooms(),
        )
        self.sio = sio
        blueprint = _SocketBlueprint(sio, self.socketio_path, "webchat_socketio", __name__)
        secret = customer_token_secret()
        if not secret:
            logger.warning(
                "HERALD_CUSTOMER_TOKEN_SECRET is not set: every web visitor is anonymous"
            )

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect")
        async def connect(sid: Text, environ: Dict, auth: Optional[Dict] = None) -> bool:
            auth = auth if isinstance(auth, dict) else {}
            sender_id = web_sender_id(auth.get("token"), auth.get("anonymous_id"), secret)
            await sio.save_session(sid, {"sender_id": sender_id})
            await sio.enter_room(sid, sender_id)
            await sio.emit(
                "session_confirm",
                {"sender_id": sender_id, "verified": not sender_id.startswith("web:anon-")},
                room=sid,
            )
            return True

        @sio.on(USER_EVENT)
        async def handle_message(sid: Text, data: Any) -> None:
            session = await sio.get_session(sid)
            sender_id = session.get("sender_id")
            if not sender_id:
                return
            output = WebChatOutput(sio)
            text = clean_text(data.get("message") if isinstance(data, dict) else None)
            if not text:
                return
            if len(text) > MAX_MESSAGE_CHARS:
                await output.send_text_message(sender_id, TOO_LONG_REPLY)
                return
            await on_new_message(
                UserMessage(
                    text,
                    output,
                    sender_id,
                    input_channel=self.name(),
                    metadata={"channel": "webchat"},
                )
            )

        return blueprint

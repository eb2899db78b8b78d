"""Web chat history: only the token holder's own conversation, shown as the customer saw it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.api import webchat
from bot.identity.tokens import sign_customer_token
from bot.settings import Settings

SECRET = "webchat-history-secret-0123456789abcdef"
TRACK = '/track_order{"order_number":"10042"}'


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    # Rasa is never reached by these requests: each is refused before it would be asked.
    settings = replace(Settings(), customer_token_secret=SECRET, rasa_url="http://127.0.0.1:9")
    app = web.Application()
    webchat.register(app, settings)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {
            "Authorization": "Bearer "
            + sign_customer_token(7, "another-secret-0123456789abcdef-0123")
        },
        {"X-Herald-Anonymous-Id": "short"},
        {"X-Herald-Anonymous-Id": "../../conversations/web:7"},
        # A bad token is refused, never downgraded to the anonymous conversation.
        {"Authorization": "Bearer forged", "X-Herald-Anonymous-Id": "abcdef0123456789"},
    ],
)
async def test_history_needs_a_valid_token_or_anonymous_id(
    client: TestClient, headers: dict[str, str]
) -> None:
    reply = await client.get("/webchat/history", headers=headers)
    assert reply.status == 401


async def test_rasa_unreachable_is_a_503_not_an_error_page(client: TestClient) -> None:
    token = sign_customer_token(7, SECRET)
    reply = await client.get("/webchat/history", headers={"Authorization": f"Bearer {token}"})
    assert reply.status == 503


def test_transcript_shows_button_titles_and_hides_proactive_triggers() -> None:
    events = [
        {"event": "action", "name": "action_session_start"},
        {"event": "user", "text": "where is my order?", "timestamp": 1.0},
        {
            "event": "bot",
            "text": "Which one?",
            "timestamp": 2.0,
            "data": {
                "buttons": [
                    {"title": "Order 10042", "payload": TRACK},
                    {"title": "Guide", "url": "https://lumen.example/g"},
                ]
            },
        },
        {"event": "user", "text": TRACK, "timestamp": 3.0},
        {"event": "bot", "text": "Order 10042 is delivered.", "timestamp": 4.0, "data": {}},
        {"event": "user", "text": "EXTERNAL: EXTERNAL_outage", "timestamp": 5.0},
        {"event": "bot", "text": "An outage is affecting Lumen Cloud.", "timestamp": 6.0},
        {"event": "bot", "text": "", "data": {}},
    ]

    assert webchat.transcript(events) == [
        {"from": "user", "text": "where is my order?", "at": 1.0},
        {
            "from": "bot",
            "text": "Which one?",
            "quick_replies": [{"title": "Order 10042", "payload": TRACK}],
            "links": [{"title": "Guide", "url": "https://lumen.example/g"}],
            "at": 2.0,
        },
        {"from": "user", "text": "Order 10042", "at": 3.0},
        {"from": "bot", "text": "Order 10042 is delivered.", "at": 4.0},
        {"from": "bot", "text": "An outage is affecting Lumen Cloud.", "at": 6.0},
    ]

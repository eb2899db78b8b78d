"""The app's HTTP server: health, the demo customer picker and the tokens it signs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.api.app import create_app
from bot.settings import get_settings
from connectors.identity import verified_customer_id

SECRET = "demo-secret-for-tests-0123456789abcdef"


@pytest.fixture
async def client(demo_settings: str) -> AsyncIterator[TestClient]:
    settings = replace(get_settings(), customer_token_secret=SECRET, demo_mode=True)
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


async def test_health_reports_the_database(client: TestClient) -> None:
    reply = await client.get("/health")
    assert reply.status == 200
    assert await reply.json() == {"status": "ok"}


async def test_page_carries_the_rasa_url_and_local_assets_only(client: TestClient) -> None:
    page = await (await client.get("/")).text()
    assert '"rasaUrl"' in page
    assert "/static/vendor/socket.io-4.8.1.min.js" in page
    assert "https://" not in page  # no CDN

    script = await client.get("/static/vendor/socket.io-4.8.1.min.js")
    assert script.status == 200


async def test_demo_customers_list_their_channels_and_latest_order(client: TestClient) -> None:
    customers = await (await client.get("/demo/customers")).json()
    assert len(customers) > 10
    assert {"web", "telegram", "slack"} <= {ch for c in customers for ch in c["channels"]}
    assert all(c["latest_order"] for c in customers)


async def test_demo_token_is_signed_for_that_customer(client: TestClient) -> None:
    reply = await client.post("/demo/token", json={"customer_id": 3})
    assert reply.status == 200
    token = (await reply.json())["token"]
    assert verified_customer_id(token, SECRET) == 3


@pytest.mark.parametrize("body", [{}, {"customer_id": "x"}, [], "nonsense"])
async def test_demo_token_rejects_bad_requests(client: TestClient, body: object) -> None:
    reply = await client.post("/demo/token", json=body)
    assert reply.status == 400


async def test_demo_token_for_unknown_customer_is_404(client: TestClient) -> None:
    reply = await client.post("/demo/token", json={"customer_id": 10**6})
    assert reply.status == 404


async def test_without_demo_mode_no_tokens_are_signed(demo_settings: str) -> None:
    settings = replace(get_settings(), customer_token_secret=SECRET, demo_mode=False)
    async with TestClient(TestServer(create_app(settings))) as client:
        assert (await client.post("/demo/token", json={"customer_id": 3})).status == 404

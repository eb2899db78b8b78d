"""The app's HTTP server (aiohttp): web chat page, demo customer picker, health."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import web
from sqlalchemy import select, text

from bot.api import events, internal, reports, webchat
from bot.db import session_scope
from bot.db.models import ChannelIdentity, Customer, Order, Platform
from bot.identity.tokens import sign_customer_token
from bot.settings import Settings, get_settings

STATIC_DIR = Path(__file__).parent / "static"
SETTINGS_KEY = web.AppKey("settings", Settings)


def _database_answers() -> None:
    with session_scope() as session:
        session.execute(text("SELECT 1"))


async def health(request: web.Request) -> web.Response:
    try:
        await asyncio.to_thread(_database_answers)
    except Exception:  # any database failure means "not healthy", whatever its type
        return web.json_response({"status": "degraded", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok"})


async def index(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    page = (STATIC_DIR / "index.html").read_text()
    config = {"rasaUrl": settings.rasa_public_url}
    page = page.replace("/*HERALD_CONFIG*/{}", json.dumps(config))
    return web.Response(text=page, content_type="text/html")


async def demo_customers(request: web.Request) -> web.Response:
    """Demo customers to pick from, with their latest order, so a person can try every flow."""
    return web.json_response(await asyncio.to_thread(_demo_customer_rows))


def _demo_customer_rows() -> list[dict[str, object]]:
    with session_scope() as session:
        customers = session.scalars(
            select(Customer).where(Customer.forgotten_at.is_(None)).order_by(Customer.id).limit(60)
        ).all()
        rows = []
        for customer in customers:
            latest = session.scalar(
                select(Order)
                .where(Order.customer_id == customer.id)
                .order_by(Order.placed_at.desc())
                .limit(1)
            )
            channels = sorted(
                i.platform.value
                for i in session.scalars(
                    select(ChannelIdentity).where(ChannelIdentity.customer_id == customer.id)
                )
            )
            rows.append(
                {
                    "id": customer.id,
                    "name": customer.name,
                    "timezone": customer.timezone,
                    "channels": channels or [Platform.WEB.value],
                    "latest_order": latest.number if latest else None,
                    "latest_order_status": latest.status.value if latest else None,
                }
            )
    return rows


async def demo_token(request: web.Request) -> web.Response:
    """Sign a customer token the way the shop's website would, for the demo page only."""
    settings = request.app[SETTINGS_KEY]
    try:
        body = await request.json()
        customer_id = int(body["customer_id"])
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": 'expected {"customer_id": <int>}'}, status=400)
    name = await asyncio.to_thread(_demo_customer_name, customer_id)
    if name is None:
        return web.json_response({"error": "no such demo customer"}, status=404)
    token = sign_customer_token(
        customer_id, settings.customer_token_secret, ttl_seconds=settings.demo_token_ttl_seconds
    )
    return web.json_response({"token": token, "name": name})


def _demo_customer_name(customer_id: int) -> str | None:
    with session_scope() as session:
        customer = session.get(Customer, customer_id)
        if customer is None or customer.forgotten_at is not None:
            return None
        return customer.name


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or get_settings()
    app = web.Application(client_max_size=256 * 1024)
    app[SETTINGS_KEY] = settings
    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    if settings.demo_mode:
        app.router.add_get("/demo/customers", demo_customers)
        app.router.add_post("/demo/token", demo_token)
    app.router.add_static("/static", STATIC_DIR)
    # proactive: event intake, outreach reports, connectors' call-backs.
    events.register(app, settings)
    reports.register(app, settings)
    internal.register(app, settings)
    webchat.register(app, settings)  # channels: history so a reload keeps the chat
    return app


def serve(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    web.run_app(
        create_app(settings),
        host=settings.app_host,
        port=settings.app_port,
        print=None,
        access_log=None,
    )

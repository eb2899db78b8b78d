"""The web chat page in headless Chromium, as a demo customer would use it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from bot.db import session_scope
from bot.db.models import Order, OrderStatus
from bot.settings import PROJECT_ROOT
from tests.e2e.conftest import Herald
from tests.fakes.channels import trigger_intent

pytestmark = pytest.mark.e2e

# Debian's Chromium; a browser is never downloaded (scripts/test.sh installs this one).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
OPEN = {
    OrderStatus.PAID,
    OrderStatus.PACKED,
    OrderStatus.SHIPPED,
    OrderStatus.OUT_FOR_DELIVERY,
    OrderStatus.DELAYED,
}
# What Herald says about the state of Lumen Cloud: an outage, maintenance, or all clear.
NOTICE = re.compile(r"outage|maintenance|running normally", re.IGNORECASE)
# How long Rasa and the actions may take to answer on a busy CI machine.
REPLY_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def customer_without_open_orders(herald: Herald) -> int:
    """A demo customer (from the page's picker) whose orders all arrived: "which order?" buttons."""
    with session_scope(herald.database_url) as session:
        orders = session.scalars(select(Order).order_by(Order.customer_id, Order.number)).all()
        by_customer: dict[int, list[Order]] = {}
        for order in orders:
            by_customer.setdefault(order.customer_id, []).append(order)
        for customer_id, owned in sorted(by_customer.items())[10:60]:
            if not {o.status for o in owned} & OPEN:
                return customer_id
    raise AssertionError("the demo shop has no customer without open orders")


def bot_messages(page: Page) -> str:
    return "\n".join(page.locator(".msg.bot .bubble").all_inner_texts())


def test_a_customer_chats_clicks_a_quick_reply_gets_a_live_notice_and_reloads(
    herald: Herald, page: Page
) -> None:
    customer_id = customer_without_open_orders(herald)
    page.goto(f"{herald.config.app_url}/")
    page.select_option("#customer", str(customer_id))
    expect(page.locator("#status")).to_have_text("Online", timeout=30_000)
    expect(page.locator("#identity")).to_have_text("signed in")

    page.fill("#input", "where is my order?")
    page.press("#input", "Enter")
    reply = page.locator(".quick-replies button", has_text=re.compile(r"Order \d{5}"))
    expect(reply.first).to_be_visible(timeout=REPLY_MS)
    number = re.search(r"\d{5}", reply.first.inner_text())
    assert number is not None
    reply.first.click()
    expect(page.locator(".msg.user .bubble").last).to_have_text(f"Order {number.group()}")
    answer = page.locator(".msg.bot .bubble", has_text=f"Order {number.group()} (")
    expect(answer.first).to_be_visible(timeout=REPLY_MS)

    # A notice pushed the way proactive delivery pushes one (Rasa's trigger_intent to the
    # webchat channel): the customer's service status, arriving without them asking.
    arrived_before = page.locator(".msg.bot.arrived").count()
    triggered = trigger_intent(
        herald.config.rasa_url,
        herald.config.secrets["HERALD_RASA_API_TOKEN"],
        f"web:{customer_id}",
        "outage_status",
        "webchat",
    )
    assert triggered.status_code == 200, triggered.text
    notice = page.locator(".msg.bot.arrived", has_text=NOTICE)
    expect(notice.first).to_be_visible(timeout=REPLY_MS)
    assert page.locator(".msg.bot.arrived").count() > arrived_before
    # Every message shows once, however the page (re)connected.
    texts = page.locator(".msg .bubble").all_inner_texts()
    assert all(a != b for a, b in zip(texts, texts[1:], strict=False)), texts
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "webchat-live.png"))
    live_text = bot_messages(page)

    page.reload()
    expect(page.locator("#customer")).to_have_value(str(customer_id))
    expect(page.locator(".msg.user .bubble", has_text="where is my order?").first).to_be_visible(
        timeout=30_000
    )
    expect(
        page.locator(".msg.user .bubble", has_text=f"Order {number.group()}").first
    ).to_be_visible()
    assert bot_messages(page) == live_text
    page.screenshot(path=str(ARTIFACTS / "webchat-after-reload.png"))


def test_messages_typed_offline_are_sent_on_reconnect(herald: Herald, page: Page) -> None:
    page.goto(f"{herald.config.app_url}/")
    page.select_option("#customer", "")  # an anonymous visitor has a conversation too
    expect(page.locator("#status")).to_have_text("Online", timeout=30_000)

    # The network goes away: reconnecting fails until it is back. Closing the transport is
    # what the browser does to an open WebSocket when the connection really drops.
    page.context.set_offline(True)
    page.evaluate("() => window.HeraldChat.socket.io.engine.close()")
    expect(page.locator("#status")).to_have_text(re.compile("Offline"), timeout=30_000)
    expect(page.locator("#offline")).to_be_visible()
    page.fill("#input", "hello")
    page.press("#input", "Enter")
    expect(page.locator(".msg.user.queued")).to_have_count(1)

    page.context.set_offline(False)
    expect(page.locator("#status")).to_have_text("Online", timeout=30_000)
    expect(page.locator(".msg.user.queued")).to_have_count(0)
    expect(page.locator(".msg.bot .bubble", has_text="Herald")).to_be_visible(timeout=REPLY_MS)


def test_history_is_the_token_holders_own_conversation_only(herald: Herald) -> None:
    first, second = 11, 12
    said = requests.post(
        herald.rest_url,
        json={"message": "hello there"},
        headers={"Authorization": f"Bearer {herald.token_for(first)}"},
        timeout=60,
    )
    assert said.status_code == 200

    def history(customer_id: int) -> dict[str, object]:
        reply = requests.get(
            f"{herald.config.app_url}/webchat/history",
            headers={"Authorization": f"Bearer {herald.token_for(customer_id)}"},
            timeout=30,
        )
        assert reply.status_code == 200
        return dict(reply.json())

    mine, theirs = history(first), history(second)
    assert mine["sender_id"] == f"web:{first}" and theirs["sender_id"] == f"web:{second}"
    said_by = [m for m in mine["messages"] if m["from"] == "user"]  # type: ignore[attr-defined]
    assert "hello there" in [m["text"] for m in said_by]
    assert all(m.get("text") != "hello there" for m in theirs["messages"])  # type: ignore[attr-defined]

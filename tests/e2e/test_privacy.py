"""Export, then forget, a customer who talked to Herald on web chat, Telegram and Slack.

Real conversations on all three channels (REST web chat with the shop token; Telegram
and Slack through their fake platforms, Slack linked in chat with the emailed code),
then `herald customer export` and `herald customer forget` as an operator runs them:
afterwards no table and no tracker event holds the customer's email, name, chat ids or
what they said, and nothing can reach them again. Last, the stack's own log files are
searched for every secret, the email, the code and the message text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from bot.db import session_scope
from bot.db.models import ChannelIdentity, Customer, Order, Platform
from bot.identity.customers import verified_customer
from bot.logging import correlation_id_for
from bot.proactive.routing import choose_routes
from tests.bot.privacy.traces import traces
from tests.e2e.conftest import Herald
from tests.e2e.test_security import telegram_says
from tests.e2e.test_track_order import say_rest, texts
from tests.fakes.channels import SLACK_SIGNING_SECRET
from tests.fakes.slack import dm_channel, dm_event, post_event

pytestmark = pytest.mark.e2e

# Something the customer says that exists nowhere else.
SAID = "my parrot Captain Biscuit unplugged the thermostat again"
SLACK_USER = "U0PRIVACY01"


def slack_says(herald: Herald, user: str, text: str) -> str:
    channel = dm_channel(user)
    before = len(herald.slack.posts(channel))
    reply = post_event(
        f"{herald.config.rasa_url}/webhooks/slack/events",
        SLACK_SIGNING_SECRET,
        dm_event(user, text),
    )
    assert reply.status_code == 200, reply.text
    herald.slack.wait_for(lambda: herald.slack.posts(channel)[before:], 60)
    count = 0
    while count != len(herald.slack.posts(channel)):
        count = len(herald.slack.posts(channel))
        time.sleep(0.5)
    return "\n".join(
        str(call.params.get("text", "")) + json.dumps(call.params.get("blocks", []))
        for call in herald.slack.posts(channel)[before:]
    )


@dataclass(frozen=True)
class Regular:
    customer_id: int
    name: str
    email: str
    telegram_user: int
    order_number: int


def regular_on_telegram(herald: Herald) -> Regular:
    """The demo customer with the newest linked Telegram account (no other test uses it)."""
    with session_scope(herald.database_url) as session:
        identity = session.scalars(
            select(ChannelIdentity)
            .where(ChannelIdentity.platform == Platform.TELEGRAM, ChannelIdentity.verified)
            .order_by(ChannelIdentity.id.desc())
        ).first()
        assert identity is not None and identity.customer_id is not None
        customer = session.get(Customer, identity.customer_id)
        assert customer is not None
        order = session.scalars(
            select(Order).where(Order.customer_id == customer.id).order_by(Order.number)
        ).first()
        assert order is not None
        return Regular(
            customer.id, customer.name, customer.email, int(identity.external_id), order.number
        )


def herald_cli(herald: Herald, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HERALD_DATABASE_URL": herald.database_url,
        "HERALD_VAR_DIR": str(herald.config.var_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_export_then_forget_a_customer_on_all_three_channels(
    herald: Herald, tmp_path: Path
) -> None:
    regular = regular_on_telegram(herald)
    web, telegram, slack = (
        f"web:{regular.customer_id}",
        f"telegram:{regular.telegram_user}",
        f"slack:{SLACK_USER}",
    )

    # Web chat, signed in through the shop.
    token = herald.token_for(regular.customer_id)
    assert f"Order {regular.order_number}" in texts(
        say_rest(herald, f"where is order {regular.order_number}?", token)
    )
    say_rest(herald, SAID, token)
    # Telegram, linked already.
    assert f"Order {regular.order_number}" in telegram_says(
        herald, regular.telegram_user, f"where is order {regular.order_number}?"
    )
    telegram_says(herald, regular.telegram_user, SAID)
    # Slack, linked right here with the emailed code.
    assert "email address" in slack_says(herald, SLACK_USER, "link my account")
    slack_says(herald, SLACK_USER, regular.email)
    assert "now linked" in slack_says(herald, SLACK_USER, herald.mailbox.latest_code(regular.email))
    assert f"Order {regular.order_number}" in slack_says(
        herald, SLACK_USER, f"where is order {regular.order_number}?"
    )
    slack_says(herald, SLACK_USER, SAID)

    # Export: everything, all three conversations included.
    out = tmp_path / "export.json"
    exported = herald_cli(herald, "customer", "export", str(regular.customer_id), "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    document = json.loads(out.read_text())
    assert document["customer"]["email"] == regular.email
    assert {web, telegram, slack} <= set(document["conversations"])
    for sender in (web, telegram, slack):
        said = [e["data"].get("text") for e in document["conversations"][sender] if e["data"]]
        assert SAID in said, sender
    identities = {
        (i["platform"], i["external_id"]) for i in document["records"]["channel_identities"]
    }
    assert ("slack", SLACK_USER) in identities
    assert any(o["number"] == regular.order_number for o in document["records"]["orders"])

    # Forget: no trace in any table, the tracker store included.
    needles = [
        regular.email,
        regular.name,
        SAID,
        web,
        telegram,
        slack,
        str(regular.telegram_user),
        SLACK_USER,
    ]
    assert traces(herald.database_url, needles)
    forgotten = herald_cli(herald, "customer", "forget", str(regular.customer_id), "--yes")
    assert forgotten.returncode == 0, forgotten.stderr
    assert traces(herald.database_url, needles) == []

    # And nothing reaches them again: no identity, no route, no data for their token.
    with session_scope(herald.database_url) as session:
        for sender in (web, telegram, slack):
            assert verified_customer(session, sender) is None
        routes = choose_routes(session, [regular.customer_id], tracker_url=herald.database_url)
        assert routes[regular.customer_id] is None
        assert (
            session.scalars(
                select(ChannelIdentity).where(ChannelIdentity.customer_id == regular.customer_id)
            ).all()
            == []
        )
    assert f"Order {regular.order_number} (" not in texts(
        say_rest(herald, f"where is order {regular.order_number}?", token)
    )
    api_token = herald.config.secrets["HERALD_RASA_API_TOKEN"]
    tracker = requests.get(
        f"{herald.config.rasa_url}/conversations/{telegram}/tracker",
        params={"token": api_token},
        timeout=30,
    ).json()
    assert SAID not in json.dumps(tracker)


def test_the_logs_of_a_whole_conversation_hold_no_secrets_or_personal_data(
    herald: Herald,
) -> None:
    """Drive a full linking conversation, then read every log file the stack wrote."""
    with session_scope(herald.database_url) as session:
        customer = session.scalars(
            select(Customer).where(Customer.forgotten_at.is_(None)).order_by(Customer.id.desc())
        ).all()[5]
        email, customer_id = customer.email, customer.id
    token = herald.token_for(customer_id)
    user = 810_000_099
    said = "please note my flat is above the bakery on Quay Street"

    say_rest(herald, f"hi, my email is {email}, {said}", token)
    say_rest(herald, "where is my order?", token)
    say_rest(herald, "where is order 10001?", token)  # someone else's: refused and logged
    telegram_says(herald, user, "link my account")
    telegram_says(herald, user, email)
    code = herald.mailbox.latest_code(email)
    assert "now linked" in telegram_says(herald, user, code)
    telegram_says(herald, user, said)
    time.sleep(1)  # let the processes flush their log buffers

    logs = {path.name: path.read_text(errors="replace") for path in herald_logs(herald)}
    assert logs, "the stack wrote no logs"
    everything = "\n".join(logs.values())
    secrets = [v for v in herald.config.secrets.values() if len(v) >= 16]
    secrets += [herald.telegram.token, herald.slack.token, SLACK_SIGNING_SECRET, token]
    for secret in secrets:
        assert secret not in everything, "a secret reached the logs"
    assert email not in everything
    assert code not in everything
    assert said not in everything and "Quay Street" not in everything
    # The action server tagged its lines for this conversation, and logged the refusal.
    actions_log = logs.get("actions.log", "")
    assert f"cid={correlation_id_for(f'web:{customer_id}')}" in actions_log
    refusals = [line for line in actions_log.splitlines() if "refused Order lookup" in line]
    assert any(f"cid={correlation_id_for(f'web:{customer_id}')}" in line for line in refusals)


def herald_logs(herald: Herald) -> list[Path]:
    log_dir = herald.config.log_dir or herald.config.var_dir / "logs"
    return sorted(log_dir.glob("*.log"))

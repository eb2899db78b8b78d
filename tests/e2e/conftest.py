"""The whole bot, for real: a trained model, Rasa, the action server and the app server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.db import migrate, session_scope
from bot.db.demo import load_demo_data
from bot.identity.tokens import sign_customer_token
from bot.stack import Stack, StackConfig, ensure_local_secrets, running_stack
from tests.fakes.channels import channel_env
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.mailbox import Mailbox, running_mailbox


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# proactive: the worker runs the production policy but for what a test cannot wait for.
PROACTIVE_ENV = {"HERALD_PROACTIVE_POLICY": str(Path(__file__).with_name("proactive_policy.yml"))}


@dataclass
class Herald:
    stack: Stack
    database_url: str
    # channels: the fake platforms the stack's Telegram and Slack channels talk to.
    telegram: FakeTelegram
    slack: FakeSlack
    # identity: the SMTP server link codes are sent through.
    mailbox: Mailbox

    @property
    def config(self) -> StackConfig:
        return self.stack.config

    def token_for(self, customer_id: int) -> str:
        return sign_customer_token(customer_id, self.config.secrets["HERALD_CUSTOMER_TOKEN_SECRET"])

    @property
    def rest_url(self) -> str:
        return f"{self.config.rasa_url}/webhooks/rest/webhook"


@pytest.fixture(scope="session")
def herald(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Herald]:
    var_dir = tmp_path_factory.mktemp("herald-var")
    database_url = f"sqlite:///{var_dir / 'herald.db'}"
    migrate(database_url)
    with session_scope(database_url) as session:
        load_demo_data(session)
    telegram, slack = FakeTelegram().start_in_thread(), FakeSlack().start_in_thread()
    try:
        with running_mailbox() as mailbox:
            smtp = {"HERALD_SMTP_HOST": mailbox.host, "HERALD_SMTP_PORT": str(mailbox.port)}
            config = StackConfig(
                database_url=database_url,
                var_dir=var_dir,
                secrets=ensure_local_secrets(var_dir),
                model=trained_model,
                rasa_port=free_port(),
                action_port=free_port(),
                app_port=free_port(),
                worker_port=free_port(),
                extra_env={**channel_env(telegram, slack), **smtp, **PROACTIVE_ENV},
            )
            with running_stack(config) as stack:
                yield Herald(stack, database_url, telegram, slack, mailbox)
    finally:
        telegram.stop()
        slack.stop()

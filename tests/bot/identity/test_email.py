"""Link codes go out by real SMTP; a dead mail server is logged without the address or code."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.identity.email import send_link_code
from bot.settings import Settings
from tests.mailbox import running_mailbox


def test_the_code_arrives_by_smtp() -> None:
    with running_mailbox() as mailbox:
        settings = replace(Settings(), smtp_host=mailbox.host, smtp_port=mailbox.port)
        send_link_code(settings, "maria@example.com", "482913", timedelta(minutes=10)).result(15)

        (message,) = mailbox.wait_for("maria@example.com")
    assert message["From"] == settings.smtp_from
    assert "482913" in message["Subject"]
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "    482913\r\n" in text
    assert "10 minutes" in text
    assert mailbox.latest_code("maria@example.com") == "482913"


def test_an_unreachable_mail_server_is_logged_without_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running_mailbox() as mailbox:
        port = mailbox.port
    settings = replace(Settings(), smtp_host="127.0.0.1", smtp_port=port)

    with caplog.at_level(logging.INFO):
        future = send_link_code(settings, "maria@example.com", "482913", timedelta(minutes=10))
        with pytest.raises(OSError):
            future.result(30)

    assert "could not send a link code email" in caplog.text
    assert "maria@example.com" not in caplog.text
    assert "482913" not in caplog.text

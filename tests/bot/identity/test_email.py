"""Link codes go out by real SMTP; a dead mail server is logged without the address or code."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.identity.email import send_link_code
from bot.logging import ConversationFilter, conversation
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


def test_the_sending_thread_logs_under_the_conversations_id() -> None:
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(getattr(record, "correlation_id", "none"))

    handler = Collect(logging.INFO)
    handler.addFilter(ConversationFilter())
    email_logger = logging.getLogger("bot.identity.email")
    email_logger.addHandler(handler)
    previous = email_logger.level
    email_logger.setLevel(logging.INFO)
    try:
        with running_mailbox() as mailbox, conversation("telegram:5550001") as cid:
            settings = replace(Settings(), smtp_host=mailbox.host, smtp_port=mailbox.port)
            send_link_code(settings, "ana@example.com", "111222", timedelta(minutes=10)).result(15)
    finally:
        email_logger.removeHandler(handler)
        email_logger.setLevel(previous)
    assert seen == [cid]

"""Log lines carry the conversation's correlation id and never an email, token or secret."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

import pytest

from bot.identity.tokens import sign_customer_token
from bot.logging import (
    ConversationFilter,
    RedactingFormatter,
    conversation,
    correlation_id_for,
    redact,
    set_conversation,
)


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ConversationFilter())
    handler.setFormatter(RedactingFormatter("%(levelname)s [cid=%(correlation_id)s] %(message)s"))
    logger = logging.getLogger("herald.test.logging")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_every_line_of_a_conversation_carries_its_id(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    with conversation("telegram:5550001") as cid:
        logger.info("looked up the order")
        logger.warning("refused Order lookup")
    logger.info("between conversations")

    lines = stream.getvalue().splitlines()
    assert cid == correlation_id_for("telegram:5550001") and len(cid) == 12
    assert lines[0].endswith(f"[cid={cid}] looked up the order")
    assert f"[cid={cid}]" in lines[1]
    assert "[cid=-]" in lines[2]
    assert "5550001" not in stream.getvalue()  # the id is a hash, not the user id


def test_conversations_running_at_once_keep_their_own_ids(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured

    async def handle(sender_id: str) -> None:
        set_conversation(sender_id)
        await asyncio.sleep(0.01)
        # Database work runs in a thread; the id goes with it.
        await asyncio.to_thread(logger.info, "answered %s", "x")

    async def both() -> None:
        await asyncio.gather(handle("slack:UAAAA"), handle("slack:UBBBB"))

    asyncio.run(both())
    ids = {line.split("[cid=")[1].split("]")[0] for line in stream.getvalue().splitlines()}
    assert ids == {correlation_id_for("slack:UAAAA"), correlation_id_for("slack:UBBBB")}


def test_secrets_and_personal_data_are_scrubbed_whoever_logs_them(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    token = sign_customer_token(42, "s3cret-for-tests-only-0123456789abcdef")
    logger.info("customer maria.lopez@example.com said hi")
    logger.info("GET /status?token=abcdef0123456789secret HTTP/1.1")
    logger.info("headers: {'X-Herald-Action-Token': 'abcdef0123456789secret'}")
    logger.info("Authorization: Bearer %s", token)
    logger.info("token was %s", token)
    logger.info("smtp password=hunter2hunter2 rejected")
    try:
        raise ValueError("duplicate key (email)=(maria.lopez@example.com)")
    except ValueError:
        logger.exception("insert failed")

    text = stream.getvalue()
    for secret in ("maria.lopez@example.com", "abcdef0123456789secret", token, "hunter2hunter2"):
        assert secret not in text
    assert "<email>" in text and "<secret>" in text and "<token>" in text


def test_ordinary_lines_are_left_alone() -> None:
    line = "refused Order lookup for another customer's row (customer 42)"
    assert redact(line) == line

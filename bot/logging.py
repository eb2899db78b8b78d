"""Herald's log lines: a correlation id per conversation, and no secrets or personal data.

Every line carries `[cid=...]`, a short hash of the conversation id, so one
conversation's lines can be followed across the action server, the worker and the API
without writing the Slack/Telegram user id itself. A redacting filter is the safety
net under the rule that code never logs emails, tokens, codes or message text.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

NO_CONVERSATION = "-"
FORMAT = "%(asctime)s %(levelname)s %(name)s [cid=%(correlation_id)s] %(message)s"

_correlation_id: ContextVar[str] = ContextVar("herald_correlation_id", default=NO_CONVERSATION)

# What must never reach a log file, whichever library wrote the line.
_REDACTIONS = (
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "<email>"),
    # JWTs (customer tokens) and bearer credentials.
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "<token>"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1<secret>"),
    # token=..., password=..., X-Herald-Action-Token: ... in URLs, headers and reprs.
    (
        re.compile(
            r"(?i)((?:token|secret|password|api[_-]?key)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,}]+"
        ),
        r"\1<secret>",
    ),
)


def correlation_id_for(sender_id: str) -> str:
    """A stable, short id for a conversation that does not reveal the platform user id."""
    return hashlib.sha256(sender_id.encode()).hexdigest()[:12]


def current_correlation_id() -> str:
    return _correlation_id.get()


def set_conversation(sender_id: str | None) -> None:
    """Tag every log line from here on in this task/thread with the conversation's id."""
    _correlation_id.set(correlation_id_for(sender_id) if sender_id else NO_CONVERSATION)


@contextmanager
def conversation(sender_id: str | None) -> Iterator[str]:
    token = _correlation_id.set(correlation_id_for(sender_id) if sender_id else NO_CONVERSATION)
    try:
        yield _correlation_id.get()
    finally:
        _correlation_id.reset(token)


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class ConversationFilter(logging.Filter):
    """Adds `correlation_id` to every record, so any format can show it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = _correlation_id.get()
        return True


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then scrubs the whole line, tracebacks included.

    Database errors put statement parameters in their messages; this keeps an email
    in a failed query out of the log.
    """

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "correlation_id"):
            record.correlation_id = _correlation_id.get()
        return redact(super().format(record))


def install(level: int | str = logging.INFO, *, fmt: str = FORMAT) -> None:
    """Put Herald's filter and format on every handler of the root logger (adding one if none).

    Safe to call more than once, and after a library (rasa-sdk, aiohttp) set up its own
    handlers: those handlers get the filter and our format too.
    """
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level)
    root.setLevel(level)
    formatter = RedactingFormatter(fmt)
    for handler in root.handlers:
        if not any(isinstance(f, ConversationFilter) for f in handler.filters):
            handler.addFilter(ConversationFilter())
        handler.setFormatter(formatter)
    # Libraries that log request URLs or payloads at INFO stay at WARNING.
    for noisy in ("urllib3", "httpx", "httpcore", "sanic.access", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

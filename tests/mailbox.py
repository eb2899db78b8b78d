"""A real SMTP server on localhost that keeps what it receives, standing in for the mail relay."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

CODE_IN_BODY = re.compile(r"^\s+(\d{6})\s*$", re.MULTILINE)


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def wait_for(self, address: str, count: int = 1, timeout: float = 15.0) -> list[EmailMessage]:
        """The messages to `address` once there are `count` of them (sending is asynchronous)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.to(address)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{count} email(s) to {address} never arrived")
                self._arrived.wait(left)
            return self.to(address)

    def latest_code(self, address: str, count: int = 1) -> str:
        body = self.wait_for(address, count)[-1].get_body(("plain",))
        assert body is not None
        match = CODE_IN_BODY.search(body.get_content())
        assert match, "no code in the email"
        return match.group(1)

    def settle(self, seconds: float = 1.0) -> None:
        """Give a background send time to arrive, before asserting that nothing did."""
        time.sleep(seconds)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_mailbox() -> Iterator[Mailbox]:
    mailbox = Mailbox("127.0.0.1", _free_port())
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()

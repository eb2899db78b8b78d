"""Send account-linking codes by email over SMTP, off the conversation's critical path."""

from __future__ import annotations

import contextvars
import logging
import smtplib
import ssl
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from email.message import EmailMessage

from bot.settings import Settings

logger = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 15
# Sending happens in the background so a known email does not answer slower than an
# unknown one (which sends nothing); two workers are plenty for codes typed by people.
_senders = ThreadPoolExecutor(max_workers=2, thread_name_prefix="link-code-mail")


def link_code_message(settings: Settings, to: str, code: str, valid_for: timedelta) -> EmailMessage:
    minutes = max(1, int(valid_for.total_seconds() // 60))
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = f"Your Lumen Home chat code: {code}"
    message.set_content(
        "Hello,\n\n"
        "Someone asked to link a Slack or Telegram chat with Herald, Lumen Home's support\n"
        "assistant, to your Lumen Home account. If that was you, type this code in the chat:\n\n"
        f"    {code}\n\n"
        f"It works once, from that chat only, for the next {minutes} minutes.\n\n"
        "If it wasn't you, ignore this email: nothing changes without the code, and no one\n"
        "at Lumen Home will ever ask you for it.\n\n"
        "Lumen Home support\n"
    )
    return message


def send_email(settings: Settings, message: EmailMessage) -> None:
    """Deliver one message through the configured SMTP server (raises on failure)."""
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)


def _deliver(settings: Settings, message: EmailMessage) -> None:
    try:
        send_email(settings, message)
    except (OSError, smtplib.SMTPException) as error:
        # The address and the code stay out of the log; the error class says enough.
        logger.error("could not send a link code email: %s", type(error).__name__)
        raise
    logger.info("link code email sent")


def send_link_code(settings: Settings, to: str, code: str, valid_for: timedelta) -> Future[None]:
    """Queue the code email; the future completes when the SMTP server accepted it."""
    message = link_code_message(settings, to, code, valid_for)
    # The conversation's correlation id goes along to the sending thread's log lines.
    return _senders.submit(contextvars.copy_context().run, _deliver, settings, message)

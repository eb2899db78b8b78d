"""`herald telegram ...`: register the Telegram webhook with its secret token, or inspect it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.settings import get_settings
from bot.stack import ensure_local_secrets

if TYPE_CHECKING:
    from telegram import Bot

WEBHOOK_PATH = "/webhooks/telegram/webhook"
DEFAULT_API_URL = "https://api.telegram.org"
# The updates connectors/telegram.py acts on; Telegram sends nothing else.
ALLOWED_UPDATES = ["message", "callback_query"]


def add_telegram_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="telegram_action", required=True)
    hook = actions.add_parser(
        "set-webhook", help="tell Telegram where to send updates, with the webhook secret"
    )
    hook.add_argument(
        "url",
        help=f"public HTTPS address of Rasa (…{WEBHOOK_PATH} is added if missing)",
    )
    hook.add_argument(
        "--drop-pending-updates",
        action="store_true",
        help="discard updates Telegram queued while no webhook was set",
    )
    actions.add_parser("delete-webhook", help="stop webhook delivery (for polling mode)")
    actions.add_parser("webhook-info", help="show where Telegram sends updates now")


def webhook_url(url: str) -> str:
    """The full webhook address for a base URL of Rasa or the webhook URL itself."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return url if parts.path.endswith(WEBHOOK_PATH) else url + WEBHOOK_PATH


def telegram_command(args: argparse.Namespace) -> int:
    # Imported here so `herald --help` stays fast.
    from telegram import Bot
    from telegram.error import InvalidToken, TelegramError

    # Request URLs contain the bot token: keep HTTP client logging quiet.
    for name in ("httpx", "httpcore", "telegram"):
        logging.getLogger(name).setLevel(logging.WARNING)
    settings = get_settings()
    # The same generated secret `herald up` hands the Telegram channel.
    values = {**ensure_local_secrets(settings.var_dir), **os.environ}
    token = values.get("HERALD_TELEGRAM_TOKEN", "")
    if not token:
        print("HERALD_TELEGRAM_TOKEN is not set (the token @BotFather gave you)", file=sys.stderr)
        return 2
    api_url = (values.get("HERALD_TELEGRAM_API_URL") or DEFAULT_API_URL).rstrip("/")
    bot = Bot(token, base_url=f"{api_url}/bot", base_file_url=f"{api_url}/file/bot")
    try:
        return asyncio.run(_run(bot, args, values.get("HERALD_TELEGRAM_WEBHOOK_SECRET", "")))
    except InvalidToken:
        print("Telegram rejected HERALD_TELEGRAM_TOKEN", file=sys.stderr)
        return 1
    except TelegramError as error:
        print(f"Telegram refused: {error.message}", file=sys.stderr)
        return 1


async def _run(bot: Bot, args: argparse.Namespace, secret: str) -> int:
    async with bot:
        if args.telegram_action == "set-webhook":
            try:
                url = webhook_url(args.url)
            except ValueError as error:
                print(error, file=sys.stderr)
                return 2
            await bot.set_webhook(
                url,
                secret_token=secret,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=args.drop_pending_updates,
            )
            print(f"Telegram will send updates for @{bot.username} to {url}")
            return 0
        if args.telegram_action == "delete-webhook":
            await bot.delete_webhook()
            print(f"webhook removed: @{bot.username} can poll (HERALD_TELEGRAM_MODE=polling)")
            return 0
        info = await bot.get_webhook_info()
        print(f"@{bot.username} webhook: {info.url or '(none: polling)'}")
        print(f"pending updates: {info.pending_update_count}")
        if info.last_error_message:
            print(f"last error: {info.last_error_message}")
        return 0

"""How customer-facing facts read: money, dates in the customer's own time zone, states."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}

# 13 to 19 digits, optionally grouped by spaces or dashes: how people paste card numbers.
CARD_NUMBER = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
INVOICE_NUMBER = re.compile(r"(?i)(?:inv)?[\s#:.-]*(\d{6})")


def money(amount: Decimal, currency: str) -> str:
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{amount:,.2f}" if symbol else f"{amount:,.2f} {currency}"


def local_day(moment: datetime, timezone: str) -> str:
    """'Friday 27 November' in the customer's zone: the date they will see the parcel."""
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local:%A} {local.day} {local:%B}"


def local_time(moment: datetime, timezone: str) -> str:
    """'Friday 27 November, 14:00' in the customer's zone, naming the zone if it is UTC."""
    local = moment.astimezone(ZoneInfo(timezone))
    suffix = " UTC" if timezone == "UTC" else ""
    return f"{local_day(moment, timezone)}, {local:%H:%M}{suffix}"


def humanize(state: str) -> str:
    return state.replace("_", " ")


def parse_order_number(raw: object) -> int | None:
    """Order numbers as customers type them: '10042', '#10042', 'order no. 10042'."""
    if raw is None:
        return None
    digits = "".join(ch for ch in str(raw) if ch.isdigit())
    if len(digits) != 5:
        return None
    return int(digits)


def parse_invoice_number(raw: object) -> str | None:
    """Invoice numbers as customers type them ('INV-204311', 'inv 204311', '204311')."""
    if raw is None:
        return None
    text = str(raw).strip()
    if len(text) > 40:
        return None
    match = INVOICE_NUMBER.fullmatch(text)
    return f"INV-{match.group(1)}" if match else None


def mask_email(email: str) -> str:
    """'m****@example.com': enough for the customer to recognise, little for anyone else."""
    local, sep, domain = email.partition("@")
    if not sep:
        return "****"
    return f"{local[:1]}****@{domain}"


def _passes_luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def looks_like_card_number(text: str) -> bool:
    """True when the text holds something that is very likely a payment card number."""
    return any(
        _passes_luhn(re.sub(r"\D", "", match.group())) for match in CARD_NUMBER.finditer(text)
    )


def redact_card_numbers(text: str) -> str:
    """The text with card numbers replaced, so they never reach a ticket or an agent."""

    def replace(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        return "[card number removed]" if _passes_luhn(digits) else match.group()

    return CARD_NUMBER.sub(replace, text)


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when something was cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

"""How customer-facing facts read: money, dates in the customer's own time zone, states."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


def money(amount: Decimal, currency: str) -> str:
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{amount:,.2f}" if symbol else f"{amount:,.2f} {currency}"


def local_day(moment: datetime, timezone: str) -> str:
    """'Friday 27 November' in the customer's zone: the date they will see the parcel."""
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local:%A} {local.day} {local:%B}"


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

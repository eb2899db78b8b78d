"""How facts read to customers, and how their typing is understood."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from actions.formatting import (
    clip,
    local_time,
    looks_like_card_number,
    mask_email,
    parse_invoice_number,
    parse_order_number,
    redact_card_numbers,
)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("INV-204311", "INV-204311"),
        ("inv204311", "INV-204311"),
        ("inv 204311", "INV-204311"),
        ("204311", "INV-204311"),
        ("#204311", "INV-204311"),
        ("INV-2043", None),
        ("INV-2043111", None),
        ("invoice please", None),
        ("9" * 500, None),
        (None, None),
    ],
)
def test_invoice_numbers_as_customers_type_them(typed: str | None, expected: str | None) -> None:
    assert parse_invoice_number(typed) == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("10042", 10042), ("#10042", 10042), ("order no. 10042", 10042), ("1004", None), ("", None)],
)
def test_order_numbers_as_customers_type_them(typed: str, expected: int | None) -> None:
    assert parse_order_number(typed) == expected


@pytest.mark.parametrize(
    ("text", "is_card"),
    [
        ("my card is 4111 1111 1111 1111", True),
        ("4111-1111-1111-1111", True),
        ("5500005555555559", True),
        ("378282246310005", True),
        ("4111 1111 1111 1112", False),  # fails the Luhn check
        ("order 10042 and invoice 204311", False),
        ("call me on +49 30 1234567", False),
        ("", False),
    ],
)
def test_card_numbers_are_recognised(text: str, is_card: bool) -> None:
    assert looks_like_card_number(text) is is_card


def test_card_numbers_are_redacted_and_nothing_else() -> None:
    text = "card 4111 1111 1111 1111 for order 10042"
    assert redact_card_numbers(text) == "card [card number removed] for order 10042"


def test_emails_are_masked_but_recognisable() -> None:
    assert mask_email("maria.lopez.1@example.com") == "m****@example.com"
    assert mask_email("not-an-email") == "****"


def test_times_read_in_the_customers_zone_and_utc_says_so() -> None:
    moment = datetime(2026, 11, 27, 13, 30, tzinfo=UTC)
    assert local_time(moment, "Europe/Berlin") == "Friday 27 November, 14:30"
    assert local_time(moment, "UTC") == "Friday 27 November, 13:30 UTC"
    assert local_time(moment, "Asia/Tokyo") == "Friday 27 November, 22:30"


def test_clip_keeps_short_text_and_marks_cuts() -> None:
    assert clip("  short   text ", 20) == "short text"
    assert clip("x" * 50, 10) == "x" * 9 + "…"

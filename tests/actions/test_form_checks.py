"""The pure slot checks of our forms: addresses, reasons and confirmations."""

from __future__ import annotations

from typing import Any

import pytest

from actions.forms import (
    country_code,
    parse_full_address,
    validate_address_city,
    validate_address_country,
    validate_address_postcode,
    validate_address_street,
    validate_confirmed,
    validate_reason,
)


@pytest.mark.parametrize(
    ("typed", "slots", "response"),
    [
        ("14 Elm Road", {"address_street": "14 Elm Road"}, None),
        ("  Flat 3,   27 Queen Street ", {"address_street": "Flat 3, 27 Queen Street"}, None),
        ("Calle Mayor 5", {"address_street": "Calle Mayor 5"}, None),
        ("12", {"address_street": None}, "utter_invalid_street"),
        ("ok", {"address_street": None}, "utter_invalid_street"),
        ("a" * 121, {"address_street": None}, "utter_address_too_long"),
        ("4111 1111 1111 1111", {"address_street": None}, "utter_no_card_numbers"),
    ],
)
def test_street(typed: str, slots: dict[str, Any], response: str | None) -> None:
    verdict = validate_address_street(typed)
    assert (verdict.slots, verdict.response) == (slots, response)


def test_a_whole_address_in_the_street_answer_fills_every_part() -> None:
    verdict = validate_address_street("14 Elm Road, BS1 4DJ Bristol, United Kingdom")
    assert verdict.response is None
    assert verdict.slots == {
        "address_street": "14 Elm Road",
        "address_city": "Bristol",
        "address_postcode": "BS1 4DJ",
        "address_country": "GB",
    }


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Linden Allee 3, 10115 Berlin, Germany", ("Linden Allee 3", "Berlin", "10115", "DE")),
        ("350 Fifth Avenue, New York 10118, USA", ("350 Fifth Avenue", "New York", "10118", "US")),
        ("5 Rue Cler, 75007 Paris, FR", ("5 Rue Cler", "Paris", "75007", "FR")),
        ("5 Rue Cler, Paris, France", None),  # no postcode
        ("5 Rue Cler, 75007 Paris, Atlantis", None),  # not a country we deliver to
        ("5 Rue Cler, 75007 Paris", None),
    ],
)
def test_full_addresses(typed: str, expected: tuple[str, str, str, str] | None) -> None:
    parsed = parse_full_address(typed)
    if expected is None:
        assert parsed is None
    else:
        assert parsed is not None
        assert (
            parsed["address_street"],
            parsed["address_city"],
            parsed["address_postcode"],
            parsed["address_country"],
        ) == expected


@pytest.mark.parametrize(
    ("typed", "city"),
    [
        ("Bristol", "Bristol"),
        ("São Paulo", "São Paulo"),
        ("Stratford-upon-Avon", "Stratford-upon-Avon"),
        ("St. Albans", "St. Albans"),
        ("Bristol 4", None),
        ("B", None),
        ("x" * 81, None),
    ],
)
def test_city(typed: str, city: str | None) -> None:
    assert validate_address_city(typed).slots == {"address_city": city}


@pytest.mark.parametrize(
    ("typed", "postcode"),
    [
        ("bs1 4dj", "BS1 4DJ"),
        ("10115", "10115"),
        ("01000-000", "01000-000"),
        ("100-0001", "100-0001"),
        ("ABCDE", None),
        ("1", None),
        ("12345678901", None),
        ("4111111111111111", None),
    ],
)
def test_postcode(typed: str, postcode: str | None) -> None:
    assert validate_address_postcode(typed).slots == {"address_postcode": postcode}


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("Germany", "DE"),
        ("de", "DE"),
        ("UK", "GB"),
        ("the USA", "US"),
        ("England", "GB"),
        ("united kingdom.", "GB"),
        ("Narnia", None),
        ("", None),
    ],
)
def test_country(typed: str, code: str | None) -> None:
    assert country_code(typed) == code
    verdict = validate_address_country(typed)
    assert verdict.slots == {"address_country": code}
    if code is None:
        assert verdict.response == "utter_invalid_country"
        assert "Germany" in verdict.values["countries"]


@pytest.mark.parametrize(
    ("typed", "reason", "response"),
    [
        ("it arrived broken", "it arrived broken", None),
        ("the lens is   cracked ", "the lens is cracked", None),
        ("??", None, "utter_invalid_reason"),
        ("12345", None, "utter_invalid_reason"),
        ("my card 4111 1111 1111 1111 was charged", None, "utter_no_card_numbers"),
    ],
)
def test_reason(typed: str, reason: str | None, response: str | None) -> None:
    verdict = validate_reason(typed)
    assert (verdict.slots, verdict.response) == ({"reason": reason}, response)


def test_a_very_long_reason_is_kept_short_enough_for_the_refund_record() -> None:
    reason = validate_reason("it stopped working " * 100).slots["reason"]
    assert len(reason) == 300 and reason.endswith("…")


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), ("yes", None)])
def test_confirmation(value: object, expected: bool | None) -> None:
    assert validate_confirmed(value).slots == {"confirmed": expected}

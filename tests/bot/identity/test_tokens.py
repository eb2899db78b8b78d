"""Customer tokens: only a fresh, untampered token signed with our secret names a customer."""

from __future__ import annotations

import time

import jwt
import pytest

from bot.identity.tokens import sign_customer_token
from connectors.identity import verified_customer_id, web_sender_id

SECRET = "s3cret-for-tests-only-0123456789abcdef"


def test_a_fresh_token_names_its_customer() -> None:
    token = sign_customer_token(42, SECRET)
    assert verified_customer_id(token, SECRET) == 42
    assert web_sender_id(token, None, SECRET) == "web:42"


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    forged = jwt.encode(
        {"sub": "43", "aud": "herald-webchat", "exp": int(time.time()) + 60},
        "an-attackers-own-key-0123456789abcdef",
        algorithm="HS256",
    ).split(".")[1]
    return ".".join([header, forged, signature])


@pytest.mark.parametrize(
    "why, token",
    [
        ("expired", sign_customer_token(42, SECRET, ttl_seconds=60, now=time.time() - 3600)),
        ("wrong secret", sign_customer_token(42, "another-secret-entirely-0123456789")),
        ("tampered payload", _tampered(sign_customer_token(42, SECRET))),
        (
            "unsigned (alg none)",
            jwt.encode(
                {"sub": "42", "aud": "herald-webchat", "exp": int(time.time()) + 60},
                None,
                algorithm="none",
            ),
        ),
        (
            "wrong audience",
            jwt.encode(
                {"sub": "42", "aud": "other", "exp": int(time.time()) + 60},
                SECRET,
                algorithm="HS256",
            ),
        ),
        (
            "no expiry",
            jwt.encode({"sub": "42", "aud": "herald-webchat"}, SECRET, algorithm="HS256"),
        ),
        (
            "non-numeric subject",
            jwt.encode(
                {"sub": "admin", "aud": "herald-webchat", "exp": int(time.time()) + 60},
                SECRET,
                algorithm="HS256",
            ),
        ),
        ("garbage", "not.a.token"),
        ("empty", ""),
        ("huge", "a" * 100_000),
    ],
)
def test_a_bad_token_means_an_anonymous_visitor(why: str, token: str) -> None:
    assert verified_customer_id(token, SECRET) is None
    assert web_sender_id(token, "visitor-123456", SECRET) == "web:anon-visitor-123456"


@pytest.mark.parametrize("anonymous_id", ["42", "../web:42", "x" * 500, "", None, "web:42"])
def test_an_anonymous_id_can_never_name_a_customer(anonymous_id: str | None) -> None:
    sender = web_sender_id(None, anonymous_id, SECRET)
    assert sender.startswith("web:anon-")
    assert sender != "web:42"


def test_no_secret_configured_trusts_no_token() -> None:
    token = sign_customer_token(42, SECRET)
    assert verified_customer_id(token, "") is None

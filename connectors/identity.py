"""Turn what a web client presents into a conversation id it cannot choose itself."""

from __future__ import annotations

import hmac
import os
import re
import uuid
from typing import Optional

import jwt

ALGORITHM = "HS256"
AUDIENCE = "herald-webchat"
LEEWAY_SECONDS = 30
_ANON_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def customer_token_secret() -> str:
    return os.environ.get("HERALD_CUSTOMER_TOKEN_SECRET", "")


def verified_customer_id(token: Optional[str], secret: str) -> Optional[int]:
    """The customer id a shop-signed token names, or None if forged, expired or malformed."""
    if not token or not secret or not isinstance(token, str) or len(token) > 4096:
        return None
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            leeway=LEEWAY_SECONDS,
            options={"require": ["sub", "exp", "aud"]},
        )
        customer_id = int(payload["sub"])
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    return customer_id if customer_id > 0 else None


def web_sender_id(token: Optional[str], anonymous_id: Optional[str], secret: str) -> str:
    """`web:<customer id>` for a verified customer, else a conversation of the visitor's own.

    An anonymous id is only ever prefixed `anon-`, so no client input can name a customer.
    """
    customer_id = verified_customer_id(token, secret)
    if customer_id is not None:
        return f"web:{customer_id}"
    if anonymous_id and isinstance(anonymous_id, str) and _ANON_ID.match(anonymous_id):
        return f"web:anon-{anonymous_id}"
    return f"web:anon-{uuid.uuid4().hex}"


def secrets_match(presented: Optional[str], expected: str) -> bool:
    return (
        bool(expected)
        and presented is not None
        and hmac.compare_digest(presented.encode(), expected.encode())
    )

"""Customer tokens the shop's website signs (HS256) so web chat knows who is typing."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
AUDIENCE = "herald-webchat"
# Clock drift between the shop's servers and ours.
LEEWAY_SECONDS = 30


class InvalidCustomerToken(Exception):
    """The token is forged, expired, tampered with or malformed."""


@dataclass(frozen=True)
class CustomerClaims:
    customer_id: int
    expires_at: int


def sign_customer_token(
    customer_id: int, secret: str, *, ttl_seconds: int = 3600, now: float | None = None
) -> str:
    if not secret:
        raise ValueError("no customer token secret configured")
    issued = int(now if now is not None else time.time())
    payload = {"sub": str(customer_id), "aud": AUDIENCE, "iat": issued, "exp": issued + ttl_seconds}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def verify_customer_token(token: str, secret: str) -> CustomerClaims:
    """The customer a token names, or InvalidCustomerToken; never a partial answer."""
    if not secret:
        raise InvalidCustomerToken("no customer token secret configured")
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            leeway=LEEWAY_SECONDS,
            options={"require": ["sub", "exp", "aud"]},
        )
        return CustomerClaims(customer_id=int(payload["sub"]), expires_at=int(payload["exp"]))
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise InvalidCustomerToken(str(error)) from error

"""Link a Slack or Telegram account to a customer with a one-time code sent to their email.

The rules that keep this from leaking or being guessed:
- the answer to "here is my email" is the same whether or not the email is known, and
  an unknown email gets no code (nothing is even written that depends on it);
- codes are 6 digits, expire, work once, only from the chat account that asked, and are
  stored as a keyed hash;
- a few wrong codes lock linking for that chat account for a while, and the number of
  codes one chat account may ask for in an hour is capped (and per customer, so nobody
  can flood someone's inbox from many accounts).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.db.models import ChannelIdentity, Customer, Platform
from bot.identity.customers import ConversationIdentity
from bot.identity.models import LinkCode, LinkThrottle
from bot.settings import Settings

logger = logging.getLogger(__name__)

CODE_DIGITS = 6
REQUEST_WINDOW = timedelta(hours=1)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


class LinkingUnavailable(Exception):
    """Linking cannot run safely (no key configured for the code hashes)."""


@dataclass(frozen=True)
class LinkPolicy:
    """The limits linking runs under; from the settings in production, tighter in tests."""

    secret: str
    code_ttl: timedelta = timedelta(minutes=10)
    max_attempts: int = 5
    lockout: timedelta = timedelta(minutes=15)
    max_codes_per_hour: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> LinkPolicy:
        return cls(
            secret=settings.link_code_secret,
            code_ttl=timedelta(seconds=settings.link_code_ttl_seconds),
            max_attempts=settings.link_max_attempts,
            lockout=timedelta(seconds=settings.link_lockout_seconds),
            max_codes_per_hour=settings.link_max_codes_per_hour,
        )


def linkable_identity(sender_id: str) -> ConversationIdentity | None:
    """The chat account a conversation comes from, if it is one that links by code.

    Web chat is excluded: there the shop's signed token says who the customer is.
    """
    identity = ConversationIdentity.parse(sender_id)
    if identity is None or identity.platform is Platform.WEB:
        return None
    return identity


def parse_email(text: object) -> str | None:
    """The email address in what the customer typed, normalised to lower case."""
    if not isinstance(text, str) or len(text) > 500:
        return None
    match = _EMAIL.search(text)
    return match.group(0).lower() if match else None


def parse_code(text: object) -> str | None:
    """A 6-digit code as customers type it: '482913', 'code: 482 913', 'it's 482-913'."""
    if isinstance(text, int):
        text = str(text)
    if not isinstance(text, str) or len(text) > 200:
        return None
    match = _CODE.search(re.sub(r"(?<=\d)[\s-](?=\d)", "", text))
    return match.group(1) if match else None


def mask_email(email: str) -> str:
    """'m***@example.com': enough for the customer to recognise, useless to anyone else."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


class RequestOutcome(enum.Enum):
    # The same reply for both: the customer is told a code is on its way if the email is known.
    ACCEPTED = "accepted"
    LOCKED = "locked"
    TOO_MANY_REQUESTS = "too_many_requests"


@dataclass(frozen=True)
class CodeRequest:
    outcome: RequestOutcome
    # Set only when an email must go out: the address and the plain code, never stored.
    send_to: str | None = None
    code: str | None = None
    locked_until: datetime | None = None


class RedeemOutcome(enum.Enum):
    LINKED = "linked"
    WRONG = "wrong"
    LOCKED = "locked"


@dataclass(frozen=True)
class Redemption:
    outcome: RedeemOutcome
    customer: Customer | None = None
    tries_left: int = 0
    locked_until: datetime | None = None


def _hash(policy: LinkPolicy, identity: ConversationIdentity, customer_id: int, code: str) -> str:
    if not policy.secret:
        raise LinkingUnavailable("HERALD_LINK_CODE_SECRET is not set")
    message = f"{identity.platform.value}:{identity.external_id}:{customer_id}:{code}"
    return hmac.new(policy.secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _throttle(session: Session, identity: ConversationIdentity) -> LinkThrottle:
    row = session.scalar(
        select(LinkThrottle)
        .where(
            LinkThrottle.platform == identity.platform,
            LinkThrottle.external_id == identity.external_id,
        )
        .with_for_update()
    )
    if row is None:
        row = LinkThrottle(
            platform=identity.platform,
            external_id=identity.external_id,
            failed_attempts=0,
            code_requests=0,
        )
        session.add(row)
        session.flush()
    return row


def locked_until(
    session: Session, identity: ConversationIdentity, now: datetime
) -> datetime | None:
    """When linking opens again for this chat account, or None if it is open now."""
    row = session.scalar(
        select(LinkThrottle).where(
            LinkThrottle.platform == identity.platform,
            LinkThrottle.external_id == identity.external_id,
        )
    )
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return row.locked_until


def _clear_expired_lock(throttle: LinkThrottle, now: datetime) -> None:
    if throttle.locked_until is not None and throttle.locked_until <= now:
        throttle.locked_until = None
        throttle.failed_attempts = 0


def is_linked(session: Session, identity: ConversationIdentity) -> bool:
    row = session.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.platform == identity.platform,
            ChannelIdentity.external_id == identity.external_id,
            ChannelIdentity.verified.is_(True),
            ChannelIdentity.customer_id.is_not(None),
        )
    )
    return row is not None


def request_code(
    session: Session,
    identity: ConversationIdentity,
    email: str,
    policy: LinkPolicy,
    now: datetime,
) -> CodeRequest:
    """Record a request for a code; say whom to email it to, if anyone.

    Counts against this chat account whatever the email, so limits reveal nothing.
    """
    if not policy.secret:
        raise LinkingUnavailable("HERALD_LINK_CODE_SECRET is not set")
    throttle = _throttle(session, identity)
    _clear_expired_lock(throttle, now)
    throttle.updated_at = now
    if throttle.locked_until is not None:
        return CodeRequest(RequestOutcome.LOCKED, locked_until=throttle.locked_until)
    window_start = throttle.requests_window_start
    if window_start is None or now - window_start >= REQUEST_WINDOW:
        throttle.requests_window_start = now
        throttle.code_requests = 0
    if throttle.code_requests >= policy.max_codes_per_hour:
        return CodeRequest(RequestOutcome.TOO_MANY_REQUESTS)
    throttle.code_requests += 1

    # Whatever happens next, older codes of this chat account stop working: only the
    # latest code counts, so the customer is never unsure which email to use.
    session.execute(
        delete(LinkCode).where(
            LinkCode.platform == identity.platform,
            LinkCode.external_id == identity.external_id,
            LinkCode.used_at.is_(None),
        )
    )
    customer = session.scalar(
        select(Customer).where(
            func.lower(Customer.email) == email.lower(), Customer.forgotten_at.is_(None)
        )
    )
    if customer is None:
        logger.info("link code requested for an email we do not know; nothing sent")
        return CodeRequest(RequestOutcome.ACCEPTED)
    sent_to_customer = session.scalar(
        select(func.count())
        .select_from(LinkCode)
        .where(LinkCode.customer_id == customer.id, LinkCode.created_at > now - REQUEST_WINDOW)
    )
    if (sent_to_customer or 0) >= policy.max_codes_per_hour:
        logger.warning("link codes for customer %s capped this hour; nothing sent", customer.id)
        return CodeRequest(RequestOutcome.ACCEPTED)

    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    session.add(
        LinkCode(
            platform=identity.platform,
            external_id=identity.external_id,
            customer_id=customer.id,
            code_hash=_hash(policy, identity, customer.id, code),
            created_at=now,
            expires_at=now + policy.code_ttl,
        )
    )
    logger.info("link code issued for customer %s", customer.id)
    return CodeRequest(RequestOutcome.ACCEPTED, send_to=customer.email, code=code)


def redeem_code(
    session: Session,
    identity: ConversationIdentity,
    code: str,
    policy: LinkPolicy,
    now: datetime,
) -> Redemption:
    """Check a code typed in a chat; link that chat account if it is the live one."""
    throttle = _throttle(session, identity)
    _clear_expired_lock(throttle, now)
    throttle.updated_at = now
    if throttle.locked_until is not None:
        return Redemption(RedeemOutcome.LOCKED, locked_until=throttle.locked_until)

    candidates = session.scalars(
        select(LinkCode).where(
            LinkCode.platform == identity.platform,
            LinkCode.external_id == identity.external_id,
            LinkCode.used_at.is_(None),
            LinkCode.expires_at > now,
        )
    ).all()
    # Compare against every live code in constant time; there is at most one in practice.
    match = None
    for candidate in candidates:
        expected = _hash(policy, identity, candidate.customer_id, code)
        if hmac.compare_digest(expected, candidate.code_hash):
            match = candidate
    customer = session.get(Customer, match.customer_id) if match is not None else None
    if match is None or customer is None or customer.forgotten_at is not None:
        throttle.failed_attempts += 1
        if throttle.failed_attempts >= policy.max_attempts:
            throttle.locked_until = now + policy.lockout
            # A locked chat account keeps no live code: after the lock it starts over.
            session.execute(
                delete(LinkCode).where(
                    LinkCode.platform == identity.platform,
                    LinkCode.external_id == identity.external_id,
                    LinkCode.used_at.is_(None),
                )
            )
            logger.warning(
                "linking locked for a chat account after %s wrong codes", throttle.failed_attempts
            )
            return Redemption(RedeemOutcome.LOCKED, locked_until=throttle.locked_until)
        logger.info("wrong link code (%s of %s)", throttle.failed_attempts, policy.max_attempts)
        return Redemption(
            RedeemOutcome.WRONG, tries_left=policy.max_attempts - throttle.failed_attempts
        )

    match.used_at = now
    throttle.failed_attempts = 0
    link_identity(session, identity, customer, now)
    logger.info("chat account linked to customer %s", customer.id)
    return Redemption(RedeemOutcome.LINKED, customer=customer)


def link_identity(
    session: Session, identity: ConversationIdentity, customer: Customer, now: datetime
) -> ChannelIdentity:
    """Make this chat account a verified identity of `customer` (moving it if it was another's)."""
    row = session.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.platform == identity.platform,
            ChannelIdentity.external_id == identity.external_id,
        )
    )
    if row is None:
        row = ChannelIdentity(platform=identity.platform, external_id=identity.external_id)
        session.add(row)
    row.customer_id = customer.id
    row.verified = True
    row.verified_at = now
    row.unreachable_at = None
    session.flush()
    return row


def unlink_identity(session: Session, identity: ConversationIdentity) -> bool:
    """Stop trusting this chat account; True if it was linked.

    The row stays, unverified, so "forget me" still finds the conversations it held.
    """
    row = session.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.platform == identity.platform,
            ChannelIdentity.external_id == identity.external_id,
        )
    )
    if row is None or not row.verified:
        return False
    row.verified = False
    row.verified_at = None
    logger.info("chat account unlinked from customer %s", row.customer_id)
    return True

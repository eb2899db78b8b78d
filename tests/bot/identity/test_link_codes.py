"""One-time link codes: expiry, single use, brute force, lock-out, and no tell about emails."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from bot.db import migrate, session_scope
from bot.db.models import ChannelIdentity, Customer, Platform
from bot.identity.customers import ConversationIdentity, verified_customer
from bot.identity.linking import (
    CodeRequest,
    LinkingUnavailable,
    LinkPolicy,
    RedeemOutcome,
    RequestOutcome,
    linkable_identity,
    locked_until,
    mask_email,
    parse_code,
    parse_email,
    redeem_code,
    request_code,
    unlink_identity,
)
from bot.identity.models import LinkCode, LinkThrottle
from tests.conftest import create_postgres_database, drop_postgres_database

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
POLICY = LinkPolicy(secret="link-secret-for-tests-0123456789abcdef")
TELEGRAM = ConversationIdentity(Platform.TELEGRAM, "5550001")
SLACK = ConversationIdentity(Platform.SLACK, "U0TESTER1")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def linking_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One migrated database of each kind for the module; `shop` empties it per test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('linking') / 'herald.db'}"
        migrate(url)
        yield url
        return
    url = create_postgres_database()
    try:
        migrate(url)
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def shop(linking_database: str) -> str:
    database = linking_database
    with session_scope(database) as session:
        for model in (LinkCode, LinkThrottle, ChannelIdentity, Customer):
            session.execute(delete(model))
    with session_scope(database) as session:
        session.add_all(
            [
                Customer(id=1, name="Maria Lopez", email="Maria.Lopez@example.com"),
                Customer(id=2, name="Tom Baker", email="tom.baker@example.com"),
            ]
        )
    return database


def ask(
    url: str,
    email: str,
    identity: ConversationIdentity = TELEGRAM,
    now: datetime = NOW,
    policy: LinkPolicy = POLICY,
) -> CodeRequest:
    with session_scope(url) as session:
        return request_code(session, identity, email, policy, now)


def redeem(
    url: str,
    code: str,
    identity: ConversationIdentity = TELEGRAM,
    now: datetime = NOW,
    policy: LinkPolicy = POLICY,
) -> tuple[RedeemOutcome, int, datetime | None]:
    with session_scope(url) as session:
        result = redeem_code(session, identity, code, policy, now)
        return result.outcome, result.tries_left, result.locked_until


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def linked_customer(url: str, identity: ConversationIdentity = TELEGRAM) -> int | None:
    with session_scope(url) as session:
        customer = verified_customer(session, f"{identity.platform.value}:{identity.external_id}")
        return customer.id if customer else None


def test_the_right_code_links_the_chat_to_the_customer(shop: str) -> None:
    request = ask(shop, "maria.lopez@EXAMPLE.com")
    assert request.outcome is RequestOutcome.ACCEPTED
    assert request.send_to == "Maria.Lopez@example.com"
    assert request.code is not None and len(request.code) == 6

    assert redeem(shop, request.code)[0] is RedeemOutcome.LINKED
    assert linked_customer(shop) == 1
    with session_scope(shop) as session:
        row = session.scalars(select(ChannelIdentity)).one()
        assert (row.platform, row.external_id, row.verified) == (Platform.TELEGRAM, "5550001", True)
        assert row.verified_at == NOW


def test_an_unknown_email_gets_the_same_answer_and_no_code(shop: str) -> None:
    known = ask(shop, "tom.baker@example.com", SLACK)
    unknown = ask(shop, "nobody@example.com")

    assert unknown.outcome is known.outcome is RequestOutcome.ACCEPTED
    assert unknown.send_to is None and unknown.code is None
    with session_scope(shop) as session:
        codes = select(LinkCode).where(LinkCode.platform == Platform.TELEGRAM)
        assert session.scalars(codes).all() == []
    # Any code typed afterwards is just wrong, exactly like a wrong code for a known email.
    assert redeem(shop, "123456")[:2] == (RedeemOutcome.WRONG, POLICY.max_attempts - 1)


def test_codes_are_stored_hashed_and_bound_to_the_chat_that_asked(shop: str) -> None:
    request = ask(shop, "tom.baker@example.com")
    assert request.code is not None
    with session_scope(shop) as session:
        stored = session.scalars(select(LinkCode)).one()
        assert request.code not in stored.code_hash
        assert len(stored.code_hash) == 64

    # The same code typed from another chat account is wrong there.
    assert redeem(shop, request.code, SLACK)[0] is RedeemOutcome.WRONG
    assert linked_customer(shop, SLACK) is None


def test_a_code_expires(shop: str) -> None:
    request = ask(shop, "tom.baker@example.com")
    assert request.code is not None
    late = NOW + POLICY.code_ttl + timedelta(seconds=1)

    assert redeem(shop, request.code, now=late)[0] is RedeemOutcome.WRONG
    assert linked_customer(shop) is None


def test_a_code_works_once(shop: str) -> None:
    request = ask(shop, "tom.baker@example.com")
    assert request.code is not None
    assert redeem(shop, request.code)[0] is RedeemOutcome.LINKED
    with session_scope(shop) as session:
        assert unlink_identity(session, TELEGRAM)

    assert redeem(shop, request.code)[0] is RedeemOutcome.WRONG
    assert linked_customer(shop) is None


def test_a_new_code_replaces_the_old_one(shop: str) -> None:
    first = ask(shop, "tom.baker@example.com")
    second = ask(shop, "tom.baker@example.com", now=NOW + timedelta(minutes=1))
    assert first.code and second.code

    if first.code != second.code:
        assert redeem(shop, first.code)[0] is RedeemOutcome.WRONG
    assert redeem(shop, second.code)[0] is RedeemOutcome.LINKED


def test_wrong_codes_lock_linking_for_a_while(shop: str) -> None:
    request = ask(shop, "tom.baker@example.com")
    assert request.code is not None

    outcomes = [redeem(shop, wrong(request.code)) for _ in range(POLICY.max_attempts)]

    assert [o[1] for o in outcomes[:-1]] == list(range(POLICY.max_attempts - 1, 0, -1))
    assert outcomes[-1][0] is RedeemOutcome.LOCKED
    assert outcomes[-1][2] == NOW + POLICY.lockout
    # Locked: even the right code does nothing, and no new code is sent.
    assert redeem(shop, request.code)[0] is RedeemOutcome.LOCKED
    assert ask(shop, "tom.baker@example.com").outcome is RequestOutcome.LOCKED
    assert linked_customer(shop) is None
    # Another chat account is not affected by this one's lock.
    assert ask(shop, "tom.baker@example.com", SLACK).outcome is RequestOutcome.ACCEPTED

    # After the lock-out the old code is gone; a fresh one works.
    later = NOW + POLICY.lockout + timedelta(seconds=1)
    with session_scope(shop) as session:
        assert locked_until(session, TELEGRAM, later) is None
    assert redeem(shop, request.code, now=later)[0] is RedeemOutcome.WRONG
    fresh = ask(shop, "tom.baker@example.com", now=later)
    assert fresh.code is not None
    assert redeem(shop, fresh.code, now=later)[0] is RedeemOutcome.LINKED


def test_guessing_every_code_is_hopeless(shop: str) -> None:
    """Brute force: the lock-out stops a guesser long before the code space runs out."""
    request = ask(shop, "tom.baker@example.com")
    assert request.code is not None
    guesses = (f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" != request.code)
    results = [redeem(shop, next(guesses))[0] for _ in range(POLICY.max_attempts + 20)]

    assert results.count(RedeemOutcome.WRONG) == POLICY.max_attempts - 1
    assert set(results[POLICY.max_attempts - 1 :]) == {RedeemOutcome.LOCKED}
    assert linked_customer(shop) is None


def test_code_requests_are_capped_per_chat_and_per_customer(shop: str) -> None:
    policy = LinkPolicy(secret=POLICY.secret, max_codes_per_hour=2)
    assert ask(shop, "nobody@example.com", policy=policy).outcome is RequestOutcome.ACCEPTED
    assert ask(shop, "tom.baker@example.com", policy=policy).code is not None
    # The third request of the hour from this chat is refused whatever the email.
    third = ask(shop, "tom.baker@example.com", policy=policy)
    assert third.outcome is RequestOutcome.TOO_MANY_REQUESTS and third.code is None
    assert ask(shop, "x@example.com", now=NOW + timedelta(hours=1), policy=policy).outcome is (
        RequestOutcome.ACCEPTED
    )

    # Many chat accounts cannot flood one inbox: the customer's codes are capped too.
    others = [ConversationIdentity(Platform.SLACK, f"U0FLOOD{n}") for n in range(3)]
    sent = [ask(shop, "maria.lopez@example.com", other, policy=policy).code for other in others]
    assert sent[0] is not None and sent[1] is not None and sent[2] is None


def test_a_forgotten_customer_cannot_be_linked(shop: str) -> None:
    request = ask(shop, "tom.baker@example.com")
    assert request.code is not None
    with session_scope(shop) as session:
        customer = session.get(Customer, 2)
        assert customer is not None
        customer.forgotten_at = NOW

    assert redeem(shop, request.code)[0] is RedeemOutcome.WRONG
    assert ask(shop, "tom.baker@example.com").code is None


def test_linking_moves_a_chat_account_from_its_previous_owner(shop: str) -> None:
    first = ask(shop, "tom.baker@example.com")
    assert first.code is not None
    redeem(shop, first.code)
    with session_scope(shop) as session:
        unlink_identity(session, TELEGRAM)
    second = ask(shop, "maria.lopez@example.com", now=NOW + timedelta(minutes=2))
    assert second.code is not None

    assert redeem(shop, second.code, now=NOW + timedelta(minutes=2))[0] is RedeemOutcome.LINKED
    assert linked_customer(shop) == 1


def test_unlinking_stops_trusting_the_chat_but_keeps_its_history(shop: str) -> None:
    request = ask(shop, "tom.baker@example.com")
    assert request.code is not None
    redeem(shop, request.code)

    with session_scope(shop) as session:
        assert unlink_identity(session, TELEGRAM) is True
        assert unlink_identity(session, TELEGRAM) is False
        assert unlink_identity(session, SLACK) is False
    assert linked_customer(shop) is None
    with session_scope(shop) as session:
        row = session.scalars(select(ChannelIdentity)).one()
        assert (row.verified, row.customer_id) == (False, 2)


def test_a_successful_link_resets_the_wrong_tries(shop: str) -> None:
    request = ask(shop, "tom.baker@example.com")
    assert request.code is not None
    for _ in range(POLICY.max_attempts - 1):
        redeem(shop, wrong(request.code))
    assert redeem(shop, request.code)[0] is RedeemOutcome.LINKED
    with session_scope(shop) as session:
        throttle = session.scalars(select(LinkThrottle)).one()
        assert throttle.failed_attempts == 0


def test_no_key_means_no_linking(shop: str) -> None:
    with pytest.raises(LinkingUnavailable):
        ask(shop, "tom.baker@example.com", policy=LinkPolicy(secret=""))


@pytest.mark.parametrize(
    "typed, code",
    [
        ("482913", "482913"),
        ("my code is 482913", "482913"),
        ("482 913", "482913"),
        ("it's 482-913!", "482913"),
        (482913, "482913"),
        ("12345", None),
        ("1234567", None),
        ("order 10042", None),
        ("", None),
        (None, None),
    ],
)
def test_codes_as_customers_type_them(typed: object, code: str | None) -> None:
    assert parse_code(typed) == code


def test_emails_as_customers_type_them() -> None:
    assert parse_email("it's Maria.Lopez@Example.com thanks") == "maria.lopez@example.com"
    assert parse_email("maria at example dot com") is None
    assert parse_email(None) is None
    assert mask_email("maria.lopez@example.com") == "m***@example.com"


def test_only_slack_and_telegram_link_by_code() -> None:
    assert linkable_identity("telegram:5550001") == TELEGRAM
    assert linkable_identity("slack:U0TESTER1") == SLACK
    assert linkable_identity("web:42") is None
    assert linkable_identity("web:anon-abcdef12") is None
    assert linkable_identity("nonsense") is None

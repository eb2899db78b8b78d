"""The dispatcher end to end against a real database and a fake Rasa at the HTTP seam."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from conftest import NOON, DispatcherFactory
from proactive_fakes import Clock, FakeRasa, Reply, tracker_event
from proactive_shop import add_customer, add_order
from sqlalchemy import select

from bot.db import session_scope
from bot.db.models import ChannelIdentity, Customer, NotificationPreference, OrderStatus, Platform
from bot.proactive.events import parse_event
from bot.proactive.models import DecisionKind, Outreach, OutreachDecision, OutreachState
from bot.proactive.outbox import confirm_delivery
from bot.proactive.pacing import Pacer
from bot.proactive.policy import Policy
from bot.proactive.rules import ingest_event


def post(url: str, policy: Policy, body: dict[str, Any], now: datetime) -> int:
    with session_scope(url) as session:
        result = ingest_event(
            session, parse_event(body, now=now), policy=policy, now=now, source="test"
        )
        return result.event_id


def rows(url: str, **where: Any) -> list[Outreach]:
    with session_scope(url) as session:
        query = select(Outreach).order_by(Outreach.id)
        for name, value in where.items():
            query = query.where(getattr(Outreach, name) == value)
        return list(session.scalars(query))


def decisions(url: str, outreach_id: int) -> list[tuple[DecisionKind, str]]:
    with session_scope(url) as session:
        return [
            (d.kind, d.reason)
            for d in session.scalars(
                select(OutreachDecision)
                .where(OutreachDecision.outreach_id == outreach_id)
                .order_by(OutreachDecision.id)
            )
        ]


def camera_owner(url: str, name: str, **identities: Any) -> int:
    with session_scope(url) as session:
        customer = add_customer(session, name, **identities)
        add_order(session, customer, ("indoor_camera",), status=OrderStatus.DELIVERED, at=NOON)
        return customer.id


def outage(url: str, policy: Policy, now: datetime = NOON) -> int:
    body = {"kind": "outage.opened", "data": {"services": ["camera-cloud"], "title": "Down"}}
    return post(url, policy, body, now)


def renewal_for(url: str, policy: Policy, customer_id: int, now: datetime, days: int = 5) -> None:
    from bot.db.models import Subscription, SubscriptionStatus

    with session_scope(url) as session:
        subscription = Subscription(
            customer_id=customer_id,
            plan="plus",
            status=SubscriptionStatus.ACTIVE,
            price=7.99,
            started_at=now - timedelta(days=300),
            renews_at=now + timedelta(days=days),
        )
        session.add(subscription)
        session.flush()
        subscription_id = subscription.id
    post(url, policy, {"kind": "renewal.due", "data": {"subscription_id": subscription_id}}, now)


async def test_an_outage_goes_to_each_affected_customer_once_with_the_outreach_id(
    shop: str, policy: Policy, fake_rasa: FakeRasa, make_dispatcher: DispatcherFactory
) -> None:
    ana = camera_owner(shop, "Ana")
    bob = camera_owner(shop, "Bob", web=False, telegram="4242")
    with session_scope(shop) as session:
        add_customer(session, "Cat")  # no devices: not affected
    outage(shop, policy)

    stats = await make_dispatcher().run_until_idle()

    assert stats.sent == 2
    sent = {(t.sender_id, t.intent, t.output_channel) for t in fake_rasa.deliveries}
    assert sent == {
        (f"web:{ana}", "EXTERNAL_outage", "webchat"),
        ("telegram:4242", "EXTERNAL_outage", "telegram"),
    }
    assert fake_rasa.token_seen == {"rasa-token"}
    assert len(fake_rasa.calls) == 2
    for row in rows(shop):
        assert row.state is OutreachState.SENT and row.delivered_at is not None
        assert decisions(shop, row.id) == [
            (DecisionKind.SEND, "allowed"),
            (DecisionKind.DELIVERED, "delivered"),
        ]
    # Urgent: the tracker is not even asked whether they are mid-conversation.
    assert fake_rasa.tracker_reads == []
    del bob

    again = await make_dispatcher().run_until_idle()
    assert again.claimed == 0 and len(fake_rasa.calls) == 2


async def test_the_most_recently_used_verified_channel_is_chosen(
    shop: str, policy: Policy, fake_rasa: FakeRasa, make_dispatcher: DispatcherFactory
) -> None:
    # Without any conversation, a phone channel beats web chat...
    ana = camera_owner(shop, "Ana", telegram="1001")
    # ...but a customer who last wrote in web chat gets it there.
    bea = camera_owner(shop, "Bea", slack="U777")
    tracker_event(shop, f"web:{bea}", NOON - timedelta(hours=5))
    tracker_event(shop, "slack:U777", NOON - timedelta(days=3))
    # A proactive trigger is not the customer using a channel.
    tracker_event(shop, "slack:U777", NOON - timedelta(hours=1), intent="EXTERNAL_outage")
    # Unverified or unreachable identities never get messages.
    cy = camera_owner(shop, "Cy", web=False, telegram="1003", verified=False)
    dan = camera_owner(shop, "Dan", web=False, slack="U999")
    with session_scope(shop) as session:
        identity = session.scalars(
            select(ChannelIdentity).where(ChannelIdentity.external_id == "U999")
        ).one()
        identity.unreachable_at = NOON - timedelta(days=1)
    outage(shop, policy)

    await make_dispatcher().run_until_idle()

    assert sorted(t.sender_id for t in fake_rasa.deliveries) == sorted(
        ["telegram:1001", f"web:{bea}"]
    )
    del ana
    for customer in (cy, dan):
        (row,) = rows(shop, customer_id=customer)
        assert row.state is OutreachState.SUPPRESSED
        assert decisions(shop, row.id) == [(DecisionKind.SUPPRESS, "no_reachable_channel")]


async def test_quiet_hours_defer_until_morning_then_it_goes(
    shop: str,
    policy: Policy,
    clock: Clock,
    fake_rasa: FakeRasa,
    make_dispatcher: DispatcherFactory,
) -> None:
    ana = camera_owner(shop, "Ana")
    clock.now = NOON.replace(hour=22)  # 23:00 in Berlin
    renewal_for(shop, policy, ana, clock.now)
    dispatcher = make_dispatcher()

    await dispatcher.run_until_idle()

    (row,) = rows(shop)
    assert row.state is OutreachState.DEFERRED
    morning = NOON.replace(day=21, hour=7)  # 08:00 in Berlin
    assert row.next_attempt_at == morning
    assert decisions(shop, row.id) == [(DecisionKind.DEFER, "quiet_hours")]
    assert fake_rasa.calls == []

    clock.now = morning - timedelta(minutes=1)
    assert (await dispatcher.run_until_idle()).claimed == 0
    clock.now = morning
    await dispatcher.run_until_idle()
    assert [t.intent for t in fake_rasa.deliveries] == ["EXTERNAL_renewal"]


async def test_mid_conversation_defers_until_the_customer_is_idle(
    shop: str,
    policy: Policy,
    clock: Clock,
    fake_rasa: FakeRasa,
    make_dispatcher: DispatcherFactory,
) -> None:
    ana = camera_owner(shop, "Ana")
    fake_rasa.user_said(f"web:{ana}", NOON - timedelta(minutes=3))
    renewal_for(shop, policy, ana, NOON)
    dispatcher = make_dispatcher()

    await dispatcher.run_until_idle()

    (row,) = rows(shop)
    assert decisions(shop, row.id) == [(DecisionKind.DEFER, "mid_conversation")]
    assert row.next_attempt_at == NOON + timedelta(minutes=7)
    assert fake_rasa.tracker_reads == [f"web:{ana}"]
    clock.advance(minutes=7)
    await dispatcher.run_until_idle()
    assert len(fake_rasa.deliveries) == 1


async def test_caps_and_opt_outs(
    shop: str,
    policy: Policy,
    clock: Clock,
    fake_rasa: FakeRasa,
    make_dispatcher: DispatcherFactory,
) -> None:
    ana = camera_owner(shop, "Ana")
    bea = camera_owner(shop, "Bea")
    with session_scope(shop) as session:
        session.add(NotificationPreference(customer_id=bea, topic="renewal", opted_out=True))
    post(shop, policy, {"kind": "customer.signed_up", "data": {"customer_id": ana}}, NOON)
    dispatcher = make_dispatcher()
    await dispatcher.run_until_idle()

    clock.advance(hours=2)
    renewal_for(shop, policy, ana, clock.now)
    renewal_for(shop, policy, bea, clock.now)
    await dispatcher.run_until_idle()

    ana_renewal = rows(shop, customer_id=ana, topic="renewal")[0]
    assert decisions(shop, ana_renewal.id) == [(DecisionKind.DEFER, "cap_1_per_1d")]
    assert ana_renewal.next_attempt_at == NOON + timedelta(days=1)
    bea_renewal = rows(shop, customer_id=bea, topic="renewal")[0]
    assert bea_renewal.state is OutreachState.SUPPRESSED
    assert decisions(shop, bea_renewal.id) == [(DecisionKind.SUPPRESS, "opted_out")]
    # An outage is urgent: the cap does not hold it back.
    outage(shop, policy, clock.now)
    await dispatcher.run_until_idle()
    assert [t.intent for t in fake_rasa.deliveries] == ["EXTERNAL_welcome"] + [
        "EXTERNAL_outage"
    ] * 2


async def test_three_shipment_changes_in_ten_minutes_give_one_message(
    shop: str,
    policy: Policy,
    clock: Clock,
    fake_rasa: FakeRasa,
    make_dispatcher: DispatcherFactory,
) -> None:
    with session_scope(shop) as session:
        eve = add_customer(session, "Eve")
        number = add_order(
            session, eve, ("smart_plug",), status=OrderStatus.SHIPPED, at=NOON
        ).number
    dispatcher = make_dispatcher()
    for minutes, status in ((0, "delayed"), (4, "out_for_delivery"), (9, "delivered")):
        clock.now = NOON + timedelta(minutes=minutes)
        body = {
            "kind": "shipment.status_changed",
            "data": {"order_number": number, "status": status},
        }
        post(shop, policy, body, clock.now)
        await dispatcher.run_until_idle()
        assert fake_rasa.calls == []  # held for coalescing

    clock.now = NOON + timedelta(minutes=15)
    await dispatcher.run_until_idle()

    assert [t.intent for t in fake_rasa.deliveries] == ["EXTERNAL_shipping"]
    shipping = rows(shop, topic="shipping")
    sent = [r for r in shipping if r.state is OutreachState.SENT]
    assert len(sent) == 1 and sent[0].payload["update"] == "delivered"
    assert sent[0].id == fake_rasa.deliveries[0].outreach_id


async def test_transient_failures_back_off_and_honour_retry_after(
    shop: str,
    policy: Policy,
    clock: Clock,
    fake_rasa: FakeRasa,
    make_dispatcher: DispatcherFactory,
) -> None:
    camera_owner(shop, "Ana")
    outage(shop, policy)
    fake_rasa.script.append(
        Reply(503, {"message": "busy"}, {"Retry-After": "120"}, runs_action=False)
    )
    fake_rasa.script.append(Reply(500, {"message": "ConversationError: timeout"}))
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    dispatcher = make_dispatcher(pacer=Pacer(policy.platforms, sleep=no_wait))

    await dispatcher.run_until_idle()
    (row,) = rows(shop)
    assert row.state is OutreachState.PENDING and row.attempts == 1
    assert row.next_attempt_at >= NOON + timedelta(seconds=120)
    assert decisions(shop, row.id)[-1] == (DecisionKind.RETRY, "transient_failure")

    clock.now = row.next_attempt_at
    await dispatcher.run_until_idle()
    # Everyone's web messages waited for the retry-after, not just this row.
    assert max(waits) > 100
    (row,) = rows(shop)
    # The action ran before Rasa failed; the confirmation was undone so a retry can send.
    assert row.state is OutreachState.PENDING and row.delivered_at is None
    first_backoff = timedelta(seconds=10)
    assert row.next_attempt_at - clock.now >= first_backoff * 2 * (1 - 0.2)

    clock.now = row.next_attempt_at
    await dispatcher.run_until_idle()
    assert len(fake_rasa.deliveries) == 1 and len(fake_rasa.calls) == 3
    assert rows(shop)[0].state is OutreachState.SENT


async def test_a_blocked_bot_dead_letters_and_marks_the_identity_unreachable(
    shop: str,
    policy: Policy,
    clock: Clock,
    fake_rasa: FakeRasa,
    make_dispatcher: DispatcherFactory,
) -> None:
    ana = camera_owner(shop, "Ana", telegram="5555")
    outage(shop, policy)
    fake_rasa.script.append(
        Reply(
            500,
            {
                "message": "An unexpected error occurred. Error: Forbidden: bot was blocked "
                "by the user"
            },
        )
    )
    dispatcher = make_dispatcher()

    await dispatcher.run_until_idle()

    (row,) = rows(shop)
    assert row.state is OutreachState.DEAD
    assert decisions(shop, row.id)[-1] == (DecisionKind.DEAD, "permanent_failure")
    with session_scope(shop) as session:
        telegram = session.scalars(
            select(ChannelIdentity).where(ChannelIdentity.external_id == "5555")
        ).one()
        assert telegram.unreachable_at is not None
    # The next message finds the customer where they can still be reached.
    clock.advance(minutes=5)
    post(
        shop,
        policy,
        {"kind": "security.alert", "data": {"customer_id": ana, "message": "Password changed"}},
        clock.now,
    )
    await dispatcher.run_until_idle()
    assert [t.sender_id for t in fake_rasa.deliveries] == [f"web:{ana}"]


async def test_a_channel_rasa_does_not_run_is_skipped_for_another(
    shop: str, policy: Policy, fake_rasa: FakeRasa, make_dispatcher: DispatcherFactory
) -> None:
    ana = camera_owner(shop, "Ana", slack="U1")
    outage(shop, policy)
    # What Rasa answers when the requested output channel is not enabled.
    fake_rasa.script.append(Reply(200, {"tracker": {}, "messages": [{"text": "..."}]}))

    await make_dispatcher().run_until_idle()

    assert [t.sender_id for t in fake_rasa.calls] == ["slack:U1", f"web:{ana}"]
    assert [t.sender_id for t in fake_rasa.deliveries] == [f"web:{ana}"]
    (row,) = rows(shop)
    assert [k for k, _ in decisions(shop, row.id)] == [
        DecisionKind.SEND,
        DecisionKind.RETRY,
        DecisionKind.SEND,
        DecisionKind.DELIVERED,
    ]


async def test_after_the_last_attempt_a_row_is_dead(
    shop: str,
    policy: Policy,
    clock: Clock,
    fake_rasa: FakeRasa,
    make_dispatcher: DispatcherFactory,
) -> None:
    camera_owner(shop, "Ana")
    outage(shop, policy)
    dispatcher = make_dispatcher()
    for _ in range(policy.dispatcher.max_attempts):
        fake_rasa.script.append(Reply(502, "bad gateway", runs_action=False))
        await dispatcher.run_until_idle()
        clock.advance(hours=2)

    (row,) = rows(shop)
    assert row.state is OutreachState.DEAD
    assert decisions(shop, row.id)[-1] == (DecisionKind.DEAD, "max_attempts")
    assert len(fake_rasa.calls) == policy.dispatcher.max_attempts


async def test_stale_and_forgotten(
    shop: str,
    policy: Policy,
    clock: Clock,
    fake_rasa: FakeRasa,
    make_dispatcher: DispatcherFactory,
) -> None:
    ana = camera_owner(shop, "Ana")
    bea = camera_owner(shop, "Bea")
    outage(shop, policy)
    with session_scope(shop) as session:
        customer = session.get(Customer, bea)
        assert customer is not None
        customer.forgotten_at = NOON
    clock.advance(days=2)  # outage notices expire after a day

    await make_dispatcher().run_until_idle()

    assert fake_rasa.calls == []
    (ana_row,) = rows(shop, customer_id=ana)
    assert decisions(shop, ana_row.id) == [(DecisionKind.EXPIRE, "expired")]
    (bea_row,) = rows(shop, customer_id=bea)
    assert decisions(shop, bea_row.id) == [(DecisionKind.SUPPRESS, "customer_forgotten")]


async def test_rows_of_a_worker_that_died_are_finished_without_a_second_message(
    shop: str,
    policy: Policy,
    clock: Clock,
    fake_rasa: FakeRasa,
    make_dispatcher: DispatcherFactory,
) -> None:
    ana = camera_owner(shop, "Ana")
    bea = camera_owner(shop, "Bea")
    outage(shop, policy)
    lapsed = NOON - timedelta(seconds=1)
    with session_scope(shop) as session:
        for row in session.scalars(select(Outreach)):
            # Both approved by a worker that died; Ana's action had already run.
            row.state, row.claimed_by, row.lease_until = OutreachState.SENDING, "gone:1", lapsed
            row.sent_at = NOON - timedelta(minutes=3)
            row.platform, row.sender_id = Platform.WEB, f"web:{row.customer_id}"
            row.attempts = 1
            if row.customer_id == ana:
                row.delivered_at = NOON - timedelta(minutes=2)

    await make_dispatcher().run_until_idle()

    assert [t.sender_id for t in fake_rasa.calls] == [f"web:{bea}"]
    for row in rows(shop):
        assert row.state is OutreachState.SENT
    (ana_row,) = rows(shop, customer_id=ana)
    assert decisions(shop, ana_row.id) == [(DecisionKind.DELIVERED, "delivered")]


def test_the_action_confirms_each_row_once_for_its_own_conversation(shop: str) -> None:
    with session_scope(shop) as session:
        customer = add_customer(session, "Ana")
        row = Outreach(
            customer_id=customer.id,
            topic="outage",
            urgency="urgent",
            dedup_key="k",
            payload={},
            state=OutreachState.SENDING,
            not_before=NOON,
            next_attempt_at=NOON,
            created_at=NOON,
            sender_id=f"web:{customer.id}",
        )
        session.add(row)
        session.flush()
        outreach_id, sender = row.id, row.sender_id

    with session_scope(shop) as session:
        # Not approved by the throttle yet: a customer typing the trigger gets nothing.
        assert confirm_delivery(session, outreach_id, sender, "outage", NOON) is None
        session.get(Outreach, outreach_id).sent_at = NOON  # type: ignore[union-attr]
    with session_scope(shop) as session:
        assert confirm_delivery(session, outreach_id, "web:999", "outage", NOON) is None
        assert confirm_delivery(session, outreach_id, sender, "renewal", NOON) is None
        assert confirm_delivery(session, outreach_id, sender, "outage", NOON) is not None
    with session_scope(shop) as session:
        assert confirm_delivery(session, outreach_id, sender, "outage", NOON) is None

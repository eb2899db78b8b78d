"""The dispatcher: claim due outreach, ask the throttle, deliver through Rasa, record everything."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.db import session_scope
from bot.db.models import ChannelIdentity, Customer, Platform
from bot.proactive.delivery import Delivery, DeliveryResult, DeliveryTarget, Outcome
from bot.proactive.models import DecisionKind, Outreach, OutreachState
from bot.proactive.outbox import ClaimedOutreach, chunks, claim_due, record
from bot.proactive.pacing import Pacer
from bot.proactive.policy import Policy
from bot.proactive.preferences import load_preferences
from bot.proactive.routing import Route, choose_routes
from bot.proactive.throttle import Candidate, PastSend, Preferences, Verdict, decide
from bot.proactive.topics import intent_for

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    suppressed: int = 0
    expired: int = 0
    retried: int = 0
    dead: int = 0

    def add(self, other: DispatchStats) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class Approved:
    """A row the throttle let through, on its way to Rasa."""

    outreach_id: int
    topic: str
    attempts: int
    route: Route


@dataclass
class _Health:
    last_cycle_at: datetime | None = None
    totals: DispatchStats = field(default_factory=DispatchStats)


def load_history(
    session: Session, customer_ids: list[int], since: datetime
) -> dict[int, list[PastSend]]:
    """Each customer's approved messages since `since`: what caps and cooldowns count."""
    history: dict[int, list[PastSend]] = defaultdict(list)
    for part in chunks(customer_ids):
        rows = session.execute(
            select(
                Outreach.customer_id,
                Outreach.topic,
                Outreach.urgency,
                Outreach.sent_at,
                Outreach.dedup_key,
            ).where(
                Outreach.customer_id.in_(part),
                Outreach.sent_at >= since,
                Outreach.state.in_((OutreachState.SENT, OutreachState.SENDING)),
            )
        )
        for customer_id, topic, urgency, sent_at, dedup_key in rows:
            history[customer_id].append(
                PastSend(topic, urgency.value == "urgent", sent_at, dedup_key)
            )
    return history


class Dispatcher:
    """One worker's dispatch loop body; several may run against PostgreSQL at once."""

    def __init__(
        self,
        *,
        database_url: str,
        policy: Policy,
        delivery: Delivery,
        tracker_url: str | None = None,
        worker_id: str | None = None,
        clock: Clock = utc_now,
        pacer: Pacer | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.database_url = database_url
        self.policy = policy
        self.delivery = delivery
        self.tracker_url = tracker_url if tracker_url is not None else database_url
        self.worker_id = worker_id or default_worker_id()
        self.clock = clock
        self.pacer = pacer or Pacer(policy.platforms)
        self.rng = rng or random.Random()
        self.health = _Health()
        # Platforms Rasa could not deliver to lately (channel not enabled), until when.
        self._unavailable: dict[Platform, float] = {}
        # Deliveries in flight per platform, shared by every batch of this worker.
        self._slots = {
            platform: asyncio.Semaphore(policy.dispatcher.concurrency) for platform in Platform
        }

    # -- the cycle --------------------------------------------------------------------

    async def run_once(self) -> DispatchStats:
        """Claim one batch of due rows and see each through to a recorded decision."""
        approved, stats = await self.prepare()
        await self.deliver(approved, stats)
        return stats

    async def prepare(self) -> tuple[list[Approved], DispatchStats]:
        """Claim a batch and decide each row; what the throttle let through comes back."""
        stats = DispatchStats()
        claimed = await asyncio.to_thread(self._claim)
        stats.claimed = len(claimed)
        approved: list[Approved] = []
        if claimed:
            routes = await asyncio.to_thread(self._route, claimed)
            activity = await self._activity(claimed, routes)
            approved = await asyncio.to_thread(self._decide, claimed, routes, activity, stats)
        if not approved:
            self._finish_cycle(stats)
        return approved, stats

    async def deliver(self, approved: list[Approved], stats: DispatchStats) -> None:
        """Deliver a prepared batch (paced per platform) and record each result."""
        if approved:
            await self._deliver_all(approved, stats)
            self._finish_cycle(stats)

    def _finish_cycle(self, stats: DispatchStats) -> None:
        self.health.last_cycle_at = self.clock()
        self.health.totals.add(stats)

    async def run_until_idle(self, max_cycles: int = 10_000) -> DispatchStats:
        """Dispatch until nothing is due (for `herald dispatch` and tests)."""
        total = DispatchStats()
        for _ in range(max_cycles):
            stats = await self.run_once()
            total.add(stats)
            if stats.claimed == 0:
                break
        return total

    # -- phase 1: claim ---------------------------------------------------------------

    def _claim(self) -> list[ClaimedOutreach]:
        with session_scope(self.database_url) as session:
            return claim_due(
                session,
                now=self.clock(),
                worker=self.worker_id,
                limit=self.policy.dispatcher.batch_size,
                lease=self.policy.dispatcher.lease,
            )

    # -- phase 2: where each message would go, and whether that customer is chatting --

    def _unavailable_platforms(self) -> set[Platform]:
        now = time.monotonic()
        return {platform for platform, until in self._unavailable.items() if until > now}

    def _route(self, claimed: list[ClaimedOutreach]) -> dict[int, Route | None]:
        with session_scope(self.database_url) as session:
            return choose_routes(
                session,
                {row.customer_id for row in claimed},
                tracker_url=self.tracker_url,
                unavailable=self._unavailable_platforms(),
            )

    async def _activity(
        self, claimed: list[ClaimedOutreach], routes: dict[int, Route | None]
    ) -> dict[str, datetime | None]:
        """Last customer message per conversation, asked of Rasa only where it matters."""
        applies_to_urgent = self.policy.throttle.mid_conversation_applies_to_urgent
        senders = {
            route.sender_id
            for row in claimed
            if (route := routes.get(row.customer_id)) is not None
            and row.sent_at is None
            and (applies_to_urgent or not row.urgent)
        }
        limit = asyncio.Semaphore(self.policy.dispatcher.concurrency)

        async def lookup(sender_id: str) -> tuple[str, datetime | None]:
            async with limit:
                return sender_id, await self.delivery.last_user_message_at(sender_id)

        return dict(await asyncio.gather(*(lookup(s) for s in sorted(senders))))

    # -- phase 3: the throttle --------------------------------------------------------

    def _decide(
        self,
        claimed: list[ClaimedOutreach],
        routes: dict[int, Route | None],
        activity: dict[str, datetime | None],
        stats: DispatchStats,
    ) -> list[Approved]:
        policy = self.policy
        approved: list[Approved] = []
        with session_scope(self.database_url) as session:
            now = self.clock()
            customer_ids = sorted({row.customer_id for row in claimed})
            if session.get_bind().dialect.name == "postgresql":
                # Two workers deciding for one customer at once could both see room under
                # a cap; locking the customers (in id order, so no deadlock) serialises that.
                session.execute(
                    select(Customer.id)
                    .where(Customer.id.in_(customer_ids))
                    .order_by(Customer.id)
                    .with_for_update()
                )
            preferences = load_preferences(session, customer_ids)
            history = load_history(session, customer_ids, now - policy.throttle.history_window)
            rows = {
                row.id: row
                for part in chunks([c.id for c in claimed])
                for row in session.scalars(select(Outreach).where(Outreach.id.in_(part)))
            }
            for claim in claimed:
                row = rows.get(claim.id)
                if row is None or row.state is not OutreachState.SENDING:
                    continue
                if row.claimed_by != self.worker_id:
                    continue  # our lease ran out and another worker holds it now
                result = self._decide_one(
                    session,
                    row,
                    routes.get(row.customer_id),
                    preferences.get(row.customer_id),
                    history[row.customer_id],
                    activity,
                    now,
                    stats,
                )
                if result is not None:
                    approved.append(result)
        return approved

    def _decide_one(
        self,
        session: Session,
        row: Outreach,
        route: Route | None,
        prefs: Preferences | None,
        history: list[PastSend],
        activity: dict[str, datetime | None],
        now: datetime,
        stats: DispatchStats,
    ) -> Approved | None:
        worker = self.worker_id
        if row.delivered_at is not None:
            # A worker died after Rasa ran the action: the customer has the message.
            self._finish(session, row, OutreachState.SENT, now)
            record(
                session,
                row.id,
                DecisionKind.DELIVERED,
                "delivered",
                now,
                detail="confirmed by the action before the previous worker stopped",
                worker=worker,
            )
            stats.sent += 1
            return None
        if prefs is None or route is None:
            reason = "customer_forgotten" if prefs is None else "no_reachable_channel"
            self._finish(session, row, OutreachState.SUPPRESSED, now)
            record(session, row.id, DecisionKind.SUPPRESS, reason, now, worker=worker)
            stats.suppressed += 1
            return None
        if row.sent_at is not None:
            # Approved by a worker that stopped before Rasa confirmed: deliver it again
            # (the action makes sure the customer sees it at most once), unless stale.
            if row.expires_at is not None and now >= row.expires_at:
                self._finish(session, row, OutreachState.EXPIRED, now)
                record(session, row.id, DecisionKind.EXPIRE, "expired", now, worker=worker)
                stats.expired += 1
                return None
            return self._approve(session, row, route, now, resumed=True)

        candidate = Candidate(row.topic, row.urgent, row.dedup_key, row.expires_at)
        decision = decide(
            candidate,
            prefs,
            history,
            now,
            self.policy.throttle,
            last_user_message_at=activity.get(route.sender_id),
        )
        row.platform, row.sender_id = route.platform, route.sender_id
        match decision.verdict:
            case Verdict.SEND:
                history.append(PastSend(row.topic, row.urgent, now, row.dedup_key))
                return self._approve(session, row, route, now)
            case Verdict.DEFER:
                assert decision.until is not None
                row.state = OutreachState.DEFERRED
                row.next_attempt_at = decision.until
                row.claimed_by, row.lease_until = None, None
                record(
                    session,
                    row.id,
                    DecisionKind.DEFER,
                    decision.reason,
                    now,
                    until=decision.until,
                    detail=decision.detail,
                    worker=worker,
                )
                stats.deferred += 1
            case Verdict.SUPPRESS:
                self._finish(session, row, OutreachState.SUPPRESSED, now)
                record(session, row.id, DecisionKind.SUPPRESS, decision.reason, now, worker=worker)
                stats.suppressed += 1
            case Verdict.EXPIRE:
                self._finish(session, row, OutreachState.EXPIRED, now)
                record(
                    session,
                    row.id,
                    DecisionKind.EXPIRE,
                    decision.reason,
                    now,
                    detail=decision.detail,
                    worker=worker,
                )
                stats.expired += 1
        return None

    def _approve(
        self, session: Session, row: Outreach, route: Route, now: datetime, resumed: bool = False
    ) -> Approved:
        row.sent_at = row.sent_at or now
        row.platform, row.sender_id = route.platform, route.sender_id
        row.attempts += 1
        row.lease_until = now + self.policy.dispatcher.lease
        record(
            session,
            row.id,
            DecisionKind.SEND,
            "resumed" if resumed else "allowed",
            now,
            detail=f"to {route.sender_id} on {route.platform.value}",
            worker=self.worker_id,
        )
        return Approved(row.id, row.topic, row.attempts, route)

    @staticmethod
    def _finish(session: Session, row: Outreach, state: OutreachState, now: datetime) -> None:
        row.state = state
        row.claimed_by, row.lease_until = None, None
        if state in (OutreachState.SUPPRESSED, OutreachState.EXPIRED):
            # Never went out, so it does not count against caps or cooldowns.
            row.sent_at = None

    # -- phase 4: delivery ------------------------------------------------------------

    async def _deliver_all(self, approved: list[Approved], stats: DispatchStats) -> None:
        async def deliver(item: Approved) -> None:
            # A request waits for a slot of its platform first and is paced after, so it
            # goes out the moment its turn comes: pacing and then queueing for a slot
            # would let requests bunch up. One slow platform holds only its own slots.
            async with self._slots[item.route.platform]:
                await self.pacer.wait_turn(item.route.platform, item.route.sender_id)
                result = await self.delivery.trigger(
                    DeliveryTarget(
                        item.route.sender_id,
                        item.route.platform,
                        intent_for(item.topic),
                        item.outreach_id,
                    )
                )
            if result.retry_after:
                await self.pacer.pause(item.route.platform, result.retry_after)
            if result.outcome is Outcome.CHANNEL_UNAVAILABLE:
                self._unavailable[item.route.platform] = (
                    time.monotonic()
                    + self.policy.dispatcher.channel_unavailable_for.total_seconds()
                )
                logger.warning(
                    "Rasa has no %s output channel; routing elsewhere for a while",
                    item.route.platform.value,
                )
            await asyncio.to_thread(self._record_result, item, result, stats)

        # Rows wait for their turn with the pacer: keep their claim alive meanwhile, so no
        # other worker mistakes a long paced queue for a dead worker.
        waiting = {item.outreach_id for item in approved}
        keeper = asyncio.create_task(self._keep_leases(waiting))

        async def deliver_and_release(item: Approved) -> None:
            try:
                await deliver(item)
            finally:
                waiting.discard(item.outreach_id)

        try:
            await asyncio.gather(*(deliver_and_release(item) for item in approved))
        finally:
            keeper.cancel()

    async def _keep_leases(self, waiting: set[int]) -> None:
        interval = self.policy.dispatcher.lease.total_seconds() / 3
        while waiting:
            await asyncio.sleep(interval)
            if waiting:
                await asyncio.to_thread(self._extend_leases, sorted(waiting))

    def _extend_leases(self, outreach_ids: list[int]) -> None:
        with session_scope(self.database_url) as session:
            until = self.clock() + self.policy.dispatcher.lease
            for part in chunks(outreach_ids):
                session.execute(
                    update(Outreach)
                    .where(
                        Outreach.id.in_(part),
                        Outreach.claimed_by == self.worker_id,
                        Outreach.state == OutreachState.SENDING,
                    )
                    .values(lease_until=until)
                    .execution_options(synchronize_session=False)
                )

    def backoff(self, attempts: int, retry_after: float | None) -> timedelta:
        """Exponential backoff with jitter; never sooner than the platform asked."""
        settings = self.policy.dispatcher
        base = settings.backoff_base.total_seconds() * 2 ** max(0, attempts - 1)
        delay = min(base, settings.backoff_max.total_seconds())
        delay *= 1 + self.rng.uniform(-settings.backoff_jitter, settings.backoff_jitter)
        return timedelta(seconds=max(delay, retry_after or 0.0))

    def _record_result(self, item: Approved, result: DeliveryResult, stats: DispatchStats) -> None:
        worker = self.worker_id
        with session_scope(self.database_url) as session:
            now = self.clock()
            query = select(Outreach).where(Outreach.id == item.outreach_id)
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update()
            row = session.scalar(query)
            if row is None or row.state is not OutreachState.SENDING:
                return
            if row.claimed_by != worker:
                return  # another worker took the row over; its result counts
            outcome = result.outcome
            if outcome is Outcome.AMBIGUOUS:
                # The action's confirmation tells whether Rasa got as far as the message.
                outcome = Outcome.DELIVERED if row.delivered_at else Outcome.TRANSIENT
            if outcome is Outcome.DELIVERED and row.delivered_at is None:
                outcome = Outcome.TRANSIENT
                result = DeliveryResult(
                    Outcome.TRANSIENT, "Rasa answered but the action sent nothing"
                )

            if outcome is Outcome.DELIVERED:
                self._finish(session, row, OutreachState.SENT, now)
                record(
                    session,
                    row.id,
                    DecisionKind.DELIVERED,
                    "delivered",
                    now,
                    detail=f"via {item.route.platform.value}",
                    worker=worker,
                )
                stats.sent += 1
                return

            # The message did not reach the customer: forget the action's confirmation so
            # that a later attempt can send it, and let the throttle decide afresh.
            row.delivered_at = None
            row.last_error = result.detail[:300] or outcome.value
            if outcome is Outcome.PERMANENT:
                self._finish(session, row, OutreachState.DEAD, now)
                record(
                    session,
                    row.id,
                    DecisionKind.DEAD,
                    "permanent_failure",
                    now,
                    detail=result.detail,
                    worker=worker,
                )
                if result.identity_unreachable:
                    mark_unreachable(session, item.route.identity_id, now)
                stats.dead += 1
                return
            if row.attempts >= self.policy.dispatcher.max_attempts:
                self._finish(session, row, OutreachState.DEAD, now)
                record(
                    session,
                    row.id,
                    DecisionKind.DEAD,
                    "max_attempts",
                    now,
                    detail=result.detail,
                    worker=worker,
                )
                stats.dead += 1
                return
            if outcome is Outcome.CHANNEL_UNAVAILABLE:
                until = now  # straight back, to another of the customer's channels
                reason = "channel_unavailable"
            else:
                until = now + self.backoff(row.attempts, result.retry_after)
                reason = "transient_failure"
            row.state = OutreachState.PENDING
            row.sent_at = None
            row.next_attempt_at = until
            row.claimed_by, row.lease_until = None, None
            record(
                session,
                row.id,
                DecisionKind.RETRY,
                reason,
                now,
                until=until,
                detail=result.detail,
                worker=worker,
            )
            stats.retried += 1


def mark_unreachable(session: Session, identity_id: int, now: datetime) -> None:
    identity = session.get(ChannelIdentity, identity_id)
    if identity is not None and identity.unreachable_at is None:
        identity.unreachable_at = now

"""The proactive worker process: the dispatch loop, periodic scans, and a health endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import asdict
from datetime import datetime, timedelta

from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from bot.db import session_scope
from bot.proactive.delivery import RasaDelivery
from bot.proactive.dispatcher import Approved, Dispatcher, DispatchStats, utc_now
from bot.proactive.outbox import pending_count
from bot.proactive.pacing import Pacer, RedisSlotBook
from bot.proactive.policy import Policy, load_policy
from bot.proactive.scans import run_scans
from bot.settings import Settings

logger = logging.getLogger(__name__)

# A loop that has not finished a cycle for this long is reported unhealthy.
STALL_AFTER = timedelta(minutes=2)


def scan_once(settings: Settings, policy: Policy, now: datetime | None = None) -> dict[str, int]:
    with session_scope(settings.database_url) as session:
        return run_scans(session, policy, now or utc_now())


class Worker:
    def __init__(self, settings: Settings, policy: Policy | None = None) -> None:
        self.settings = settings
        self.policy = policy or load_policy(settings.proactive_policy_path)
        self.delivery = RasaDelivery(
            settings.rasa_url,
            settings.rasa_api_token,
            timeout=self.policy.dispatcher.request_timeout.total_seconds(),
        )
        # Workers of one deployment share a platform's allowance instead of each taking it.
        self.shared_slots = (
            RedisSlotBook.from_url(settings.pacing_redis_url, settings.pacing_key_prefix)
            if settings.pacing_redis_url
            else None
        )
        self.dispatcher = Dispatcher(
            database_url=settings.database_url,
            policy=self.policy,
            delivery=self.delivery,
            tracker_url=settings.tracker_database_url or settings.database_url,
            pacer=Pacer(self.policy.platforms, slots=self.shared_slots),
        )
        if not settings.rasa_api_token:
            logger.error("HERALD_RASA_API_TOKEN is not set: Rasa will refuse every delivery")
        self.last_scan_at: datetime | None = None
        self.stopping = asyncio.Event()

    async def dispatch_forever(self) -> None:
        """Prepare the next batch while the last one is still being delivered.

        Deliveries are paced, so a batch takes a while; deciding the next one meanwhile
        keeps the pacer's queue full and the platform at its allowed rate. Every batch
        shares one pacer, so overlapping batches never send faster together.
        """
        idle = self.policy.dispatcher.poll_interval.total_seconds()
        in_flight: set[asyncio.Task[None]] = set()
        while not self.stopping.is_set():
            if len(in_flight) >= self.policy.dispatcher.batches_in_flight:
                _, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                approved, stats = await self.dispatcher.prepare()
            except (SQLAlchemyError, OSError) as error:
                logger.error("dispatch cycle failed, retrying shortly: %s", error)
                stats = None
            if stats is not None and approved:
                task = asyncio.create_task(self._deliver(approved, stats))
                in_flight.add(task)
            if stats is None or stats.claimed == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), idle)
        if in_flight:
            await asyncio.wait(in_flight)

    async def _deliver(self, approved: list[Approved], stats: DispatchStats) -> None:
        try:
            await self.dispatcher.deliver(approved, stats)
        except (SQLAlchemyError, OSError, RedisError) as error:
            # The rows stay claimed; another cycle takes them over once their lease ends.
            # (RedisError: the shared pacing is unreachable; sending unpaced could break a
            # platform's limit, so the batch waits for it instead.)
            logger.error("delivering a batch failed: %s", error)

    async def scan_forever(self) -> None:
        interval = self.policy.scans.interval.total_seconds()
        while self.policy.scans.enabled and not self.stopping.is_set():
            try:
                queued = await asyncio.to_thread(scan_once, self.settings, self.policy)
                self.last_scan_at = utc_now()
                logger.info("scans queued %d outreach rows", sum(queued.values()))
            except SQLAlchemyError as error:
                logger.error("scan failed, retrying next interval: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), interval)

    async def purge_forever(self) -> None:
        """Privacy: drop conversation events past the retention period, once a day."""
        from bot.privacy.retention import PURGE_INTERVAL, purge_once

        while not self.stopping.is_set():
            try:
                await asyncio.to_thread(purge_once, self.settings)
            except SQLAlchemyError as error:
                logger.error("retention purge failed, retrying next interval: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), PURGE_INTERVAL.total_seconds())

    async def health(self, request: web.Request) -> web.Response:
        last = self.dispatcher.health.last_cycle_at
        try:
            waiting = await asyncio.to_thread(self._pending)
        except SQLAlchemyError:
            return web.json_response({"status": "degraded", "database": "unreachable"}, status=503)
        stalled = last is None or utc_now() - last > STALL_AFTER
        body = {
            "status": "stalled" if stalled else "ok",
            "worker": self.dispatcher.worker_id,
            "last_cycle_at": last.isoformat() if last else None,
            "last_scan_at": self.last_scan_at.isoformat() if self.last_scan_at else None,
            "outreach_waiting": waiting,
            "totals": asdict(self.dispatcher.health.totals),
            # Per platform: messages sent and the most in any one second, as sent.
            "pacing": {
                platform.value: {
                    "sent": count,
                    "busiest_second": self.dispatcher.pacer.busiest_second.get(platform, 0),
                }
                for platform, count in self.dispatcher.pacer.sent.items()
            },
        }
        return web.json_response(body, status=503 if stalled else 200)

    def _pending(self) -> int:
        with session_scope(self.settings.database_url) as session:
            return pending_count(session)

    async def run(self, host: str, port: int | None) -> None:
        runner: web.AppRunner | None = None
        if port:
            app = web.Application()
            app.router.add_get("/health", self.health)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
        logger.info("proactive worker %s started", self.dispatcher.worker_id)
        try:
            await asyncio.gather(self.dispatch_forever(), self.scan_forever(), self.purge_forever())
        finally:
            await self.delivery.close()
            if self.shared_slots is not None:
                await self.shared_slots.close()
            if runner is not None:
                await runner.cleanup()
            logger.info("proactive worker %s stopped", self.dispatcher.worker_id)

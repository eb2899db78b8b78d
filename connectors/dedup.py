"""Remember which platform deliveries were handled, so a retried one is processed once."""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from typing import Any, Callable, Optional

logger = logging.getLogger(__name__)

# Slack retries for about an hour at most; Telegram re-sends an update until it gets a 200.
DEFAULT_TTL_SECONDS = 3600.0


def redis_client(host: str, port: int) -> Any:
    """A client that fails fast: a webhook must not hang while Redis is down."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Redis(
        host=host,
        port=port,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        retry=Retry(NoBackoff(), 0),
    )


class SeenDeliveries:
    """A set of delivery ids with a time limit, in memory or shared through Redis.

    With one Rasa process, memory is enough. With several replicas behind a load balancer
    (the Redis lock store setup), a retry can land on another replica, so the set lives in
    Redis there: `SET key 1 NX EX ttl` marks and checks in one step.
    """

    def __init__(
        self,
        namespace: str,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        max_entries: int = 100_000,
        redis: Optional[Any] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.namespace = namespace
        self.ttl = ttl
        self.max_entries = max_entries
        self._redis = redis
        self._clock = clock
        self._seen: "OrderedDict[str, float]" = OrderedDict()

    @classmethod
    def from_env(cls, namespace: str) -> "SeenDeliveries":
        """Redis when Rasa's lock store is Redis (several replicas), memory otherwise."""
        if os.environ.get("HERALD_LOCK_STORE") != "redis":
            return cls(namespace)
        try:
            client = redis_client(
                os.environ.get("HERALD_REDIS_HOST", "127.0.0.1"),
                int(os.environ.get("HERALD_REDIS_PORT", "6379")),
            )
        except (ImportError, ValueError) as error:
            logger.warning("deduplicating %s in memory: no Redis client (%s)", namespace, error)
            return cls(namespace)
        return cls(namespace, redis=client)

    async def first_time(self, delivery_id: str) -> bool:
        """True the first time an id is seen within the time limit, False for a repeat."""
        if self._redis is not None:
            try:
                key = f"herald:seen:{self.namespace}:{delivery_id}"
                return bool(await self._redis.set(key, 1, nx=True, ex=int(self.ttl)))
            except Exception as error:  # redis raises many types; fall back rather than drop
                logger.warning(
                    "Redis unavailable for %s dedup (%s)", self.namespace, type(error).__name__
                )
        return self._first_time_in_memory(delivery_id)

    async def forget(self, delivery_id: str) -> None:
        """Handling failed: let the platform's retry through."""
        self._seen.pop(delivery_id, None)
        if self._redis is not None:
            try:
                await self._redis.delete(f"herald:seen:{self.namespace}:{delivery_id}")
            except Exception as error:  # see first_time
                logger.warning(
                    "Redis unavailable for %s dedup (%s)", self.namespace, type(error).__name__
                )

    def _first_time_in_memory(self, delivery_id: str) -> bool:
        now = self._clock()
        while self._seen:
            oldest_id, seen_at = next(iter(self._seen.items()))
            if seen_at > now - self.ttl and len(self._seen) < self.max_entries:
                break
            del self._seen[oldest_id]
        if delivery_id in self._seen:
            return False
        self._seen[delivery_id] = now
        return True

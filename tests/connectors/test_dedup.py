"""A platform's retried delivery is handled once, in memory or across replicas via Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from connectors.dedup import SeenDeliveries, redis_client


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_an_id_is_new_once_until_its_time_limit_passes() -> None:
    clock = Clock()
    seen = SeenDeliveries("telegram", ttl=60, clock=clock)
    assert await seen.first_time("1001")
    assert not await seen.first_time("1001")
    assert await seen.first_time("1002")
    clock.now = 61
    assert await seen.first_time("1001")


async def test_forgetting_an_id_lets_the_retry_through() -> None:
    seen = SeenDeliveries("slack")
    assert await seen.first_time("Ev1")
    await seen.forget("Ev1")
    assert await seen.first_time("Ev1")


async def test_memory_stays_bounded() -> None:
    seen = SeenDeliveries("telegram", max_entries=100)
    for n in range(1000):
        assert await seen.first_time(str(n))
    assert len(seen._seen) <= 100
    assert not await seen.first_time("999")


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis(host="127.0.0.1", port=6379)
    yield client
    await client.aclose()


async def test_replicas_sharing_redis_handle_a_retry_once(redis: Redis) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    replica_a = SeenDeliveries(namespace, ttl=30, redis=redis)
    replica_b = SeenDeliveries(namespace, ttl=30, redis=redis)
    assert await replica_a.first_time("Ev42")
    assert not await replica_b.first_time("Ev42")
    await replica_b.forget("Ev42")
    assert await replica_a.first_time("Ev42")
    assert 0 < await redis.ttl(f"herald:seen:{namespace}:Ev42") <= 30


async def test_redis_down_falls_back_to_memory() -> None:
    unreachable = redis_client("127.0.0.1", 1)
    seen = SeenDeliveries("telegram", redis=unreachable)
    assert await seen.first_time("7")
    assert not await seen.first_time("7")
    await unreachable.aclose()


def test_lock_store_setting_chooses_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_LOCK_STORE", "in_memory")
    assert SeenDeliveries.from_env("slack")._redis is None
    monkeypatch.setenv("HERALD_LOCK_STORE", "redis")
    assert SeenDeliveries.from_env("slack")._redis is not None

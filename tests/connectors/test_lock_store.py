"""Rasa replicas sharing one Redis never serve one conversation at the same time."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import redis

from bot.settings import PROJECT_ROOT

RASA_PYTHON = PROJECT_ROOT / ".venv-rasa" / "bin" / "python"

# One "replica": a process of the Rasa runtime that serves `messages` messages of one
# conversation at once through the lock store, as Rasa's agent does, and logs when each
# one held the lock. The replicas start together once all have imported Rasa.
REPLICA = """
import asyncio, json, sys, time
import redis
from rasa.utils.endpoints import EndpointConfig
from connectors.lock_store import ReplicaSafeRedisLockStore

prefix, conversation, replicas, messages, log = sys.argv[1:6]
store = ReplicaSafeRedisLockStore(
    EndpointConfig(url="127.0.0.1", port=6379, key_prefix=prefix)
)
barrier = redis.Redis(host="127.0.0.1", port=6379, db=1)
barrier.incr(prefix + ":ready")
while int(barrier.get(prefix + ":ready")) < int(replicas):
    time.sleep(0.01)
held = []

async def serve(number):
    async with store.lock(conversation):
        start = time.monotonic_ns()
        await asyncio.sleep(0.002)  # the tracker is read, predicted on and saved here
        held.append((start, time.monotonic_ns(), number))

async def main():
    await asyncio.gather(*(serve(n) for n in range(int(messages))))

asyncio.run(main())
with open(log, "w") as out:
    json.dump(held, out)
"""


def test_concurrent_messages_of_one_conversation_hold_the_lock_one_at_a_time(
    tmp_path: Path,
) -> None:
    prefix = f"locktest{uuid.uuid4().hex[:10]}"
    replicas, messages = 4, 12
    logs = [tmp_path / f"replica-{i}.json" for i in range(replicas)]
    try:
        processes = [
            subprocess.Popen(
                [
                    str(RASA_PYTHON),
                    "-c",
                    REPLICA,
                    prefix,
                    "web:42",
                    str(replicas),
                    str(messages),
                    str(log),
                ],
                cwd=PROJECT_ROOT,
                env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"},
            )
            for log in logs
        ]
        for process in processes:
            assert process.wait(timeout=120) == 0
    finally:
        client = redis.Redis(host="127.0.0.1", port=6379, db=1)
        client.delete(f"{prefix}:ready", *client.keys(f"{prefix}:*"))

    held = sorted(interval for log in logs for interval in json.loads(log.read_text()))
    assert len(held) == replicas * messages, "every message was served"
    for (_, end, _), (start, _, _) in zip(held, held[1:], strict=False):
        assert start >= end, "two messages of one conversation held the lock at once"

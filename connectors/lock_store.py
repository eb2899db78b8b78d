"""Rasa's Redis lock store made safe for several replicas: every ticket change is atomic."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Callable, Optional, Text, TypeVar

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

Result = TypeVar("Result")

# How often a message waiting for its conversation checks whether its turn has come.
# Rasa polls once a second, which adds up to a second to every message of a burst.
POLL_SECONDS = 0.02


class ReplicaSafeRedisLockStore(RedisLockStore):
    """Rasa's ticket lock in Redis, with each read-change-write in one transaction.

    Rasa's own RedisLockStore reads a conversation's lock, changes it and writes it back in
    separate calls. Two replicas issuing tickets at the same moment can both get ticket 0
    and run one conversation concurrently; each then saves its tracker over the other's
    and events are lost (RasaHQ/rasa#9213). Here every change is a WATCH/MULTI
    transaction that starts again when another replica changed the lock meanwhile.
    """

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        options = endpoint_config.kwargs
        super().__init__(
            host=endpoint_config.url or "localhost",
            port=int(options.get("port") or 6379),
            db=int(options.get("db") or 1),
            username=options.get("username") or None,
            password=options.get("password") or None,
            use_ssl=bool(options.get("use_ssl", False)),
            key_prefix=options.get("key_prefix") or None,
        )

    def _change(self, conversation_id: Text, change: Callable[[TicketLock], Result]) -> Result:
        key = self.key_prefix + conversation_id
        with self.red.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    stored = pipe.get(key)
                    lock = (
                        TicketLock.from_dict(json.loads(stored))
                        if stored
                        else self.create_lock(conversation_id)
                    )
                    result = change(lock)
                    pipe.multi()
                    if lock.is_someone_waiting():
                        pipe.set(key, lock.dumps())
                    else:
                        pipe.delete(key)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        try:
            return self._change(conversation_id, lambda lock: lock.issue_ticket(lock_lifetime))
        except redis.RedisError as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

    def update_lock(self, conversation_id: Text) -> None:
        self._change(conversation_id, lambda lock: lock.remove_expired_tickets())

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number))

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        # finish_serving already deletes a lock nobody is waiting for, in the same step.
        self.finish_serving(conversation_id, ticket_number)

    async def _acquire_lock(
        self, conversation_id: Text, ticket: int, wait_time_in_seconds: float
    ) -> TicketLock:
        while True:
            lock: Optional[TicketLock] = self.get_lock(conversation_id)
            if not lock:
                # Our own ticket expired and the lock went with it.
                break
            # is_locked skips expired tickets (a replica killed while serving this
            # conversation), so there is no need to write the lock back on every poll.
            if not lock.is_locked(ticket):
                return lock
            await asyncio.sleep(min(wait_time_in_seconds, POLL_SECONDS))
        raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")

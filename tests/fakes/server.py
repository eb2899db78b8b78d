"""A local HTTP server standing in for an outside platform, recording every call it gets."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web


@dataclass(frozen=True)
class Call:
    """One API call as the platform saw it: method, decoded parameters, arrival time."""

    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class FakeServer:
    """Runs an aiohttp app on 127.0.0.1, in the test's event loop or in a thread of its own.

    Unit tests use `async with`; the end-to-end stack (sync fixtures, the server must keep
    answering while the test blocks on HTTP calls) uses `start_in_thread()`/`stop()`.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def build_app(self) -> web.Application:
        raise NotImplementedError

    # --- recording -----------------------------------------------------------------------

    def record(self, method: str, params: dict[str, Any]) -> Call:
        call = Call(method, params)
        with self._lock:
            self._calls.append(call)
        return call

    def calls(self, method: str | None = None, **where: Any) -> list[Call]:
        """Recorded calls, optionally of one method whose params match `where`."""
        with self._lock:
            calls = list(self._calls)
        return [
            c
            for c in calls
            if (method is None or c.method == method)
            and all(c.params.get(k) == v for k, v in where.items())
        ]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05
    ) -> Any:
        """Block until predicate() is truthy (for sync tests against the threaded server)."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout:.0f}s")
            time.sleep(interval)

    async def wait_for_async(
        self, predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.02
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout:.0f}s")
            await asyncio.sleep(interval)

    # --- running -------------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start_in_thread(self) -> Self:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as error:  # surfaced to the caller below
                errors.append(error)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

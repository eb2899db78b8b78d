"""Resident memory of a stack's processes, sampled in the background while load runs."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Mapping
from types import TracebackType

import psutil

MB = 1024 * 1024


def tree_rss(pid: int) -> int:
    """Bytes resident in a process and its children (nginx's workers, say); 0 once gone."""
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in family:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


class MemorySampler:
    """Samples every process every `interval` seconds; keeps the peak and the last value."""

    def __init__(
        self, processes: Mapping[str, subprocess.Popen[bytes]], interval: float = 0.25
    ) -> None:
        self.pids = {name: process.pid for name, process in processes.items()}
        self.interval = interval
        self.peak_bytes: dict[str, int] = dict.fromkeys(self.pids, 0)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def sample(self) -> dict[str, int]:
        current = {name: tree_rss(pid) for name, pid in self.pids.items()}
        for name, rss in current.items():
            self.peak_bytes[name] = max(self.peak_bytes[name], rss)
        self.samples += 1
        return current

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> MemorySampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def peak_mb(self) -> dict[str, float]:
        return {name: round(rss / MB, 1) for name, rss in self.peak_bytes.items()}

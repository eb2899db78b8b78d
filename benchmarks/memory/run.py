"""Peak resident memory of every process of Herald embedded, Herald scale-out and plain Rasa.

Each system is started fresh, warmed up, then loaded with 50 simulated customers over REST
and then over socket.io while every process (with its children) is sampled four times a
second. Writes the `## Memory` section of docs/benchmarks.md, docs/benchmarks/memory.json
and docs/benchmarks/memory.png.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.conversation.load import (  # noqa: E402
    LoadSettings,
    run_rest_load,
    run_socketio_load,
)
from benchmarks.conversation.report import table  # noqa: E402
from benchmarks.conversation.run import warm_up  # noqa: E402
from benchmarks.conversation.systems import (  # noqa: E402
    RunningSystem,
    herald_embedded,
    herald_scale_out,
    plain_rasa,
)
from benchmarks.memory.sampler import MB, MemorySampler  # noqa: E402
from benchmarks.results import RAW_DIR, machine, write_raw, write_section  # noqa: E402
from bot.stack import train_model  # noqa: E402


def measure_system(system: RunningSystem, settings: LoadSettings) -> dict[str, Any]:
    warm_up(system)
    with MemorySampler(system.processes) as sampler:
        idle = {name: round(rss / MB, 1) for name, rss in sampler.sample().items()}
        rest = run_rest_load(system.url, system.take_customers(settings.customers), settings)
        socketio = run_socketio_load(
            system.url, system.take_customers(settings.customers), settings
        )
    peak = sampler.peak_mb()
    return {
        "system": system.name,
        "processes": {name: {"idle_mb": idle[name], "peak_mb": peak[name]} for name in peak},
        "total_idle_mb": round(sum(idle.values()), 1),
        "total_peak_mb": round(sum(peak.values()), 1),
        "samples": sampler.samples,
        "load": {"rest": rest.summary(), "socketio": socketio.summary()},
    }


def plot(raw: dict[str, Any], path: Path) -> None:
    labels: list[str] = []
    idle: list[float] = []
    peak: list[float] = []
    for entry in raw["results"]:
        for name, values in entry["processes"].items():
            labels.append(f"{entry['system']}: {name}")
            idle.append(values["idle_mb"])
            peak.append(values["peak_mb"])
    figure, axes = plt.subplots(figsize=(8, 0.32 * len(labels) + 1.2))
    positions = list(range(len(labels)))[::-1]
    axes.barh(positions, peak, color="#c0504d", label="peak under load")
    axes.barh(positions, idle, color="#4f81bd", label="after start-up")
    axes.set_yticks(positions, labels, fontsize=7)
    axes.set_xlabel("resident memory (MB)")
    axes.grid(True, axis="x", alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(raw: dict[str, Any]) -> str:
    box = raw["machine"]
    settings = raw["settings"]
    rows = []
    for entry in raw["results"]:
        for name, values in entry["processes"].items():
            rows.append(
                [entry["system"], name, f"{values['idle_mb']:,.0f}", f"{values['peak_mb']:,.0f}"]
            )
        rows.append(
            [
                entry["system"],
                "**total**",
                f"**{entry['total_idle_mb']:,.0f}**",
                f"**{entry['total_peak_mb']:,.0f}**",
            ]
        )
    return "\n".join(
        [
            f"Measured by `scripts/bench.sh memory` on {box['nproc']} CPU cores, commit "
            f"`{box['commit']}`. Each system was started fresh and warmed up; then "
            f"{settings['customers']} simulated customers talked to it over REST for "
            f"{settings['seconds']:.0f} s and over socket.io for as long, while the resident "
            "memory (RSS) of each process, children included (nginx's workers), was sampled "
            "four times a second. PostgreSQL and Redis are shared services of the machine "
            "and not counted.",
            "",
            table(["system", "process", "after start-up (MB)", "peak under load (MB)"], rows),
            "",
            "![resident memory per process](benchmarks/memory.png)",
            "",
            "Nearly all of it is Rasa: each replica loads TensorFlow and the model (the "
            "scale-out stack pays that once per replica). The action servers, the app "
            "server, the proactive workers and nginx are small next to it.",
            "",
            "Raw numbers: [`benchmarks/memory.json`](benchmarks/memory.json).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0, help="per channel")
    parser.add_argument("--model", type=Path, help="a trained Herald model (default: train)")
    parser.add_argument("--no-write", action="store_true", help="print, do not write docs/")
    args = parser.parse_args()
    settings = LoadSettings(customers=args.customers, seconds=args.seconds, warmup_seconds=3)
    started = time.monotonic()
    raw: dict[str, Any] = {
        "machine": machine(),
        "settings": {"customers": args.customers, "seconds": args.seconds},
        "results": [],
    }
    model = args.model or train_model()
    with tempfile.TemporaryDirectory(prefix="herald-bench-memory-") as work:
        starts: list[Callable[[], AbstractContextManager[RunningSystem]]] = [
            partial(herald_embedded, Path(work), model),
            partial(herald_scale_out, Path(work), model, replicas=2),
            partial(plain_rasa, Path(work)),
        ]
        for start in starts:
            with start() as system:
                print(f"{system.name}: under load…", flush=True)
                entry = measure_system(system, settings)
                raw["results"].append(entry)
                print(
                    f"  {entry['total_idle_mb']:,.0f} MB after start-up, "
                    f"{entry['total_peak_mb']:,.0f} MB peak: "
                    + ", ".join(f"{n} {v['peak_mb']:,.0f}" for n, v in entry["processes"].items()),
                    flush=True,
                )
    raw["total_seconds"] = round(time.monotonic() - started, 1)
    if args.no_write:
        print(raw)
        return
    write_raw("memory", raw)
    plot(raw, RAW_DIR / "memory.png")
    write_section("Memory", markdown(raw))
    print(f"wrote docs/benchmarks.md (## Memory) in {raw['total_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()

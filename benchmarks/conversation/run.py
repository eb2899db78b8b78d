"""Conversation latency and throughput, Herald next to plain Rasa, in one run on one machine.

Simulated customers (10, 50, 200 at once) hold a support conversation (greeting, their own
order, its invoice, an outage question, thanks) over REST (Locust) and socket.io (an asyncio
client) against Herald embedded, Herald scale-out with one and two Rasa replicas, and plain
Rasa 3.6 on its `rasa init` project. Writes the `## Conversations` section of
docs/benchmarks.md, docs/benchmarks/conversation.json and two plots.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
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
from benchmarks.conversation.report import ms, table  # noqa: E402
from benchmarks.conversation.script import STEPS  # noqa: E402
from benchmarks.conversation.systems import (  # noqa: E402
    RunningSystem,
    herald_embedded,
    herald_scale_out,
    plain_rasa,
)
from benchmarks.results import RAW_DIR, machine, write_raw, write_section  # noqa: E402
from bot.stack import train_model  # noqa: E402

SystemFactory = Callable[[Path, Path], AbstractContextManager[RunningSystem]]

# Targets from the issue, for Herald embedded with 10 customers at once.
TARGET_P95_MS = 300.0
TARGET_MESSAGES_PER_SECOND = 25.0
HEADERS = ["system", "channel", "customers", "msg/s", "p50 ms", "p95 ms", "p99 ms", "errors"]


def systems(only: set[str]) -> Iterator[tuple[str, SystemFactory, tuple[str, ...]]]:
    """(key, how to start it, channels measured) for each system, in the order they run."""
    plan: list[tuple[str, SystemFactory, tuple[str, ...]]] = [
        ("embedded", herald_embedded, ("rest", "socketio")),
        ("rasa", lambda work, _model: plain_rasa(work), ("rest", "socketio")),
        # One replica only to compare throughput with two: REST is enough for that.
        ("scale-1", lambda work, model: herald_scale_out(work, model, 1), ("rest",)),
        ("scale-2", lambda work, model: herald_scale_out(work, model, 2), ("rest", "socketio")),
    ]
    for key, factory, channels in plan:
        if not only or key in only:
            yield key, factory, channels


def warm_up(system: RunningSystem) -> None:
    """One conversation on each channel first: the first predictions build TensorFlow graphs."""
    customers = system.take_customers(1)
    settings = LoadSettings(customers=1, seconds=len(STEPS) * 0.6, warmup_seconds=0)
    run_rest_load(system.url, customers, settings)
    run_socketio_load(system.url, customers, LoadSettings(customers=1, seconds=1, warmup_seconds=0))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(n) for n in args.customers.split(",")]
    only = set(args.systems.split(",")) if args.systems else set()
    raw: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "seconds": args.seconds,
            "warmup_seconds": args.warmup,
            "think_seconds": args.think,
            "customers": counts,
            "script": [text for _, text in STEPS],
        },
        "results": [],
    }
    if args.model:
        model = args.model
    else:
        print("training the Herald model if data or config changed…", flush=True)
        model = train_model()
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as work:
        for key, factory, channels in systems(only):
            started = time.monotonic()
            print(f"starting {key}…", flush=True)
            with factory(Path(work), model) as system:
                print(f"  up in {time.monotonic() - started:.0f} s", flush=True)
                warm_up(system)
                for channel in channels:
                    for count in counts:
                        settings = LoadSettings(
                            customers=count,
                            seconds=args.seconds,
                            warmup_seconds=args.warmup,
                            think_seconds=args.think,
                        )
                        customers = system.take_customers(count)
                        run = run_rest_load if channel == "rest" else run_socketio_load
                        summary = run(system.url, customers, settings).summary()
                        summary.update(
                            system=system.name, key=key, channel=channel, replicas=system.replicas
                        )
                        raw["results"].append(summary)
                        print(
                            f"  {channel:8} {count:4} customers: "
                            f"{summary['messages_per_second']:6.1f} msg/s, "
                            f"p50 {ms(summary['p50_ms'])} ms, p95 {ms(summary['p95_ms'])} ms, "
                            f"p99 {ms(summary['p99_ms'])} ms, errors {summary['errors']}",
                            flush=True,
                        )
    return raw


def result(raw: dict[str, Any], key: str, channel: str, customers: int) -> dict[str, Any] | None:
    return next(
        (
            r
            for r in raw["results"]
            if r["key"] == key and r["channel"] == channel and r["customers"] == customers
        ),
        None,
    )


def plot(raw: dict[str, Any], metric: str, label: str, path: Path, log: bool) -> None:
    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in raw["results"]:
        if r[metric] is not None:
            series.setdefault((r["system"], r["channel"]), []).append((r["customers"], r[metric]))
    for (system, channel), points in series.items():
        points.sort()
        style = "-" if channel == "rest" else "--"
        axes.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            style,
            marker="o",
            label=f"{system}, {'REST' if channel == 'rest' else 'socket.io'}",
        )
    axes.set_xscale("log")
    if log:
        axes.set_yscale("log")
    counts = raw["settings"]["customers"]
    axes.set_xticks(counts, [str(c) for c in counts])
    axes.set_xlabel("customers talking at once")
    axes.set_ylabel(label)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(raw: dict[str, Any]) -> str:
    settings = raw["settings"]
    box = raw["machine"]
    rows = [
        [
            r["system"],
            "REST" if r["channel"] == "rest" else "socket.io",
            str(r["customers"]),
            f"{r['messages_per_second']:.1f}",
            ms(r["p50_ms"]),
            ms(r["p95_ms"]),
            ms(r["p99_ms"]),
            str(r["errors"]),
        ]
        for r in raw["results"]
    ]
    lines = [
        f"Measured by `scripts/bench.sh conversation` on {box['nproc']} CPU cores "
        f"({box['cpu']}), commit `{box['commit']}`; 1-minute load average when it started: "
        f"{box['load_average_1m']}. Every system ran in the same run on the same machine, "
        "one after the other.",
        "",
        "Each simulated customer holds a support conversation, then starts it again: "
        + ", ".join(f"“{text}”" for text in settings["script"])
        + f". It sends its next message {settings['think_seconds']} s after the reply "
        f"(a short, stress-test pause). Each run lasts {settings['warmup_seconds']:.0f} s of "
        f"warm-up plus {settings['seconds']:.0f} s measured; latency is from sending a "
        "message to the reply (REST: the whole reply; socket.io: its first message), and "
        "messages per second count replies received in the measured window.",
        "",
        table(
            ["system", "channel", "customers", "msg/s", "p50 ms", "p95 ms", "p99 ms", "errors"],
            rows,
        ),
        "",
        "![p95 latency](benchmarks/conversation_latency.png)",
        "![throughput](benchmarks/conversation_throughput.png)",
        "",
    ]
    lines += targets(raw)
    lines += [
        "",
        "What runs where:",
        "",
        "- **Herald embedded** is `make run`'s stack: SQLite for our data and Rasa's tracker "
        "store, the in-memory lock store, one Rasa, one action server, one proactive "
        "worker. Its custom actions read the customer's order, invoice and service status "
        "from the database.",
        "- **Herald scale-out** is `make run-scale`'s stack: PostgreSQL for both, the Redis "
        "lock store, nginx in front of 1 or 2 Rasa replicas and of 2 action servers, and "
        "2 proactive workers; socket.io goes through nginx too.",
        "- **plain Rasa 3.6** is `rasa init --no-prompt` as shipped (its default pipeline, "
        "in-memory tracker store, `rasa run --enable-api` and `rasa run actions`), with the "
        "socket.io channel switched on. Its starter project has no custom actions, so it "
        "answers the same messages without touching a database: it is the floor of what "
        "Rasa itself costs, not a like-for-like bot.",
        "- Herald's Rasa runs as `make run` starts it, through `rasa_components/launcher.py`: "
        "with our fixes for six of Rasa's per-message hot paths and its loaded model frozen "
        "out of the garbage collector (README, Speed). Plain Rasa runs as shipped.",
        "- Herald's proactive workers run with their periodic scans off, so that no burst "
        "of renewal or maintenance notices competes with the measured conversations.",
        "- The load generators (Locust, the socket.io client) run on the same cores as the "
        "servers, and so do PostgreSQL, Redis and nginx.",
        "",
        f"Raw numbers, per conversation step too: [`{RAW_DIR.name}/conversation.json`]"
        f"(benchmarks/conversation.json).",
    ]
    return "\n".join(lines)


def targets(raw: dict[str, Any]) -> list[str]:
    lines = ["Targets:", ""]
    for channel, name in (("rest", "REST"), ("socketio", "socket.io")):
        embedded = result(raw, "embedded", channel, 10)
        if embedded and embedded["p95_ms"] is not None:
            met = (
                embedded["p95_ms"] < TARGET_P95_MS
                and embedded["messages_per_second"] >= TARGET_MESSAGES_PER_SECOND
            )
            lines.append(
                f"- Herald embedded, 10 customers, {name}: p95 {ms(embedded['p95_ms'])} ms "
                f"(target < {TARGET_P95_MS:.0f}), {embedded['messages_per_second']:.1f} msg/s "
                f"(target ≥ {TARGET_MESSAGES_PER_SECOND:.0f}): "
                + ("met." if met else "**missed**.")
            )
    for count in raw["settings"]["customers"]:
        one = result(raw, "scale-1", "rest", count)
        two = result(raw, "scale-2", "rest", count)
        if one and two:
            before, after = one["messages_per_second"], two["messages_per_second"]
            ratio = after / before if before else 0.0
            lines.append(
                f"- Scale-out, {count} customers, REST: {before:.1f} msg/s "
                f"with 1 replica, {after:.1f} with 2 (×{ratio:.2f}): "
                + ("throughput rises with replicas." if ratio > 1.05 else "**no gain**.")
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds first")
    parser.add_argument("--think", type=float, default=0.25, help="pause before next message")
    parser.add_argument("--customers", default="10,50,200", help="comma-separated counts")
    parser.add_argument(
        "--systems", default="", help="subset of embedded,rasa,scale-1,scale-2 (default all)"
    )
    parser.add_argument("--model", type=Path, help="a trained Herald model (default: train)")
    parser.add_argument("--no-write", action="store_true", help="print, do not write docs/")
    args = parser.parse_args()
    started = time.monotonic()
    raw = measure(args)
    raw["total_seconds"] = round(time.monotonic() - started, 1)
    if args.no_write:
        print(raw)
        return
    write_raw("conversation", raw)
    plot(raw, "p95_ms", "p95 latency (ms)", RAW_DIR / "conversation_latency.png", log=True)
    plot(
        raw,
        "messages_per_second",
        "messages per second",
        RAW_DIR / "conversation_throughput.png",
        log=False,
    )
    write_section("Conversations", markdown(raw))
    print(f"wrote docs/benchmarks.md (## Conversations) in {raw['total_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()

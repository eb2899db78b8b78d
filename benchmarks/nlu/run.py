"""NLU benchmark: train (timed), load (timed), evaluate on the held-out split and its typo variant.

Writes the `## NLU` section of docs/benchmarks.md and the raw numbers to docs/benchmarks/nlu.json.
Run it with `scripts/bench.sh nlu` (or `make bench` for every benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from benchmarks.nlu.typos import DEFAULT_SEED, read_examples, write_typo_variant
from benchmarks.results import machine as machine_facts
from benchmarks.results import write_raw, write_section
from bot.stack import RASA_PROJECT

ROOT = Path(__file__).resolve().parents[2]
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
HELDOUT = ROOT / "benchmarks" / "nlu" / "heldout"
EVALUATOR = ROOT / "benchmarks" / "nlu" / "rasa_eval.py"
WORK = ROOT / "var" / "bench" / "nlu"
TITLE = "NLU"

TARGETS = {"macro_f1": 0.95, "typo_macro_f1": 0.90, "train_seconds": 300.0, "load_seconds": 15.0}
LOAD_RUNS = 3
LOAD_MESSAGE = "where is order 10042"

# A fresh Rasa process: import Rasa, load the model, answer one message. What `rasa run`
# pays before its first reply, measured in its parts.
LOAD_PROBE = """
import asyncio, json, sys, time
started = time.perf_counter()
from rasa.core.agent import Agent
imported = time.perf_counter()
agent = Agent.load(model_path=sys.argv[1])
loaded = time.perf_counter()
parsed = asyncio.run(agent.parse_message(sys.argv[2]))
answered = time.perf_counter()
print(json.dumps({"import_seconds": imported - started, "load_seconds": loaded - imported,
                  "first_parse_seconds": answered - loaded,
                  "intent": parsed["intent"]["name"],
                  "entities": [[e["entity"], e["value"]] for e in parsed["entities"]]}))
"""


def rasa_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    # No shared training cache: every timed training starts cold and leaves others' cache alone.
    env["RASA_MAX_CACHE_SIZE"] = "0"
    return env


def load_average() -> float:
    return os.getloadavg()[0]


def timed(command: list[str], log: Path) -> dict[str, Any]:
    """Run a command to completion; wall time, CPU time of the process tree, load around it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = load_average()
    started = time.perf_counter()
    with log.open("w") as out:
        subprocess.run(
            command, cwd=ROOT, env=rasa_env(), stdout=out, stderr=subprocess.STDOUT, check=True
        )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "load_before": load_before,
        "load_after": load_average(),
        "components": component_seconds(log),
    }


ANSI = re.compile(r"\x1b\[[0-9;]*m")
COMPONENT_LOG = re.compile(
    r"^(\S+ \S+) INFO\s+rasa\.engine\.training\.hooks\s+- (Starting to train|Finished training)"
    r" component '(\w+)'"
)


def component_seconds(log: Path) -> dict[str, float]:
    """Seconds per trained component, from the timestamps of Rasa's training log."""
    started: dict[str, datetime] = {}
    seconds: dict[str, float] = {}
    text = ANSI.sub("", log.read_text(errors="replace")).replace("\r", "\n")
    for line in text.splitlines():
        match = COMPONENT_LOG.match(line)
        if not match:
            continue
        when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
        name = match.group(3)
        if match.group(2) == "Starting to train":
            started[name] = when
        elif name in started:
            seconds[name] = seconds.get(name, 0.0) + (when - started.pop(name)).total_seconds()
    return seconds


def train(work: Path, full: bool) -> dict[str, Any]:
    nlu = timed(
        [
            str(RASA),
            "train",
            "nlu",
            "--config",
            "config.yml",
            "--nlu",
            "data/nlu",
            "--out",
            str(work),
            "--fixed-model-name",
            "nlu",
        ],
        work / "train-nlu.log",
    )
    result = {"nlu": nlu}
    if full:
        result["full"] = timed(
            [
                str(RASA),
                "train",
                *RASA_PROJECT,
                "--out",
                str(work),
                "--fixed-model-name",
                "full",
                "--force",
            ],
            work / "train-full.log",
        )
    return result


def measure_load(model: Path) -> dict[str, Any]:
    runs = []
    for _ in range(LOAD_RUNS):
        started = time.perf_counter()
        done = subprocess.run(
            [str(RASA_PYTHON), "-c", LOAD_PROBE, str(model), LOAD_MESSAGE],
            cwd=ROOT,
            env=rasa_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        run = json.loads(done.stdout.strip().splitlines()[-1])
        run["process_seconds"] = time.perf_counter() - started
        runs.append(run)
    return {
        "model": model.name,
        "message": LOAD_MESSAGE,
        "runs": runs,
        "median_load_seconds": statistics.median(r["load_seconds"] for r in runs),
        "median_process_seconds": statistics.median(r["process_seconds"] for r in runs),
        "load_average": load_average(),
    }


def evaluate(model: Path, typo_file: Path, work: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            str(RASA_PYTHON),
            str(EVALUATOR),
            "--model",
            str(model),
            "--out",
            str(work / "eval"),
            "--dataset",
            f"heldout={HELDOUT}",
            "--dataset",
            f"heldout_typo={typo_file}",
        ],
        cwd=ROOT,
        env=rasa_env(),
        capture_output=True,
        text=True,
    )
    (work / "eval.log").write_text(done.stderr)
    if done.returncode != 0:
        sys.exit(f"evaluation failed, see {work / 'eval.log'}:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def confusions(dataset: dict[str, Any]) -> Counter[tuple[str, str]]:
    return Counter(
        (error["intent"], error["intent_prediction"]["name"]) for error in dataset["intent_errors"]
    )


def machine() -> dict[str, Any]:
    rasa_version = subprocess.run(
        [str(RASA_PYTHON), "-c", "import importlib.metadata as m; print(m.version('rasa'))"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {**machine_facts(), "rasa": rasa_version}


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s" if seconds >= 60 else f"{seconds:.1f} s"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def markdown(raw: dict[str, Any]) -> str:
    held = raw["evaluation"]["datasets"]["heldout"]
    typo = raw["evaluation"]["datasets"]["heldout_typo"]
    held_f1 = held["intent_report"]["macro avg"]["f1-score"]
    typo_f1 = typo["intent_report"]["macro avg"]["f1-score"]
    training = raw["training"]
    load = raw["load"]
    m = raw["machine"]
    lines = [
        f"Measured {raw['date']} on {m['nproc']} × {m['cpu']} (load average "
        f"{training['nlu']['load_before']:.1f} when training started: the machine is shared, "
        f"so times are upper bounds), Rasa {m['rasa']}, commit {m['commit']}. "
        "`scripts/bench.sh nlu` rewrites this section; every number is also in "
        "[benchmarks/nlu.json](benchmarks/nlu.json).",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| intent macro-F1, held-out split ({held['messages']} messages, "
        f"{raw['intents']} intents) | {held_f1:.3f} | ≥ {TARGETS['macro_f1']} "
        f"{verdict(held_f1 >= TARGETS['macro_f1'])} |",
        f"| intent macro-F1, same split with one typo per message | {typo_f1:.3f} | "
        f"≥ {TARGETS['typo_macro_f1']} {verdict(typo_f1 >= TARGETS['typo_macro_f1'])} |",
        f"| intent accuracy, held-out / with typos | {held['intent_report']['accuracy']:.3f} / "
        f"{typo['intent_report']['accuracy']:.3f} | |",
        f'| below the fallback threshold ("Sorry, I didn\'t quite get that"), held-out / '
        f"with typos | {held['fallback_rate']:.1%} / {typo['fallback_rate']:.1%} | |",
    ]
    if "full" in training:
        full = training["full"]["wall_seconds"]
        lines.append(
            f"| full model training, `rasa train` (NLU + dialogue), cold cache | {minutes(full)} "
            f"(CPU {minutes(training['full']['cpu_seconds'])}) | < 5 min "
            f"{verdict(full < TARGETS['train_seconds'])} |"
        )
    lines += [
        f"| NLU model training, `rasa train nlu`, cold cache | "
        f"{minutes(training['nlu']['wall_seconds'])} "
        f"(CPU {minutes(training['nlu']['cpu_seconds'])}) | |",
        f"| model load, `Agent.load` of the {'full' if 'full' in training else 'NLU'} model "
        f"(median of {LOAD_RUNS} fresh processes) | {load['median_load_seconds']:.1f} s | "
        f"< 15 s {verdict(load['median_load_seconds'] < TARGETS['load_seconds'])} |",
        f"| new process to first parsed message (imports + load + parse) | "
        f"{load['median_process_seconds']:.1f} s | |",
        "",
        "Entities, held-out split. *Delivered* is what the bot receives after every extractor "
        "and the synonym mapper (the right entity with the right normalised value); the "
        "extractor columns are `rasa test nlu`'s token-level F1 per extractor.",
        "",
    ]
    extractors = sorted(held["extractor_reports"])
    lines.append(
        "| entity | support | delivered P / R / F1 | "
        + " | ".join(f"{e} F1" for e in extractors)
        + " | delivered F1 with typos |"
    )
    lines.append("|---|---|---|" + "---|" * len(extractors) + "---|")
    for entity, score in held["entity_values"].items():
        per_extractor = []
        for extractor in extractors:
            report = held["extractor_reports"][extractor] or {}
            value = report.get(entity, {}).get("f1-score")
            per_extractor.append("–" if value is None else f"{value:.3f}")
        typo_score = typo["entity_values"].get(entity, {}).get("f1-score")
        lines.append(
            f"| {entity} | {score['support']} | {score['precision']:.3f} / "
            f"{score['recall']:.3f} / {score['f1-score']:.3f} | "
            + " | ".join(per_extractor)
            + f" | {'–' if typo_score is None else f'{typo_score:.3f}'} |"
        )
    held_confusions = confusions(held)
    typo_confusions = confusions(typo)
    worst = sorted(
        set(held_confusions) | set(typo_confusions),
        key=lambda p: (-(held_confusions[p] + typo_confusions[p]), p),
    )[:10]
    lines += [
        "",
        "Worst confusions (messages of the first intent taken for the second):",
        "",
        "| intent | taken for | held-out | with typos |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {a} | {b} | {held_confusions[(a, b)]} | {typo_confusions[(a, b)]} |" for a, b in worst
    ]
    components = training.get("full", training["nlu"])["components"]
    slowest = sorted(components.items(), key=lambda kv: -kv[1])[:4]
    lines += [
        "",
        "Where training time goes: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in slowest)
        + " (from Rasa's training log, one-second resolution).",
        "",
        "How it is measured: the NLU model is trained from `data/nlu` with `config.yml`; "
        "the held-out split (`benchmarks/nlu/heldout/`, never used for training) is evaluated "
        "with Rasa's own `rasa test nlu` evaluation, and again after "
        f"`benchmarks/nlu/typos.py` misspells one word of four or more letters per message "
        f"(outside entities; a swapped, dropped, doubled or neighbouring-key letter, seed "
        f"{raw['typo_seed']}, {raw['typo_changed']} of {held['messages']} messages changed). "
        "Both trainings start with an empty Rasa cache. Load time is measured in a fresh "
        "`.venv-rasa` Python process per run.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--no-full",
        action="store_true",
        help="skip training the full model (NLU + dialogue); load the NLU model",
    )
    args = parser.parse_args()

    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    heldout_files = sorted(HELDOUT.glob("*.yml"))
    typo_file = WORK / "heldout_typo.yml"
    changed = write_typo_variant(heldout_files, typo_file, DEFAULT_SEED)

    print("training (cold cache)…", flush=True)
    training = train(WORK, full=not args.no_full)
    model = WORK / ("nlu.tar.gz" if args.no_full else "full.tar.gz")
    print("measuring load time…", flush=True)
    load = measure_load(model)
    print("evaluating…", flush=True)
    evaluation = evaluate(WORK / "nlu.tar.gz", typo_file, WORK)

    raw = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "config": yaml.safe_load((ROOT / "config.yml").read_text()),
        "intents": len(read_examples(heldout_files)),
        "typo_seed": DEFAULT_SEED,
        "typo_changed": changed,
        "targets": TARGETS,
        "training": training,
        "load": load,
        "evaluation": evaluation,
    }
    write_raw("nlu", raw)
    body = markdown(raw)
    write_section(TITLE, body)
    print(body)


if __name__ == "__main__":
    main()

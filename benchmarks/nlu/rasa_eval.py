"""Evaluate a trained Rasa model on NLU test sets in one process (runs in .venv-rasa).

Loads the model once, then for every test set runs Rasa's own `rasa test nlu` evaluation
(`rasa.nlu.test.run_evaluation`, the function the CLI calls) into its own directory, and
adds what those reports leave out but a customer notices: how often the FallbackClassifier
would answer "sorry, I didn't get that" (Rasa's evaluation undoes fallback predictions), and
whether each entity reaches the bot with the right value after every extractor and the
synonym mapper. Prints one JSON document on stdout.

Usage: rasa_eval.py --model M --out DIR [--dataset NAME=PATH ...] [--probe TEXT ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")

FALLBACK_INTENT = "nlu_fallback"


def _entity_key(entity: dict[str, Any]) -> tuple[str, str]:
    return entity["entity"], str(entity.get("value", "")).strip().lower()


def _value_scores(pairs: list[tuple[set[tuple[str, str]], set[tuple[str, str]]]]) -> dict:
    """Precision, recall and F1 per entity type over (gold, predicted) value sets."""
    counts: dict[str, Counter[str]] = {}
    for gold, predicted in pairs:
        for entity, _ in gold | predicted:
            counts.setdefault(entity, Counter())
        for entity, _ in gold & predicted:
            counts[entity]["tp"] += 1
        for entity, _ in predicted - gold:
            counts[entity]["fp"] += 1
        for entity, _ in gold - predicted:
            counts[entity]["fn"] += 1
    scores = {}
    for entity, c in sorted(counts.items()):
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[entity] = {
            "precision": precision,
            "recall": recall,
            "f1-score": f1,
            "support": c["tp"] + c["fn"],
            "false_positives": c["fp"],
        }
    return scores


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _extractor_reports(out: Path) -> dict[str, Any]:
    """`rasa test nlu`'s entity report of every extractor, by extractor name."""
    return {
        report.name.removesuffix("_report.json"): _read_json(report)
        for report in sorted(out.glob("*_report.json"))
        if report.name not in ("intent_report.json", "response_selection_report.json")
    }


async def _evaluate(processor: Any, name: str, data: Path, out: Path) -> dict[str, Any]:
    from rasa.core.channels import UserMessage
    from rasa.nlu.test import run_evaluation
    from rasa.shared.nlu.training_data.loading import load_data

    started = time.perf_counter()
    await run_evaluation(
        str(data),
        processor,
        output_directory=str(out),
        errors=True,
        disable_plotting=True,
        report_as_dict=True,
    )
    evaluated = time.perf_counter() - started

    fallbacks = 0
    pairs = []
    misses = []
    examples = load_data(str(data)).nlu_examples
    for example in examples:
        parsed = await processor.parse_message(UserMessage(text=example.get("text")))
        if parsed["intent"].get("name") == FALLBACK_INTENT:
            fallbacks += 1
        gold = {_entity_key(e) for e in example.get("entities") or []}
        predicted = {_entity_key(e) for e in parsed.get("entities") or []}
        pairs.append((gold, predicted))
        if gold != predicted:
            misses.append(
                {
                    "text": example.get("text"),
                    "missing": sorted(gold - predicted),
                    "extra": sorted(predicted - gold),
                }
            )

    return {
        "name": name,
        "data": str(data),
        "messages": len(examples),
        "evaluation_seconds": evaluated,
        "intent_report": _read_json(out / "intent_report.json"),
        "intent_errors": _read_json(out / "intent_errors.json") or [],
        "extractor_reports": _extractor_reports(out),
        "fallback_rate": fallbacks / len(examples) if examples else 0.0,
        "entity_values": _value_scores(pairs),
        "entity_value_errors": misses,
    }


async def _probe(processor: Any, texts: list[str]) -> list[dict[str, Any]]:
    from rasa.core.channels import UserMessage

    results = []
    for text in texts:
        parsed = await processor.parse_message(UserMessage(text=text))
        results.append(
            {
                "text": text,
                "intent": parsed["intent"].get("name"),
                "confidence": parsed["intent"].get("confidence"),
                "entities": [
                    {
                        "entity": e["entity"],
                        "value": e.get("value"),
                        "extractor": e.get("extractor"),
                    }
                    for e in parsed.get("entities") or []
                ],
            }
        )
    return results


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from rasa.core.agent import Agent

    started = time.perf_counter()
    agent = Agent.load(model_path=args.model)
    loaded = time.perf_counter() - started
    result: dict[str, Any] = {"model": args.model, "model_load_seconds": loaded, "datasets": {}}
    for spec in args.dataset:
        name, _, path = spec.partition("=")
        result["datasets"][name] = await _evaluate(
            agent.processor, name, Path(path), Path(args.out) / name
        )
    result["probes"] = await _probe(agent.processor, args.probe)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--dataset", action="append", default=[], help="NAME=PATH")
    parser.add_argument("--probe", action="append", default=[], help="a message to parse")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    # Rasa's evaluation logs and progress bars go to stderr; stdout carries only the JSON.
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        outcome = asyncio.run(main(arguments))
    finally:
        sys.stdout = real_stdout
    json.dump(outcome, sys.stdout)

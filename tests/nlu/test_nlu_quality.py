"""The trained model understands held-out customer messages, with typos, and their entities."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from benchmarks.nlu.typos import write_typo_variant

# Uses the trained model, like the e2e tests, and shares its one training with them.
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HELDOUT = ROOT / "benchmarks" / "nlu" / "heldout"
EVALUATOR = ROOT / "benchmarks" / "nlu" / "rasa_eval.py"
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"

MIN_MACRO_F1 = 0.95
MIN_TYPO_MACRO_F1 = 0.90

# message -> the entities (type, value) the bot must receive, and nothing else of those types.
ENTITY_PROBES: dict[str, set[tuple[str, str]]] = {
    "where is order 10042": {("order_number", "10042")},
    "where's order #58213": {("order_number", "58213")},
    "cancel purchase 31554 please": {("order_number", "31554")},
    "please deliver it to 350 Fifth Avenue, New York, NY 10118 instead": set(),
    "send order 10077 to 12 Main Street, Springfield, IL 62704": {("order_number", "10077")},
    "my zip code is 94107": set(),
    "invoice INV-204311 shows the wrong amount": {("invoice_number", "INV-204311")},
    "my email is maria.lopez@example.com": {("email", "maria.lopez@example.com")},
    "where is my indoor cam": {("product", "indoor_camera")},
    "how do I set up the Lumen Smart Lock": {("product", "smart_lock")},
    "is it coming with DHL Express?": {("carrier", "dhl")},
    "the code is 482913": {("code", "482913")},
}
PROBED_TYPES = {"order_number", "invoice_number", "email", "product", "carrier", "code"}

# message -> the intent the bot must receive: typos corrected, gibberish never a "yes".
INTENT_PROBES: dict[str, str] = {
    "cancle my ordr": "cancel_order",
    "where is my refnud": "track_refund",
    "zzkt plorb yeeble frunk": "nlu_fallback",
    "vrrm glonk spatuliferous wibbly": "nlu_fallback",
    "yes please": "affirm",
    "nope": "deny",
}


@pytest.fixture(scope="module")
def evaluation(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One Rasa process: the held-out split, its one-typo variant and the entity probes."""
    work = tmp_path_factory.mktemp("nlu-quality")
    typo_file = work / "heldout_typo.yml"
    write_typo_variant(sorted(HELDOUT.glob("*.yml")), typo_file)
    command = [
        str(RASA_PYTHON),
        str(EVALUATOR),
        "--model",
        str(trained_model),
        "--out",
        str(work),
        "--dataset",
        f"heldout={HELDOUT}",
        "--dataset",
        f"heldout_typo={typo_file}",
    ]
    for text in [*ENTITY_PROBES, *INTENT_PROBES]:
        command += ["--probe", text]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _summary(dataset: dict[str, Any]) -> str:
    confusions = Counter(
        f"{e['intent']} -> {e['intent_prediction']['name']}" for e in dataset["intent_errors"]
    )
    return ", ".join(f"{pair} ({n})" for pair, n in confusions.most_common(8))


def test_held_out_messages_get_the_right_intent(evaluation: dict[str, Any]) -> None:
    heldout = evaluation["datasets"]["heldout"]

    macro_f1 = heldout["intent_report"]["macro avg"]["f1-score"]

    assert heldout["messages"] >= 12 * 47
    assert macro_f1 >= MIN_MACRO_F1, f"macro-F1 {macro_f1:.3f}; worst: {_summary(heldout)}"


def test_held_out_messages_with_a_typo_get_the_right_intent(evaluation: dict[str, Any]) -> None:
    typo = evaluation["datasets"]["heldout_typo"]

    macro_f1 = typo["intent_report"]["macro avg"]["f1-score"]

    assert macro_f1 >= MIN_TYPO_MACRO_F1, f"macro-F1 {macro_f1:.3f}; worst: {_summary(typo)}"


@pytest.mark.parametrize("text", list(ENTITY_PROBES))
def test_entities_reach_the_bot_with_their_normalised_value(
    evaluation: dict[str, Any], text: str
) -> None:
    probe = next(p for p in evaluation["probes"] if p["text"] == text)

    received = {
        (e["entity"], str(e["value"])) for e in probe["entities"] if e["entity"] in PROBED_TYPES
    }

    assert received == ENTITY_PROBES[text], probe["entities"]


@pytest.mark.parametrize("text", list(INTENT_PROBES))
def test_probe_messages_get_their_intent(evaluation: dict[str, Any], text: str) -> None:
    probe = next(p for p in evaluation["probes"] if p["text"] == text)

    assert probe["intent"] == INTENT_PROBES[text], probe

"""Run `rasa data validate` and fail on every warning but one Rasa cannot know about.

Rasa warns about responses no story or rule uses, but many of ours are sent by custom
actions (`response="utter_..."`) or asked by forms (`utter_ask_<slot>`). Those are
allowed; a response used by neither a story nor an action, and every other warning,
fails the check.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from bot.stack import RASA_PROJECT

ROOT = Path(__file__).resolve().parent.parent
UNUSED_UTTERANCE = re.compile(r"The utterance '(utter_\w+)' is not used in any story or rule")
# Proactive EXTERNAL_* intents come from the dispatcher's trigger_intent, never from text,
# so they must have no NLU examples.
EXTERNAL_INTENT = re.compile(r"The intent 'EXTERNAL_\w+' is listed in the domain file, but is not")
WARNING = re.compile(r"UserWarning: (.*)")


def responses_used_by_actions() -> set[str]:
    used: set[str] = set()
    for path in (ROOT / "actions").rglob("*.py"):
        used.update(re.findall(r"[\"'](utter_\w+)[\"']", path.read_text()))
    return used


def responses_asked_by_forms() -> set[str]:
    """A form asks for each required slot with utter_ask_<form>_<slot> or utter_ask_<slot>."""
    forms = (yaml.safe_load((ROOT / "domain.yml").read_text()) or {}).get("forms") or {}
    asked: set[str] = set()
    for form, spec in forms.items():
        for slot in (spec or {}).get("required_slots") or []:
            asked.update({f"utter_ask_{slot}", f"utter_ask_{form}_{slot}"})
    return asked


def main() -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    run = subprocess.run(
        [
            str(ROOT / ".venv-rasa/bin/rasa"),
            "data",
            "validate",
            *RASA_PROJECT,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    output = run.stdout + run.stderr
    allowed = responses_used_by_actions() | responses_asked_by_forms()
    problems = []
    for line in output.splitlines():
        match = WARNING.search(line)
        if not match:
            continue
        unused = UNUSED_UTTERANCE.search(line)
        if unused and unused.group(1) in allowed:
            continue
        if EXTERNAL_INTENT.search(line):
            continue
        problems.append(match.group(1))
    for problem in problems:
        print(f"rasa data validate: {problem}", file=sys.stderr)
    if run.returncode != 0:
        print(output[-3000:], file=sys.stderr)
        return run.returncode
    print(f"rasa data validate: clean ({len(allowed)} responses sent by actions)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

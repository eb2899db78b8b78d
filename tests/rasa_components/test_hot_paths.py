"""Rasa with our hot-path fixes answers exactly what Rasa without them answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.rasa_components.in_rasa import json_from_rasa

# Uses the trained model, like the e2e tests, and shares its one training with them.
pytestmark = pytest.mark.e2e

# Runs in .venv-rasa: computes everything once with Rasa as shipped, then again after
# `hot_paths.install()`, and prints both.
COMPARE = r"""
import asyncio, json, sys, tempfile
from pathlib import Path
from rasa.core.actions.action import RemoteAction
from rasa.core.agent import Agent
from rasa.core.policies.rule_policy import RulePolicy
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import (ActionExecuted, Event, SessionStarted, SlotSet,
                                     UserUttered)
from rasa.shared.core.generator import TrainingDataGenerator
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.shared.importers.importer import TrainingDataImporter
from rasa.shared.utils.common import all_subclasses
from rasa_components import hot_paths

agent = Agent.load(sys.argv[1])
domain = agent.domain
components = [getattr(node, "_component", None)
              for node in agent.processor.graph_runner._instantiated_nodes.values()]
rule_policy = next(c for c in components if isinstance(c, RulePolicy))
ted_policy = next(c for c in components if isinstance(c, TEDPolicy))
rule_only_data = next(c for c in components
                      if type(c).__name__ == "RuleOnlyDataProvider").provide()

# Every point where a story or rule of our training data predicts an action.
importer = TrainingDataImporter.load_from_dict(
    config_path="config.yml", domain_path="domain.yml", training_data_paths=["data"])
trackers = TrainingDataGenerator(importer.get_stories(), domain, augmentation_factor=0,
                                 debug_plots=False).generate()
prefixes = []
for tracker in trackers:
    events = list(tracker.events)
    for index, event in enumerate(events):
        if isinstance(event, ActionExecuted) and index > 0:
            prefixes.append(DialogueStateTracker.from_events("t", events[:index], domain.slots))

def rule_predictions():
    out = []
    for prefix in prefixes:
        p = rule_policy.predict_action_probabilities(prefix, domain, rule_only_data=rule_only_data)
        best = max(range(len(p.probabilities)), key=p.probabilities.__getitem__)
        out.append([domain.action_names_or_texts[best], round(max(p.probabilities), 6),
                    p.hide_rule_turn, json.dumps(p.action_metadata, sort_keys=True)])
    return out

def ted_predictions():
    # Twice over: the second pass answers from what the first one remembered.
    out = []
    for _ in range(2):
        out.append([ted_policy.predict_action_probabilities(
                        prefix, domain, rule_only_data=rule_only_data).probabilities
                    for prefix in prefixes])
    return out

EVENT_NAMES = sorted({c.type_name for c in all_subclasses(Event)}) + ["topic", "no_such_event"]

def event_classes():
    out = {}
    for name in EVENT_NAMES:
        try:
            out[name] = getattr(Event.resolve_by_type(name), "__name__", None)
        except ValueError as error:
            out[name] = f"ValueError: {error}"
    return out

ACTION_REPLIES = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "order_number", "value": "10042", "timestamp": None}],
     "responses": [{"text": "hi", "buttons": []}]},
    {"events": [{"event": "followup", "name": "action_listen"}]},
    {"events": [{"event": "no_such_event"}]},
    {"events": "not a list"},
    {"events": [{"event": "slot", "value": 1}]},
    {"responses": ["not an object"]},
]

def validations():
    action = RemoteAction("action_track_order", None)
    out = []
    for reply in ACTION_REPLIES:
        try:
            out.append(["ok", action._validate_action_result(reply)])
        except Exception as error:
            out.append([type(error).__name__, getattr(error, "message", str(error))])
    return out

def stored_conversations(path):
    store = SQLTrackerStore(domain, dialect="sqlite", db=str(path))
    async def run():
        tracker = DialogueStateTracker.from_events("customer", [
            SessionStarted(timestamp=1.0), ActionExecuted("action_listen", timestamp=2.0),
            UserUttered("hi", {"name": "greet", "confidence": 0.9}, timestamp=3.0),
            SlotSet("order_number", "10042", timestamp=4.0),
            SessionStarted(timestamp=10.0), ActionExecuted("action_listen", timestamp=11.0),
            UserUttered("where is my order", {"name": "track_order", "confidence": 1.0},
                        timestamp=12.0),
        ], domain.slots)
        await store.save(tracker)
        # Loaded, two events added and saved again, as Rasa does with every message: only
        # those two are stored.
        tracker = await store.retrieve("customer")
        tracker.update(ActionExecuted("utter_order_status", timestamp=13.0))
        tracker.update(ActionExecuted("action_listen", timestamp=14.0))
        await store.save(tracker)
        latest = await store.retrieve("customer")
        full = await store.retrieve_full_tracker("customer")
        missing = await store.retrieve("nobody")
        return [t and t.current_state(EventVerbosity.ALL) for t in (latest, full, missing)]
    return asyncio.run(run())

def states_of_a_conversation():
    # The same question twice, an asker editing its answer, then the conversation moving on.
    longest = max(prefixes, key=lambda t: len(t.events))
    tracker = DialogueStateTracker.from_events("states", list(longest.events), domain.slots)
    first = tracker.past_states(domain, ignore_rule_only_turns=True, rule_only_data=rule_only_data)
    first[-1].clear()
    again = tracker.past_states(domain, ignore_rule_only_turns=True, rule_only_data=rule_only_data)
    tracker.update(ActionExecuted("action_listen"))
    moved_on = tracker.past_states(domain, ignore_rule_only_turns=True,
                                   rule_only_data=rule_only_data)
    return [json.dumps(again, sort_keys=True, default=repr),
            json.dumps(moved_on, sort_keys=True, default=repr)]

def everything(work):
    return {"rules": rule_predictions(), "ted": ted_predictions(), "events": event_classes(),
            "validations": validations(), "store": stored_conversations(work / "events.db"),
            "states": states_of_a_conversation()}

with tempfile.TemporaryDirectory() as stock_dir, tempfile.TemporaryDirectory() as fast_dir:
    stock = everything(Path(stock_dir))
    hot_paths.install()
    fast = everything(Path(fast_dir))
remembered = len(getattr(ted_policy, "_remembered_predictions", {}))
print(json.dumps({"stock": stock, "fast": fast, "prefixes": len(prefixes),
                  "remembered": remembered}))
"""


@pytest.fixture(scope="module")
def with_and_without(trained_model: Path) -> dict[str, Any]:
    result: dict[str, Any] = json_from_rasa(COMPARE, str(trained_model))
    return result


def test_rules_predict_the_same_at_every_step_of_our_stories_and_rules(
    with_and_without: dict[str, Any],
) -> None:
    assert with_and_without["prefixes"] > 500
    assert with_and_without["fast"]["rules"] == with_and_without["stock"]["rules"]
    # The comparison is only worth something if rules actually fire along the way.
    fired = [row for row in with_and_without["fast"]["rules"] if row[1] == 1.0]
    assert len(fired) > 100


def test_ted_answers_from_memory_exactly_what_it_would_compute(
    with_and_without: dict[str, Any],
) -> None:
    stock_first, stock_second = with_and_without["stock"]["ted"]
    fast_first, fast_second = with_and_without["fast"]["ted"]
    assert stock_first == stock_second
    assert fast_first == stock_first
    assert fast_second == stock_first
    # Stories share states, so the memory holds fewer entries than there were predictions.
    assert 0 < with_and_without["remembered"] < with_and_without["prefixes"]


def test_dialogue_states_are_remembered_only_while_the_conversation_stands_still(
    with_and_without: dict[str, Any],
) -> None:
    fast, stock = with_and_without["fast"]["states"], with_and_without["stock"]["states"]
    assert fast == stock
    again, moved_on = fast
    assert again != moved_on


def test_events_resolve_to_the_same_classes(with_and_without: dict[str, Any]) -> None:
    fast, stock = with_and_without["fast"]["events"], with_and_without["stock"]["events"]
    assert fast == stock
    assert fast["user"] == "UserUttered"
    assert fast["no_such_event"].startswith("ValueError")


def test_action_replies_are_accepted_and_rejected_as_before(
    with_and_without: dict[str, Any],
) -> None:
    fast, stock = with_and_without["fast"]["validations"], with_and_without["stock"]["validations"]
    assert fast == stock
    assert [outcome for outcome, _ in fast] == ["ok", "ok", "ok"] + ["ValidationError"] * 4


def test_stored_conversations_load_the_same(with_and_without: dict[str, Any]) -> None:
    fast, stock = with_and_without["fast"]["store"], with_and_without["stock"]["store"]
    assert fast == stock
    latest, full, missing = fast
    assert [e["event"] for e in latest["events"]] == [
        "session_started",
        "action",
        "user",
        "action",
        "action",
    ]
    assert len(full["events"]) == 9
    assert missing is None

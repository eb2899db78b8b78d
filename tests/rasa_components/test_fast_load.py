"""Models loaded our fast way predict exactly what Rasa's own loading predicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.rasa_components.in_rasa import json_from_rasa

# Uses the trained model, like the e2e tests, and shares its one training with them.
pytestmark = pytest.mark.e2e

# Runs in .venv-rasa: loads the model our way, then Rasa's way, and predicts with both. (The
# logistic regression has no Rasa-way file to compare with: it is loaded our way both times.)
COMPARE = r"""
import asyncio, json, logging, sys
from rasa.core.agent import Agent
from rasa.core.channels import UserMessage
from rasa.core.policies.ted_policy import TEDPolicy
from rasa_components import fast_load

warnings = []
class Collect(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())
logging.getLogger(fast_load.__name__).addHandler(Collect())

MESSAGES = ["where is order 10042", "I want a refund for my thermostat", "hi", "no thanks",
            "stop the shipping updates after 9pm", "is DHL delivering my smart plugs?"]
CONVERSATIONS = {"a": ["hello"], "b": ["hi", "where is my order 10042"], "c": ["thanks", "bye"]}

async def predictions(agent):
    nlu = []
    for text in MESSAGES:
        parsed = await agent.parse_message(text)
        nlu.append([[[i["name"], round(i["confidence"], 6)] for i in parsed["intent_ranking"]],
                    [[e["entity"], e["value"], e["start"]] for e in parsed["entities"]]])
    # The graph runner's nodes are Rasa internals; the TED policy's own prediction is the
    # thing to compare, not the ensemble's (rules usually win there).
    teds = [node._component for node in agent.processor.graph_runner._instantiated_nodes.values()
            if isinstance(getattr(node, "_component", None), TEDPolicy)]
    dialogue = []
    for sender, texts in CONVERSATIONS.items():
        for text in texts:
            await agent.log_message(UserMessage(text, sender_id=sender))
        tracker = await agent.processor.get_tracker(sender)
        for ted in teds:
            scores = ted.predict_action_probabilities(tracker, agent.domain).probabilities
            dialogue.append([round(score, 6) for score in scores])
    return {"nlu": nlu, "dialogue": dialogue, "ted_policies": len(teds),
            "fast_classes": sorted({type(t).__name__ for t in teds})}

fast = asyncio.run(predictions(Agent.load(sys.argv[1])))
fast_warnings = list(warnings)

def stock_only(cls, *args, **kwargs):
    raise AssertionError("stock loading, for comparison")
fast_load.ForwardPassLoading._load_by_forward_pass = classmethod(stock_only)
from rasa.nlu.extractors.crf_entity_extractor import CRFEntityExtractor
fast_load.FastLoadCRFEntityExtractor.load = classmethod(CRFEntityExtractor.load.__func__)
stock = asyncio.run(predictions(Agent.load(sys.argv[1])))
print(json.dumps({"fast": fast, "stock": stock, "warnings": fast_warnings}))
"""


@pytest.fixture(scope="module")
def loaded_both_ways(trained_model: Path) -> dict[str, Any]:
    result: dict[str, Any] = json_from_rasa(COMPARE, str(trained_model))
    return result


def test_the_model_loads_the_fast_way_without_falling_back(
    loaded_both_ways: dict[str, Any],
) -> None:
    assert loaded_both_ways["fast"]["ted_policies"] == 1
    assert loaded_both_ways["fast"]["fast_classes"] == ["FastLoadTEDPolicy"]
    assert loaded_both_ways["warnings"] == []


def test_fast_and_stock_loading_predict_the_same(loaded_both_ways: dict[str, Any]) -> None:
    fast, stock = loaded_both_ways["fast"], loaded_both_ways["stock"]

    assert fast["nlu"] == stock["nlu"]
    assert fast["dialogue"] == stock["dialogue"]
    assert len(fast["dialogue"]) == 3

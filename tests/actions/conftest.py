"""Run a real action against the demo shop, the way the action server would."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher


@dataclass
class ActionResult:
    messages: list[dict[str, Any]]
    events: list[dict[str, Any]]

    @property
    def texts(self) -> list[str]:
        return [m["text"] for m in self.messages if m.get("text")]

    @property
    def responses(self) -> list[str]:
        return [m["response"] for m in self.messages if m.get("response")]

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [b for m in self.messages for b in m.get("buttons", [])]

    def slot(self, name: str) -> Any:
        return next(
            (e["value"] for e in self.events if e.get("event") == "slot" and e.get("name") == name),
            "unset",
        )


@dataclass
class Conversation:
    sender_id: str
    intent: str = "track_order"
    text: str = ""
    entities: dict[str, str] = field(default_factory=dict)
    slots: dict[str, Any] = field(default_factory=dict)

    def tracker(self) -> Tracker:
        latest = {
            "intent": {"name": self.intent, "confidence": 0.99},
            "entities": [{"entity": k, "value": v} for k, v in self.entities.items()],
            "text": self.text,
        }
        return Tracker(
            self.sender_id, dict(self.slots), latest, [], False, None, {}, "action_listen"
        )


def run_action(action: Action, conversation: Conversation) -> ActionResult:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, conversation.tracker(), {}))
    return ActionResult(dispatcher.messages, events)


@pytest.fixture(autouse=True)
def _demo_shop(demo_settings: str) -> str:
    """Every action test runs against the real demo shop in SQLite."""
    return demo_settings

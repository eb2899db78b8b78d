"""Run a real action against the demo shop, the way the action server would."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.db import get_engine, migrate, session_scope
from bot.db.demo import load_demo_data
from bot.settings import get_settings


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
    """The tracker an action sees: the latest message, slots, and what came before.

    `history` holds earlier events (see `user_said`, `bot_said`); with `active_loop` set,
    `candidates` are the slot values a form hands its validation action, as Rasa does.
    """

    sender_id: str
    intent: str = "track_order"
    text: str = ""
    entities: dict[str, str] = field(default_factory=dict)
    slots: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    active_loop: str | None = None
    candidates: dict[str, Any] = field(default_factory=dict)

    def tracker(self) -> Tracker:
        latest = {
            "intent": {"name": self.intent, "confidence": 0.99},
            "entities": [{"entity": k, "value": v} for k, v in self.entities.items()],
            "text": self.text,
        }
        events = [*self.history, user_said(self.text, self.intent, self.entities)]
        if self.active_loop:
            events.append({"event": "action", "name": self.active_loop})
            events += [{"event": "slot", "name": k, "value": v} for k, v in self.candidates.items()]
        loop = {"name": self.active_loop} if self.active_loop else {}
        slots = {**self.slots, **self.candidates}
        return Tracker(self.sender_id, slots, latest, events, False, None, loop, "action_listen")


def user_said(text: str, intent: str, entities: dict[str, str] | None = None) -> dict[str, Any]:
    """A user event as Rasa's tracker holds it."""
    return {
        "event": "user",
        "text": text,
        "input_channel": "rest",
        "parse_data": {
            "intent": {"name": intent, "confidence": 0.99},
            "entities": [{"entity": k, "value": v} for k, v in (entities or {}).items()],
            "text": text,
        },
    }


def bot_said(text: str) -> dict[str, Any]:
    return {"event": "bot", "text": text}


def run_action(action: Action, conversation: Conversation) -> ActionResult:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, conversation.tracker(), {}))
    return ActionResult(dispatcher.messages, events)


@pytest.fixture(autouse=True)
def _demo_shop(demo_settings: str) -> str:
    """Every action test runs against the real demo shop in SQLite."""
    return demo_settings


@pytest.fixture(scope="session")
def live_shop_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo shop built around today's clock, for answers that depend on "how long ago"
    (return windows, renewals, recent payments): actions read the real time."""
    path = tmp_path_factory.mktemp("live-shop") / "herald.db"
    url = f"sqlite:///{path}"
    migrate(url)
    with session_scope(url) as session:
        load_demo_data(session)
    get_engine(url).dispose()
    return path


@pytest.fixture
def live_shop(
    live_shop_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A private copy of the live shop that the action under test may change."""
    copy = tmp_path / "shop.db"
    # The backup API copies what is still in the write-ahead log, too.
    with closing(sqlite3.connect(live_shop_file)) as source, closing(sqlite3.connect(copy)) as dest:
        source.backup(dest)
    url = f"sqlite:///{copy}"
    monkeypatch.setenv("HERALD_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_engine(url).dispose()
    get_settings.cache_clear()


@pytest.fixture
def no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The database is unreachable: its path is a directory, so every connect fails."""
    (tmp_path / "not-a-database").mkdir()
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'not-a-database'}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()

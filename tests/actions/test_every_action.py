"""Every action of ours: known to the domain, polite to strangers and when records are down."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from rasa_sdk import Action
from rasa_sdk.executor import ActionExecutor

from actions.policy import PolicyAnswer
from tests.actions.conftest import Conversation, run_action

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
# Linking belongs to the identity work and has its own tests.
NOT_OURS = re.compile(r"action_(check|finish|cancel)_linking|action_unlink_account|validate_link_")
# Submit actions run after a form that already told the visitor to sign in.
SILENT_FOR_STRANGERS = re.compile(
    r"action_(cancel_order|cancel_subscription|change_shipping_address|save_default_address"
    r"|request_refund|request_return|request_account_deletion)$"
)
# What a customer may hear when our records cannot be reached.
POLITE_WHEN_DOWN = {
    "utter_service_unavailable",
    "utter_handoff_unavailable",
    "utter_feedback_not_saved",
    "utter_status_unknown",
    "utter_setup_guides_elsewhere",
    "utter_ask_order_number",
    # Answers that need no records at all.
    "utter_default",
    "utter_form_stopped",
}


def our_actions() -> dict[str, Action]:
    executor = ActionExecutor()
    executor.register_package("actions")
    actions: dict[str, Action] = {}
    for name, run in executor.actions.items():
        action = run.__self__  # type: ignore[attr-defined]
        if not NOT_OURS.match(name):
            actions[name] = action
    return actions


ACTIONS = our_actions()


def test_the_domain_lists_exactly_the_actions_we_have() -> None:
    listed = {a for a in DOMAIN["actions"] if not NOT_OURS.match(a)}
    assert listed == set(ACTIONS)


def test_every_response_an_action_sends_exists() -> None:
    sent: set[str] = set()
    for path in (ROOT / "actions").glob("*.py"):
        sent.update(re.findall(r"[\"'](utter_\w+)[\"']", path.read_text()))
    assert sent - set(DOMAIN["responses"]) == set()


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_strangers_get_an_answer_without_anyones_data(live_shop: str, name: str) -> None:
    result = run_action(
        ACTIONS[name],
        Conversation(
            "web:anon-0123", intent="track_order", text="10001", entities={"order_number": "10001"}
        ),
    )
    if SILENT_FOR_STRANGERS.match(name):
        assert result.messages == []
    else:
        assert result.messages, name
    assert not any("card ending" in str(m) or "@example.com" in str(m) for m in result.messages)


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_a_database_that_went_away_gets_a_polite_reply(no_database: None, name: str) -> None:
    result = run_action(
        ACTIONS[name],
        Conversation(
            "web:1", intent="track_order", text="10001", entities={"order_number": "10001"}
        ),
    )
    action = ACTIONS[name]
    allowed = set(POLITE_WHEN_DOWN)
    if isinstance(action, PolicyAnswer):
        # The policy still goes out; only the customer's own facts are left off.
        allowed.add(action.policy_response)
    assert result.messages, name
    assert set(result.responses) <= allowed, name
    assert result.texts == [], name

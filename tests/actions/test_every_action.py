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
# The reactive-support modules; linking and proactive notices have their own tests.
OUR_MODULES = {
    f"actions.{name}"
    for name in (
        "orders",
        "refunds",
        "billing",
        "subscription",
        "account",
        "service",
        "handoff",
        "conversation",
    )
}
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


def registered_actions() -> dict[str, Action]:
    """Every action the action server would serve, by name."""
    executor = ActionExecutor()
    executor.register_package("actions")
    return {name: run.__self__ for name, run in executor.actions.items()}  # type: ignore[attr-defined]


def our_actions() -> dict[str, Action]:
    return {
        name: action
        for name, action in registered_actions().items()
        if type(action).__module__ in OUR_MODULES
    }


ACTIONS = our_actions()


def test_the_domain_lists_every_action_of_ours() -> None:
    assert set(ACTIONS) - set(DOMAIN["actions"]) == set()


def test_every_custom_action_the_domain_names_exists() -> None:
    assert set(DOMAIN["actions"]) - set(registered_actions()) == set()


def test_every_response_our_actions_send_exists() -> None:
    sent: set[str] = set()
    for module in OUR_MODULES:
        path = ROOT / "actions" / f"{module.split('.')[1]}.py"
        sent.update(re.findall(r"[\"'](utter_\w+)[\"']", path.read_text()))
    sent.update(re.findall(r"[\"'](utter_\w+)[\"']", (ROOT / "actions" / "forms.py").read_text()))
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

"""Keeping a conversation on track: fallback, questions mid-form, changing one's mind."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from actions.conversation import (
    MID_FORM_ANSWERS,
    ActionAnswerMidForm,
    ActionFallback,
    ActionStopForm,
)
from actions.forms import FORM_SLOTS
from tests.actions.conftest import Conversation, bot_said, run_action, user_said

ROOT = Path(__file__).resolve().parents[2]


def fallback_after(*earlier_intents: str) -> list[str]:
    history = []
    for intent in earlier_intents:
        history += [user_said("...", intent), bot_said("...")]
    result = run_action(
        ActionFallback(),
        Conversation("web:anon-1", intent="nlu_fallback", text="zzq", history=history),
    )
    return result.responses


def test_the_first_message_not_understood_asks_to_rephrase() -> None:
    assert fallback_after() == ["utter_default"]
    assert fallback_after("nlu_fallback", "track_order") == ["utter_default"]


def test_the_second_in_a_row_offers_a_person() -> None:
    assert fallback_after("nlu_fallback") == ["utter_offer_human"]
    assert fallback_after("track_order", "nlu_fallback", "nlu_fallback") == ["utter_offer_human"]


def test_the_offer_of_a_person_is_a_button() -> None:
    result = run_action(
        ActionFallback(),
        Conversation(
            "web:anon-1", intent="nlu_fallback", history=[user_said("qqq", "nlu_fallback")]
        ),
    )
    assert result.buttons[0] == {"title": "Talk to a person", "payload": "/contact_human_agent"}


def test_a_card_number_is_never_taken_as_just_gibberish() -> None:
    result = run_action(
        ActionFallback(),
        Conversation("web:anon-1", intent="nlu_fallback", text="4111111111111111"),
    )
    assert result.responses == ["utter_no_card_numbers"]


def test_a_question_mid_form_is_answered_without_touching_the_forms_slots(live_shop: str) -> None:
    result = run_action(
        ActionAnswerMidForm(),
        Conversation(
            "web:1",
            intent="track_order",
            entities={"order_number": "10001"},
            slots={"requested_slot": "confirmed", "order_number": "10002"},
            active_loop="cancel_order_form",
        ),
    )
    assert any("Order 10001" in t for t in result.texts)
    assert all(e.get("name") not in FORM_SLOTS for e in result.events)


@pytest.mark.parametrize(
    ("intent", "response"),
    [
        ("get_refund", "utter_finish_form_first"),
        ("greet", "utter_hello_mid_form"),
        ("nlu_fallback", "utter_not_an_answer"),
        ("check_refund_policy", "utter_refund_policy"),
    ],
)
def test_mid_form_answers(live_shop: str, intent: str, response: str) -> None:
    result = run_action(
        ActionAnswerMidForm(), Conversation("web:1", intent=intent, active_loop="refund_form")
    )
    assert result.responses[0] == response


def test_changing_ones_mind_drops_every_collected_value() -> None:
    result = run_action(ActionStopForm(), Conversation("web:1", intent="deny"))
    assert result.responses == ["utter_form_stopped"]
    assert {e["name"]: e["value"] for e in result.events} == dict.fromkeys(FORM_SLOTS)


def rules(path: str) -> list[dict[str, object]]:
    return list(yaml.safe_load((ROOT / path).read_text())["rules"])


def test_the_mid_form_rules_send_exactly_the_intents_the_action_answers() -> None:
    forms = yaml.safe_load((ROOT / "domain.yml").read_text())["forms"]
    ours = {f for f in forms if f != "link_account_form"}
    covered = set()
    for rule in rules("data/rules/conversation.yml"):
        steps = rule["steps"]
        assert isinstance(steps, list)
        if "or" not in steps[0]:
            continue
        intents = {step["intent"] for step in steps[0]["or"]}
        assert intents == set(MID_FORM_ANSWERS), rule["rule"]
        covered.add(rule["condition"][0]["active_loop"])  # type: ignore[index]
    assert covered == ours


def test_every_intent_answered_mid_form_is_in_the_domain() -> None:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    assert set(MID_FORM_ANSWERS) <= set(domain["intents"])
    responses = {a for a in MID_FORM_ANSWERS.values() if isinstance(a, str)}
    assert responses <= set(domain["responses"])

"""Keeping a conversation on track: fallback, questions in the middle of a form, stopping one."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.account import (
    ActionCreateAccount,
    ActionEditAccount,
    ActionNewsletter,
    ActionRecoverPassword,
    ActionRegistrationProblems,
    ActionSwitchAccount,
)
from actions.base import EventList
from actions.billing import (
    ActionCancellationFee,
    ActionCheckInvoice,
    ActionCheckPaymentMethods,
    ActionGetInvoice,
    ActionPaymentIssue,
    ActionUpdatePaymentMethod,
)
from actions.formatting import looks_like_card_number
from actions.forms import FORM_SLOTS
from actions.handoff import ActionComplaint, ActionReview
from actions.orders import (
    ActionChangeOrder,
    ActionDeliveryOptions,
    ActionDeliveryPeriod,
    ActionPlaceOrder,
    ActionTrackOrder,
)
from actions.refunds import ActionRefundPolicy, ActionTrackRefund
from actions.service import ActionOutageStatus, ActionSetupHelp
from actions.subscription import ActionSubscriptionStatus

HANDOFF_BUTTON = {"title": "Talk to a person", "payload": "/contact_human_agent"}
# After this many messages in a row that we could not understand, offer a person.
FALLBACKS_BEFORE_HANDOFF = 2

# What to do when a customer asks something else while a form waits for an answer: the
# rules in data/rules/conversation.yml send exactly these intents here, then resume the form.
MID_FORM_ANSWERS: dict[str, Action | str] = {
    "greet": "utter_hello_mid_form",
    "thank": "utter_welcome_mid_form",
    "bot_challenge": "utter_iamabot",
    "out_of_scope": "utter_out_of_scope_mid_form",
    "nlu_fallback": "utter_not_an_answer",
    "inform": "utter_not_an_answer",
    "affirm": "utter_not_an_answer",
    "track_order": ActionTrackOrder(),
    "change_order": ActionChangeOrder(),
    "delivery_options": ActionDeliveryOptions(),
    "delivery_period": ActionDeliveryPeriod(),
    "place_order": ActionPlaceOrder(),
    "track_refund": ActionTrackRefund(),
    "check_refund_policy": ActionRefundPolicy(),
    "payment_issue": ActionPaymentIssue(),
    "check_payment_methods": ActionCheckPaymentMethods(),
    "update_payment_method": ActionUpdatePaymentMethod(),
    "check_invoice": ActionCheckInvoice(),
    "get_invoice": ActionGetInvoice(),
    "check_cancellation_fee": ActionCancellationFee(),
    "subscription_status": ActionSubscriptionStatus(),
    "create_account": ActionCreateAccount(),
    "edit_account": ActionEditAccount(),
    "recover_password": ActionRecoverPassword(),
    "registration_problems": ActionRegistrationProblems(),
    "switch_account": ActionSwitchAccount(),
    "newsletter_subscription": ActionNewsletter(),
    "outage_status": ActionOutageStatus(),
    "setup_help": ActionSetupHelp(),
    "complaint": ActionComplaint(),
    "review": ActionReview(),
    # Requests that start a form of their own wait until this one is done or dropped.
    "cancel_order": "utter_finish_form_first",
    "change_shipping_address": "utter_finish_form_first",
    "set_up_shipping_address": "utter_finish_form_first",
    "get_refund": "utter_finish_form_first",
    "return_item": "utter_finish_form_first",
    "cancel_subscription": "utter_finish_form_first",
    "delete_account": "utter_finish_form_first",
}


def latest_intent(tracker: Tracker) -> str | None:
    intent = (tracker.latest_message or {}).get("intent") or {}
    name = intent.get("name")
    return str(name) if name else None


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many messages in a row, this one included, we could not understand."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = (event.get("parse_data") or {}).get("intent", {}).get("name")
        if intent != "nlu_fallback":
            break
        count += 1
    return max(count, 1)


class ActionFallback(Action):
    """First time: ask to rephrase. Again straight after: offer a person."""

    def name(self) -> str:
        return "action_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        if looks_like_card_number(str(tracker.latest_message.get("text") or "")):
            dispatcher.utter_message(response="utter_no_card_numbers")
            return []
        if consecutive_fallbacks(tracker) < FALLBACKS_BEFORE_HANDOFF:
            dispatcher.utter_message(response="utter_default")
        else:
            dispatcher.utter_message(
                response="utter_offer_human",
                buttons=[
                    HANDOFF_BUTTON,
                    {"title": "Where is my order?", "payload": "/track_order"},
                    {"title": "A billing question", "payload": "/check_invoice"},
                ],
            )
        return []


class ActionAnswerMidForm(Action):
    """Answer a question asked while a form waits, without letting it touch the form's slots."""

    def name(self) -> str:
        return "action_answer_mid_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        if looks_like_card_number(str(tracker.latest_message.get("text") or "")):
            dispatcher.utter_message(response="utter_no_card_numbers")
            return []
        answer = MID_FORM_ANSWERS.get(latest_intent(tracker) or "", "utter_not_an_answer")
        if isinstance(answer, str):
            dispatcher.utter_message(response=answer)
            return []
        events = await answer.run(dispatcher, tracker, domain)
        # The form validates its own slots; an answer on the side must not fill them.
        return [e for e in events if not _sets_form_slot(e)]


def _sets_form_slot(event: dict[str, Any]) -> bool:
    return event.get("event") == "slot" and event.get("name") in FORM_SLOTS


class ActionStopForm(Action):
    """The customer changed their mind mid-form: drop what was collected, change nothing."""

    def name(self) -> str:
        return "action_stop_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventList:
        dispatcher.utter_message(response="utter_form_stopped")
        return [SlotSet(slot, None) for slot in FORM_SLOTS]

"""The Lumen Cloud plan: what it is and costs, when it renews, and cancelling it for real."""

from __future__ import annotations

from sqlalchemy import select

from actions.formatting import local_day
from actions.subscription import (
    ActionAskCancelSubscription,
    ActionCancelSubscription,
    ActionSubscriptionStatus,
    ValidateCancelSubscriptionForm,
)
from bot.db import session_scope
from bot.db.models import Customer, Subscription, SubscriptionStatus
from tests.actions.conftest import Conversation, run_action
from tests.actions.shop import customer_with_plan


def plan_of(url: str, customer: int) -> Subscription:
    with session_scope(url) as session:
        subscription = session.scalars(
            select(Subscription).where(Subscription.customer_id == customer)
        ).one()
        session.expunge(subscription)
        return subscription


def test_status_names_plan_price_renewal_in_their_zone_and_the_card(live_shop: str) -> None:
    customer = customer_with_plan(live_shop, SubscriptionStatus.ACTIVE)
    plan = plan_of(live_shop, customer)
    with session_scope(live_shop) as session:
        timezone = session.get(Customer, customer).timezone  # type: ignore[union-attr]
    result = run_action(ActionSubscriptionStatus(), Conversation(f"web:{customer}"))
    text = result.texts[0]
    assert f"{plan.plan.title()} plan is active" in text
    assert f"€{plan.price}" in text
    assert plan.renews_at is not None and local_day(plan.renews_at, timezone) in text
    assert "card ending" in text
    assert {"title": "Cancel my plan", "payload": "/cancel_subscription"} in result.buttons


def test_a_past_due_plan_says_which_payment_failed_and_what_to_do(live_shop: str) -> None:
    customer = customer_with_plan(live_shop, SubscriptionStatus.PAST_DUE)
    result = run_action(ActionSubscriptionStatus(), Conversation(f"web:{customer}"))
    assert "past due" in result.texts[0]
    assert "failed" in result.texts[1] and "insufficient funds" in result.texts[1]
    assert "utter_subscription_past_due" in result.responses


def test_no_plan_lists_the_plans_on_offer(live_shop: str) -> None:
    customer = customer_with_plan(live_shop, None)
    result = run_action(ActionSubscriptionStatus(), Conversation(f"web:{customer}"))
    assert result.responses == ["utter_no_subscription"]
    assert (
        result.messages[0]["plans"] == "Basic €3.99/month, Plus €7.99/month, Premium €12.99/month"
    )


def test_cancelling_without_a_plan_ends_the_form_at_once(live_shop: str) -> None:
    customer = customer_with_plan(live_shop, None)
    result = run_action(
        ValidateCancelSubscriptionForm(),
        Conversation(
            f"web:{customer}", intent="cancel_subscription", active_loop="cancel_subscription_form"
        ),
    )
    assert result.responses == ["utter_no_active_subscription"]
    assert result.slot("requested_slot") is None


def test_the_confirmation_explains_there_is_no_fee_and_until_when_it_runs(live_shop: str) -> None:
    customer = customer_with_plan(live_shop, SubscriptionStatus.ACTIVE)
    result = run_action(ActionAskCancelSubscription(), Conversation(f"web:{customer}"))
    [message] = result.messages
    assert message["response"] == "utter_ask_cancel_subscription"
    assert message["price"].startswith("€") and message["until"]
    assert [b["payload"] for b in result.buttons] == ["/affirm", "/deny"]


def test_a_confirmed_cancellation_really_cancels_the_plan(live_shop: str) -> None:
    customer = customer_with_plan(live_shop, SubscriptionStatus.ACTIVE)
    result = run_action(
        ActionCancelSubscription(), Conversation(f"web:{customer}", slots={"confirmed": True})
    )
    assert result.responses == ["utter_subscription_cancelled"]
    plan = plan_of(live_shop, customer)
    assert plan.status is SubscriptionStatus.CANCELLED and plan.cancelled_at is not None

    status = run_action(ActionSubscriptionStatus(), Conversation(f"web:{customer}"))
    assert "is cancelled" in status.texts[0] and "won't be charged again" in status.texts[0]


def test_no_keeps_the_plan(live_shop: str) -> None:
    customer = customer_with_plan(live_shop, SubscriptionStatus.PAST_DUE)
    result = run_action(
        ActionCancelSubscription(), Conversation(f"web:{customer}", slots={"confirmed": False})
    )
    assert result.responses == ["utter_subscription_kept"]
    assert plan_of(live_shop, customer).status is SubscriptionStatus.PAST_DUE

"""Customers manage notifications in chat, and the throttle follows what they said."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from sqlalchemy import select

from actions.preferences import (
    ActionListNotifications,
    ActionOnlyUrgentNotifications,
    ActionResumeNotifications,
    ActionSetQuietHours,
    ActionStopNotifications,
)
from bot.db import session_scope
from bot.db.models import NotificationPreference
from bot.proactive.policy import QuietHours, load_policy
from bot.proactive.preferences import load_preferences
from bot.proactive.throttle import Candidate, Verdict, decide
from bot.proactive.topics import TOPICS
from tests.actions.conftest import Conversation, run_action

CUSTOMER = 5
SENDER = f"web:{CUSTOMER}"


def stored(url: str) -> dict[str, NotificationPreference]:
    with session_scope(url) as session:
        return {
            row.topic: row
            for row in session.scalars(
                select(NotificationPreference).where(NotificationPreference.customer_id == CUSTOMER)
            )
        }


def opted_out(url: str) -> set[str]:
    return {topic for topic, row in stored(url).items() if row.opted_out}


def say(action: object, intent: str, text: str = "", **entities: str) -> list[str]:
    result = run_action(action, Conversation(SENDER, intent=intent, text=text, entities=entities))  # type: ignore[arg-type]
    return result.texts


def test_stop_one_topic_then_the_throttle_suppresses_it(live_shop: str) -> None:
    (reply,) = say(
        ActionStopNotifications(),
        "stop_notifications",
        "stop sending me shipping updates",
        topic="shipping",
    )

    assert "no more shipping updates" in reply
    assert opted_out(live_shop) == {"shipping"}
    with session_scope(live_shop) as session:
        prefs = load_preferences(session, [CUSTOMER])[CUSTOMER]
    policy = load_policy().throttle
    midday = datetime(2026, 11, 20, 18, tzinfo=UTC)  # 12:00 in Chicago, where they live
    shipping = Candidate("shipping", urgent=False, dedup_key="s")
    renewal = Candidate("renewal", urgent=False, dedup_key="r")
    assert decide(shipping, prefs, [], midday, policy).reason == "opted_out"
    assert decide(renewal, prefs, [], midday, policy).verdict is Verdict.SEND


def test_stop_without_a_topic_stops_everything_and_resume_undoes_it(live_shop: str) -> None:
    (reply,) = say(ActionStopNotifications(), "stop_notifications", "please stop messaging me")
    assert "won't send you any more messages" in reply
    assert opted_out(live_shop) == {"all"}

    (reply,) = say(ActionResumeNotifications(), "resume_notifications", "resume")
    assert "all my messages are on again" in reply
    assert opted_out(live_shop) == set()


def test_resuming_one_topic_after_a_global_stop_keeps_the_rest_off(live_shop: str) -> None:
    say(ActionStopNotifications(), "stop_notifications", "stop all", topic="all")

    (reply,) = say(
        ActionResumeNotifications(),
        "resume_notifications",
        "start sending me shipping updates again",
        topic="shipping",
    )

    assert "Shipping updates are back on. Everything else stays off." in reply
    assert opted_out(live_shop) == set(TOPICS) - {"shipping"}


@pytest.mark.parametrize(
    ("entities", "kept"),
    [({}, {"outage", "payment", "security"}), ({"topic": "outage"}, {"outage"})],
)
def test_only_urgent_or_only_named_topics(
    live_shop: str, entities: dict[str, str], kept: set[str]
) -> None:
    (reply,) = say(
        ActionOnlyUrgentNotifications(), "only_urgent_notifications", "only outages", **entities
    )

    assert "only message you about" in reply
    assert opted_out(live_shop) == set(TOPICS) - kept


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("no messages after 9pm", "21:00", "08:00"),
        ("don't message me between 22:00 and 7:00", "22:00", "07:00"),
        ('/set_quiet_hours{"time":"22:00-07:00"}', "22:00", "07:00"),
    ],
)
def test_quiet_hours_are_stored_in_the_customers_time(
    live_shop: str, text: str, start: str, end: str
) -> None:
    (reply,) = say(ActionSetQuietHours(), "set_quiet_hours", text)

    assert f"between {start} and {end} your time" in reply
    row = stored(live_shop)["all"]
    assert (row.quiet_start, row.quiet_end, row.opted_out) == (start, end, False)
    with session_scope(live_shop) as session:
        prefs = load_preferences(session, [CUSTOMER])[CUSTOMER]
    hours = [int(part) for part in start.split(":")] + [int(part) for part in end.split(":")]
    assert prefs.quiet_hours == QuietHours(time(*hours[:2]), time(*hours[2:]))


def test_quiet_hours_without_a_time_are_asked_for(live_shop: str) -> None:
    (reply,) = say(ActionSetQuietHours(), "set_quiet_hours", "set quiet hours")
    assert "When should I keep quiet?" in reply
    assert stored(live_shop) == {}


def test_what_do_you_send_me_lists_every_topic_and_the_quiet_hours(live_shop: str) -> None:
    say(ActionStopNotifications(), "stop_notifications", "no renewal reminders", topic="renewal")
    say(ActionSetQuietHours(), "set_quiet_hours", "no messages after 10pm")

    (reply,) = say(ActionListNotifications(), "list_notifications", "what do you send me?")

    assert "subscription renewal reminders: off" in reply
    assert "shipping updates: on" in reply and "outage alerts (urgent): on" in reply
    assert "your quiet hours: 22:00–08:00" in reply
    assert "At most 1 a day and 3 a week non-urgent." in reply


@pytest.mark.parametrize(
    "action",
    [
        ActionStopNotifications(),
        ActionResumeNotifications(),
        ActionSetQuietHours(),
        ActionOnlyUrgentNotifications(),
        ActionListNotifications(),
    ],
)
def test_strangers_are_asked_to_sign_in_and_nothing_is_stored(
    live_shop: str, action: object
) -> None:
    result = run_action(
        action,
        Conversation(
            "web:anon-abcdef12",
            intent="stop_notifications",  # type: ignore[arg-type]
            text="no messages after 9pm",
        ),
    )
    assert result.responses == ["utter_sign_in_needed"]
    with session_scope(live_shop) as session:
        assert session.scalars(select(NotificationPreference)).all() == []

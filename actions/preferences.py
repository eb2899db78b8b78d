"""Notification preferences in chat: stop, resume, only urgent, quiet hours, what is on."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.base import CustomerAction, EventList
from bot.db.models import Customer
from bot.proactive import preferences
from bot.proactive.policy import QuietHours, ThrottlePolicy, cached_policy, format_duration
from bot.proactive.topics import ALL, TOPIC_LABELS, TOPICS
from bot.settings import get_settings

Buttons = list[dict[str, str]]


def requested_topics(tracker: Tracker) -> list[str]:
    """Topics named in the message, as the NLU's synonyms normalised them ("all" included)."""
    values = [str(v) for v in tracker.get_latest_entity_values("topic")]
    return [t for t in dict.fromkeys(values) if t in TOPIC_LABELS or t == ALL]


def label(topic: str) -> str:
    return "everything" if topic == ALL else TOPIC_LABELS[topic]


def labels(topics: list[str]) -> str:
    names = [label(t) for t in topics]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def urgent_topics() -> list[str]:
    return [t for t in TOPICS if throttle().topic(t).urgent]


def throttle() -> ThrottlePolicy:
    return cached_policy(get_settings().proactive_policy_path).throttle


def default_quiet_hours() -> QuietHours:
    # Without a policy default, "after 9pm" still needs a morning to end at.
    return throttle().default_quiet_hours or QuietHours(time(21), time(8))


def caps_text() -> str:
    """'At most 1 non-urgent message a day and 3 a week.' from the policy."""
    names = {timedelta(days=1): "a day", timedelta(days=7): "a week"}
    parts = [
        f"{cap.max_messages} {names.get(cap.window, 'per ' + format_duration(cap.window))}"
        for cap in throttle().caps
    ]
    if not parts:
        return ""
    listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    return f" At most {listed} non-urgent."


class ActionStopNotifications(CustomerAction):
    """'Stop sending me shipping updates'; without a topic, stop everything (easy to undo)."""

    def name(self) -> str:
        return "action_stop_notifications"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        topics = requested_topics(tracker) or [ALL]
        if ALL in topics:
            topics = [ALL]
        preferences.stop(session, customer, topics, datetime.now(UTC))
        if topics == [ALL]:
            dispatcher.utter_message(
                text="Done: I won't send you any more messages on my own, not even outage "
                'alerts. You can still ask me anything, and say "resume" to turn them back on.',
                buttons=[
                    {"title": "Keep outage alerts", "payload": "/only_urgent_notifications"},
                    {"title": "Undo", "payload": '/resume_notifications{"topic":"all"}'},
                ],
            )
            return []
        urgent = [t for t in topics if t in urgent_topics()]
        note = (
            f" Note that {labels(urgent)} can be urgent; you won't hear about them either."
            if urgent
            else ""
        )
        dispatcher.utter_message(
            text=f"Done: no more {labels(topics)}. Everything else stays as it was.{note}",
            buttons=[
                {"title": "Undo", "payload": f'/resume_notifications{{"topic":"{topics[0]}"}}'},
                {"title": "What do you send me?", "payload": "/list_notifications"},
            ],
        )
        return []


class ActionResumeNotifications(CustomerAction):
    """'Resume', 'start sending me shipping updates again'."""

    def name(self) -> str:
        return "action_resume_notifications"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        topics = requested_topics(tracker) or [ALL]
        if ALL in topics:
            topics = [ALL]
        before = preferences.current_rows(session, customer)
        stopped_all = ALL in before and before[ALL].opted_out
        preferences.resume(session, customer, topics, datetime.now(UTC))
        if topics == [ALL]:
            text = "Welcome back: all my messages are on again (within your quiet hours)."
        elif stopped_all:
            text = f"{labels(topics).capitalize()} are back on. Everything else stays off."
        else:
            text = f"{labels(topics).capitalize()} are back on."
        dispatcher.utter_message(
            text=text, buttons=[{"title": "What do you send me?", "payload": "/list_notifications"}]
        )
        return []


class ActionOnlyUrgentNotifications(CustomerAction):
    """'Only outages', 'only urgent stuff': keep those, stop the rest."""

    def name(self) -> str:
        return "action_only_urgent_notifications"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        keep = [t for t in requested_topics(tracker) if t != ALL]
        on = preferences.only(session, customer, keep, urgent_topics(), datetime.now(UTC))
        dispatcher.utter_message(
            text=f"Got it: from now on I'll only message you about {labels(on)}.",
            buttons=[
                {"title": "Undo", "payload": '/resume_notifications{"topic":"all"}'},
                {"title": "What do you send me?", "payload": "/list_notifications"},
            ],
        )
        return []


class ActionSetQuietHours(CustomerAction):
    """'No messages after 9pm', 'between 22:00 and 7:00': quiet hours in their time zone."""

    def name(self) -> str:
        return "action_set_quiet_hours"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        text = tracker.latest_message.get("text") or ""
        named = " and ".join(str(v) for v in tracker.get_latest_entity_values("time"))
        hours = preferences.parse_quiet_hours(text, default_quiet_hours())
        if hours is None and named:
            hours = preferences.parse_quiet_hours(named, default_quiet_hours())
        if hours is None:
            dispatcher.utter_message(
                text="When should I keep quiet? Tell me a time of day, for example "
                '"no messages after 9pm" or "between 22:00 and 7:00". (I can\'t do '
                "particular days yet.)",
                buttons=[
                    {
                        "title": "22:00 to 07:00",
                        "payload": '/set_quiet_hours{"time":"22:00-07:00"}',
                    },
                    {
                        "title": "21:00 to 08:00",
                        "payload": '/set_quiet_hours{"time":"21:00-08:00"}',
                    },
                ],
            )
            return []
        if hours.start == hours.end:
            dispatcher.utter_message(
                text="That window is empty; tell me when quiet hours should start and end."
            )
            return []
        preferences.set_quiet_hours(session, customer, hours, datetime.now(UTC))
        dispatcher.utter_message(
            text=f"Done: no messages from me between {hours.start:%H:%M} and "
            f"{hours.end:%H:%M} your time ({customer.timezone}). Urgent alerts such as "
            "outages still come through; anything else waits until the morning.",
            buttons=[{"title": "What do you send me?", "payload": "/list_notifications"}],
        )
        return []


class ActionListNotifications(CustomerAction):
    """'What do you send me?': every topic, on or off, and the quiet hours."""

    def name(self) -> str:
        return "action_list_notifications"

    def answer(
        self,
        session: Session,
        customer: Customer,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> EventList:
        rows = preferences.current_rows(session, customer)
        stopped_all = ALL in rows and rows[ALL].opted_out
        urgent = urgent_topics()
        lines = []
        for topic in TOPICS:
            off = stopped_all or (topic in rows and rows[topic].opted_out)
            mark = "off" if off else "on"
            flag = " (urgent)" if topic in urgent else ""
            lines.append(f"• {TOPIC_LABELS[topic]}{flag}: {mark}")
        mine = rows.get(ALL)
        if mine is not None and mine.quiet_start and mine.quiet_end:
            quiet = f"your quiet hours: {mine.quiet_start}–{mine.quiet_end}"
        else:
            default = default_quiet_hours()
            quiet = f"quiet hours: {default.start:%H:%M}–{default.end:%H:%M} (the default)"
        head = (
            "You've stopped all my messages. This is what you'd get otherwise:"
            if stopped_all
            else "Here's what I message you about:"
        )
        text = (
            f"{head}\n" + "\n".join(lines) + f"\nIn {customer.timezone} time, {quiet}; urgent "
            f"ones still come through.{caps_text()}"
        )
        buttons: Buttons = [
            {"title": "Only urgent ones", "payload": "/only_urgent_notifications"},
            {"title": "Set quiet hours", "payload": "/set_quiet_hours"},
        ]
        buttons.append(
            {"title": "Turn everything on", "payload": '/resume_notifications{"topic":"all"}'}
            if stopped_all or any(r.opted_out for r in rows.values())
            else {"title": "Stop everything", "payload": '/stop_notifications{"topic":"all"}'}
        )
        dispatcher.utter_message(text=text, buttons=buttons)
        return []

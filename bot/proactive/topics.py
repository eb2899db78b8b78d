"""The proactive topics a customer can hear about, and how they are named to customers."""

from __future__ import annotations

# The topic every preference row can also name: a global stop and the quiet hours.
ALL = "all"

# Topic -> how a customer would call it. Order is the order "what do you send me?" lists.
TOPIC_LABELS: dict[str, str] = {
    "shipping": "shipping updates",
    "setup_tips": "setup tips for new devices",
    "welcome": "welcome and getting-started messages",
    "outage": "outage alerts",
    "maintenance": "planned maintenance notices",
    "renewal": "subscription renewal reminders",
    "payment": "failed payment alerts",
    "ticket_followup": "follow-ups after a support ticket closes",
    "security": "account security alerts",
}
TOPICS = tuple(TOPIC_LABELS)


def intent_for(topic: str) -> str:
    """The Rasa intent a delivery triggers; its rule runs the action that words the message."""
    return f"EXTERNAL_{topic}"

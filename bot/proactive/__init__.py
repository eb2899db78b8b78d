"""Proactive support: events -> outreach rules -> outbox -> throttle -> dispatcher."""

"""Tables of the proactive side (events, outbox, decisions); filled in by the proactive work."""

from __future__ import annotations

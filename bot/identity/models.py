"""Tables of identity linking and API access; filled in by the identity work."""

from __future__ import annotations

"""Every table Herald owns, so alembic and the schema test see the whole schema."""

import bot.identity.models
import bot.proactive.models
from bot.db.models import Base

__all__ = ["Base", "bot"]

"""Herald's data: SQLAlchemy models, sessions and migrations."""

from bot.db.session import get_engine, migrate, session_scope

__all__ = ["get_engine", "migrate", "session_scope"]

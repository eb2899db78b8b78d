"""Alembic environment: runs Herald's migrations against the configured database."""

from alembic import context

from bot.db.all_models import Base
from bot.db.session import create_herald_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None
engine = create_herald_engine(url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # Rasa's SQL tracker store keeps its "events" table in the same database.
        include_name=lambda name, type_, _parent: not (type_ == "table" and name == "events"),
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()

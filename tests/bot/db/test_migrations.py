"""The migrations build the schema from empty on SQLite and PostgreSQL, matching the models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.db import migrate
from bot.db.all_models import Base
from bot.db.session import get_engine


def test_migrations_build_every_table_from_empty(empty_database: str) -> None:
    migrate(empty_database)

    tables = set(sa.inspect(get_engine(empty_database)).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_migrated_schema_matches_the_models(empty_database: str) -> None:
    migrate(empty_database)

    with get_engine(empty_database).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_migrating_twice_changes_nothing(empty_database: str) -> None:
    migrate(empty_database)
    migrate(empty_database)

    with get_engine(empty_database).connect() as connection:
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert version is not None

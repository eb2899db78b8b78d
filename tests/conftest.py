"""Shared fixtures: real databases (SQLite and PostgreSQL), the demo shop, settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.db import migrate, session_scope
from bot.db.demo import load_demo_data
from bot.settings import get_settings
from bot.stack import train_model

# PostgreSQL runs in CI (.ci/run starts it); tests create and drop their own databases.
POSTGRES_ADMIN_URL = os.environ.get(
    "HERALD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# A fixed clock for the demo shop, so facts in assertions do not drift.
DEMO_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _admin_engine() -> sa.Engine:
    return sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")


def create_postgres_database() -> str:
    name = f"herald_test_{uuid.uuid4().hex[:10]}"
    with _admin_engine().connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(url: str) -> None:
    from bot.db.session import get_engine

    get_engine(url).dispose()
    name = url.rsplit("/", 1)[1]
    with _admin_engine().connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind Herald supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'herald.db'}"
        return
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def database(empty_database: str) -> str:
    """A migrated, empty database of each kind."""
    migrate(empty_database)
    return empty_database


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite demo shop shared by read-only tests."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'herald.db'}"
    migrate(url)
    with session_scope(url) as session:
        load_demo_data(session, now=DEMO_NOW)
    return url


@pytest.fixture
def demo_settings(monkeypatch: pytest.MonkeyPatch, demo_database: str) -> Iterator[str]:
    """Herald's settings pointed at the demo shop, for code that reads get_settings()."""
    monkeypatch.setenv("HERALD_DATABASE_URL", demo_database)
    get_settings.cache_clear()
    yield demo_database
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The model `make run` uses; Rasa retrains only if data, domain or config changed.

    Shared by every test that needs a model (e2e, NLU quality), so one session trains once.
    """
    return train_model()

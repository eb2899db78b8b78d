"""Fixtures for the proactive side: a migrated shop, a fake Rasa, a clock, a dispatcher."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from proactive_fakes import Clock, FakeRasa
from proactive_shop import seed_catalog

from bot.db import migrate, session_scope
from bot.db.all_models import Base
from bot.db.session import get_engine
from bot.proactive.delivery import RasaDelivery
from bot.proactive.dispatcher import Dispatcher
from bot.proactive.policy import Policy, load_policy

# Friday 20 November 2026, 12:00 UTC: daytime in Berlin, so no default quiet hours.
NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _admin_url() -> str:
    from tests.conftest import POSTGRES_ADMIN_URL

    return POSTGRES_ADMIN_URL


@pytest.fixture(scope="session")
def shop_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A migrated SQLite file to copy, and one PostgreSQL database to empty, per session.

    Migrating for every test would take seconds each; copying a file or truncating the
    tables takes milliseconds and gives each test the same clean shop.
    """
    sqlite_file = tmp_path_factory.mktemp("shop-template") / "herald.db"
    templates = {"sqlite": f"sqlite:///{sqlite_file}"}
    admin = sa.create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"herald_proactive_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    templates["postgresql"] = _admin_url().rsplit("/", 1)[0] + f"/{name}"
    for url in templates.values():
        migrate(url)
    with session_scope(templates["sqlite"]) as session:
        seed_catalog(session)
    # Closing the last connection folds SQLite's write-ahead log into the file we copy.
    get_engine(templates["sqlite"]).dispose()
    yield templates
    get_engine(templates["postgresql"]).dispose()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def shop(request: pytest.FixtureRequest, shop_templates: dict[str, str], tmp_path: Path) -> str:
    """A migrated database (SQLite and PostgreSQL) holding just the product catalogue."""
    if request.param == "sqlite":
        target = tmp_path / "herald.db"
        shutil.copy(shop_templates["sqlite"].split("///", 1)[1], target)
        return f"sqlite:///{target}"
    url = shop_templates["postgresql"]
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with get_engine(url).begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        # Rasa's tracker store table, if a test made one.
        connection.execute(sa.text("DROP TABLE IF EXISTS events"))
    with session_scope(url) as session:
        seed_catalog(session)
    return url


@pytest.fixture
def policy() -> Policy:
    return load_policy()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON)


@pytest.fixture
def fake_rasa(shop: str) -> Iterator[FakeRasa]:
    fake = FakeRasa(shop).start()
    yield fake
    fake.stop()


DispatcherFactory = Callable[..., Dispatcher]


@pytest.fixture
async def make_dispatcher(
    shop: str, fake_rasa: FakeRasa, clock: Clock, policy: Policy
) -> AsyncIterator[DispatcherFactory]:
    made: list[Dispatcher] = []

    def make(**overrides: object) -> Dispatcher:
        options: dict[str, object] = {
            "database_url": shop,
            "policy": policy,
            "delivery": RasaDelivery(fake_rasa.url, "rasa-token", timeout=5),
            "clock": clock,
        }
        options.update(overrides)
        dispatcher = Dispatcher(**options)  # type: ignore[arg-type]
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        await dispatcher.delivery.close()

"""Scale-out configuration: the PostgreSQL database, the nginx config, the processes."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from bot.db.models import Customer
from bot.db.session import session_scope
from bot.scale import (
    ScaleConfig,
    ScaleError,
    ScaleStack,
    ensure_postgres_database,
    nginx_binary,
    prepare_scale_database,
)
from bot.settings import Settings
from tests.conftest import POSTGRES_ADMIN_URL, drop_postgres_database

pytestmark = pytest.mark.postgres


def scale_config(tmp_path: Path, **changes: object) -> ScaleConfig:
    config = ScaleConfig(
        database_url="postgresql+psycopg://postgres@127.0.0.1:5432/herald_scale",
        var_dir=tmp_path,
        secrets={"HERALD_RASA_API_TOKEN": "api-token"},
        rasa_port=6005,
        action_port=6055,
        rasa_replica_ports=[6105, 6106, 6107],
        action_server_ports=[6155, 6156],
        worker_ports=[6201, 6202],
        namespace="testscale",
    )
    return replace(config, **changes)  # type: ignore[arg-type]


def test_scale_out_refuses_sqlite_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ScaleError, match="needs PostgreSQL"):
        scale_config(tmp_path, database_url=f"sqlite:///{tmp_path / 'herald.db'}")


def test_nginx_accepts_the_rendered_proxy_config(tmp_path: Path) -> None:
    config = scale_config(tmp_path)
    run_dir, log_dir = tmp_path / "run", tmp_path / "logs"
    run_dir.mkdir()
    log_dir.mkdir()
    conf = run_dir / "nginx.conf"
    conf.write_text(config.render_nginx(run_dir, log_dir))

    check = subprocess.run(
        [nginx_binary(), "-t", "-p", str(run_dir), "-c", str(conf), "-e", str(log_dir / "e.log")],
        capture_output=True,
        text=True,
    )

    assert check.returncode == 0, check.stderr
    text = conf.read_text()
    for port in config.rasa_replica_ports:
        # In the balanced upstream and in the sticky one for long-polling socket.io.
        assert text.count(f"server 127.0.0.1:{port} ") == 2
    for port in config.action_server_ports:
        assert text.count(f"server 127.0.0.1:{port} ") == 1
    assert "listen 127.0.0.1:6005;" in text and "listen 127.0.0.1:6055;" in text


def test_every_replica_shares_postgres_redis_and_the_proxy(tmp_path: Path) -> None:
    config = scale_config(tmp_path)
    env = config.env()

    assert env["HERALD_TRACKER_DIALECT"] == "postgresql"
    assert env["HERALD_TRACKER_URL"] == "postgresql://postgres@127.0.0.1:5432/herald_scale"
    assert env["HERALD_LOCK_STORE"] == "connectors.lock_store.ReplicaSafeRedisLockStore"
    assert env["HERALD_LOCK_KEY_PREFIX"] == "testscale"
    assert env["HERALD_SOCKETIO_REDIS_URL"] == "redis://127.0.0.1:6379/0"
    # The proactive workers pace together, in this deployment's keys.
    assert env["HERALD_PACING_REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert env["HERALD_PACING_KEY_PREFIX"] == "testscale"
    # Rasa calls the action servers, and the workers call Rasa, through nginx.
    assert env["HERALD_ACTION_URL"] == "http://127.0.0.1:6055/webhook"
    assert env["HERALD_RASA_URL"] == "http://127.0.0.1:6005"
    checks = ScaleStack(config).health_checks()
    assert set(checks) == {
        "proxy",
        "rasa-1",
        "rasa-2",
        "rasa-3",
        "actions-1",
        "actions-2",
        "app",
        "worker-1",
        "worker-2",
    }


def test_first_run_creates_migrates_and_fills_the_database(tmp_path: Path) -> None:
    name = f"herald_scale_test_{uuid.uuid4().hex[:8]}"
    url = str(sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(False))
    settings = Settings(database_url=url, var_dir=tmp_path, demo_mode=True)
    try:
        prepare_scale_database(settings)
        with session_scope(url) as session:
            customers = session.scalar(select(func.count()).select_from(Customer))
        assert customers

        # The second run finds everything in place and changes nothing.
        assert not ensure_postgres_database(url)
        prepare_scale_database(settings)
        with session_scope(url) as session:
            assert session.scalar(select(func.count()).select_from(Customer)) == customers
    finally:
        drop_postgres_database(url)

"""Scale-out mode: PostgreSQL, Redis locks and several replicas of each server behind nginx.

The same code as the embedded stack, configured differently: Rasa keeps conversations in
PostgreSQL and locks them in Redis, so any replica can serve any message; socket.io emits
go through Redis, so a proactive message reaches the browser whichever replica sent it;
nginx spreads traffic over the Rasa replicas and over the action servers.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import func, select

from bot.settings import PROJECT_ROOT, Settings
from bot.stack import (
    APP_PYTHON,
    MODEL_NAME,
    MODELS_DIR,
    Stack,
    StackConfig,
    action_server_command,
    rasa_command,
    rasa_env,
)

NGINX_TEMPLATE = PROJECT_ROOT / "deploy" / "nginx" / "herald-scale.conf.template"
# Replicas listen next to the ports the proxy answers on (5005 for Rasa, 5055 for actions).
REPLICA_PORT_OFFSET = 100
PROXY_HEALTH_PATH = "/proxy-health"


class ScaleError(RuntimeError):
    """Scale-out mode cannot start as configured (no PostgreSQL, no nginx)."""


def nginx_binary() -> str:
    """Debian installs nginx to /usr/sbin, which is not on every user's PATH."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise ScaleError("scale-out mode needs nginx: run deploy/install-nginx.sh")
    return found


@dataclass
class ScaleConfig(StackConfig):
    """A stack whose rasa_port and action_port belong to the proxy; replicas sit behind it."""

    # Rasa's own "redis" lock store can hand two replicas the same ticket at once and lose
    # events (RasaHQ/rasa#9213); this one changes tickets in Redis transactions.
    lock_store: str = "connectors.lock_store.ReplicaSafeRedisLockStore"
    rasa_replica_ports: list[int] = field(default_factory=list)
    action_server_ports: list[int] = field(default_factory=list)
    # One proactive worker (dispatch loop, scans) per port, each with a health endpoint;
    # on PostgreSQL they claim outreach rows with FOR UPDATE SKIP LOCKED.
    worker_ports: list[int] = field(default_factory=list)
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    # Prefix of this stack's lock keys and name of its socket.io channel, so that several
    # stacks (tests, benchmarks, a developer's `make run-scale`) can share one Redis.
    namespace: str = "herald"
    # A replica killed while holding a conversation's lock blocks that conversation until
    # the lock expires; Rasa's default is 60 s. Replies take well under a second.
    lock_lifetime_seconds: int = 20
    nginx_worker_processes: int = 1
    # Every replica loads the model at once; on a busy 2-core machine that takes minutes.
    ready_timeout_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not self.database_url.startswith("postgresql"):
            raise ScaleError(
                "scale-out mode needs PostgreSQL: set HERALD_DATABASE_URL to "
                "postgresql+psycopg://user@host:5432/herald_scale"
            )
        if not self.namespace.isalnum():
            raise ScaleError(f"namespace must be letters and digits, not {self.namespace!r}")
        if not self.rasa_replica_ports or not self.action_server_ports:
            raise ScaleError("scale-out mode needs at least one Rasa replica and action server")

    @classmethod
    def from_settings(
        cls, settings: Settings, secrets: dict[str, str], model: Path | None = None
    ) -> ScaleConfig:
        """What `herald up --scale` runs: nginx on the embedded ports, replicas next to them."""
        return cls(
            database_url=settings.database_url,
            var_dir=settings.var_dir,
            secrets=secrets,
            model=model or MODELS_DIR / f"{MODEL_NAME}.tar.gz",
            app_port=settings.app_port,
            rasa_replica_ports=[
                cls.rasa_port + REPLICA_PORT_OFFSET + i for i in range(settings.rasa_replicas)
            ],
            action_server_ports=[
                cls.action_port + REPLICA_PORT_OFFSET + i for i in range(settings.action_servers)
            ],
            worker_ports=[settings.worker_port + i for i in range(settings.dispatchers)],
            redis_host=settings.redis_host,
            redis_port=settings.redis_port,
        )

    def replica_url(self, port: int) -> str:
        return f"http://{self.host}:{port}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.redis_host}:{self.redis_port}/0"

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "HERALD_LOCK_STORE": self.lock_store,
            "HERALD_REDIS_HOST": self.redis_host,
            "HERALD_REDIS_PORT": str(self.redis_port),
            "HERALD_LOCK_KEY_PREFIX": self.namespace,
            "HERALD_SOCKETIO_REDIS_URL": self.redis_url,
            "HERALD_SOCKETIO_CHANNEL": f"{self.namespace}-socketio",
            # The proactive workers share one pace per platform.
            "HERALD_PACING_REDIS_URL": self.redis_url,
            "HERALD_PACING_KEY_PREFIX": self.namespace,
            "TICKET_LOCK_LIFETIME": str(self.lock_lifetime_seconds),
            **self.extra_env,
        }

    def render_nginx(self, run_dir: Path, log_dir: Path) -> str:
        """The proxy's configuration, from deploy/nginx/herald-scale.conf.template."""

        def servers(ports: list[int]) -> str:
            # A replica that refuses one connection is left alone for 5 s, then tried again.
            return "\n".join(
                f"        server {self.host}:{port} max_fails=1 fail_timeout=5s;" for port in ports
            )

        values = {
            "worker_processes": str(self.nginx_worker_processes),
            "run_dir": str(run_dir),
            "log_dir": str(log_dir),
            "host": self.host,
            "rasa_port": str(self.rasa_port),
            "action_port": str(self.action_port),
            "rasa_servers": servers(self.rasa_replica_ports),
            "action_servers": servers(self.action_server_ports),
            "proxy_health_path": PROXY_HEALTH_PATH,
        }
        template = NGINX_TEMPLATE.read_text()
        rendered = re.sub(r"{{ (\w+) }}", lambda match: values[match.group(1)], template)
        return rendered


@dataclass
class ScaleStack(Stack):
    """The processes of a scaled-out Herald: proxy, replicas, app server and dispatchers."""

    config: ScaleConfig

    @property
    def log_dir(self) -> Path:
        return self.config.log_dir or self.config.var_dir / "logs"

    @property
    def workers(self) -> dict[str, int]:
        """Proactive workers by process name, with the port of each one's health endpoint."""
        return {f"worker-{i}": port for i, port in enumerate(self.config.worker_ports, start=1)}

    @property
    def rasa_replicas(self) -> list[str]:
        return [f"rasa-{i}" for i in range(1, len(self.config.rasa_replica_ports) + 1)]

    def start(self) -> None:
        env = self.config.env()
        self._start_proxy()
        for number, port in enumerate(self.config.action_server_ports, start=1):
            self._spawn(f"actions-{number}", action_server_command(port), env)
        for name, port in zip(self.rasa_replicas, self.config.rasa_replica_ports, strict=True):
            self._spawn(name, rasa_command(self.config, port), rasa_env(env))
        self._spawn("app", [str(APP_PYTHON), "-m", "bot.cli", "serve-api"], env)
        for name, port in self.workers.items():
            self._spawn(name, worker_command(port), env)
        self.wait_ready(self.config.ready_timeout_seconds)

    def _start_proxy(self) -> None:
        run_dir = self.config.var_dir / "scale"
        run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        conf = run_dir / "nginx.conf"
        conf.write_text(self.config.render_nginx(run_dir, self.log_dir))
        command = [
            nginx_binary(),
            "-p",
            str(run_dir),
            "-c",
            str(conf),
            "-e",
            str(self.log_dir / "proxy.log"),
        ]
        # Check first: a bad configuration should say why, not time out later.
        check = subprocess.run(  # noqa: S603 (Debian's nginx, a config we rendered)
            [*command, "-t", "-q"], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise ScaleError(f"nginx rejected {conf}: {check.stderr.strip()}")
        self._spawn("proxy", command, {})

    def health_checks(self) -> dict[str, str]:
        token = self.config.secrets["HERALD_RASA_API_TOKEN"]
        checks = {"proxy": f"{self.config.rasa_url}{PROXY_HEALTH_PATH}"}
        for number, port in enumerate(self.config.action_server_ports, start=1):
            checks[f"actions-{number}"] = f"{self.config.replica_url(port)}/health"
        for name, port in zip(self.rasa_replicas, self.config.rasa_replica_ports, strict=True):
            checks[name] = f"{self.config.replica_url(port)}/status?token={token}"
        checks["app"] = f"{self.config.app_url}/health"
        for name, port in self.workers.items():
            checks[name] = f"{self.config.replica_url(port)}/health"
        return checks


def worker_command(port: int) -> list[str]:
    """A proactive worker with its health endpoint on `port`."""
    return [str(APP_PYTHON), "-m", "bot.cli", "worker", "--port", str(port)]


@contextmanager
def running_scale_stack(config: ScaleConfig) -> Iterator[ScaleStack]:
    stack = ScaleStack(config)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def ensure_postgres_database(url: str) -> bool:
    """Create the database named in `url` if the server lacks it; True if it was created."""
    target = sa.make_url(url)
    name = target.database
    if not name:
        raise ScaleError(f"no database name in {target.render_as_string(hide_password=True)}")
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if exists:
                return False
            quoted = admin.dialect.identifier_preparer.quote(name)
            connection.execute(sa.text(f"CREATE DATABASE {quoted}"))
            return True
    finally:
        admin.dispose()


def prepare_scale_database(settings: Settings) -> None:
    """Create and migrate the PostgreSQL database; load the demo shop into it in demo mode."""
    from bot.db import migrate, session_scope
    from bot.db.demo import load_demo_data
    from bot.db.models import Customer

    if settings.is_sqlite:
        raise ScaleError(
            "scale-out mode needs PostgreSQL: set HERALD_DATABASE_URL to "
            "postgresql+psycopg://user@host:5432/herald_scale"
        )
    if ensure_postgres_database(settings.database_url):
        print(f"created database {sa.make_url(settings.database_url).database}", flush=True)
    migrate(settings.database_url)
    if settings.demo_mode:
        with session_scope(settings.database_url) as session:
            if not session.scalar(select(func.count()).select_from(Customer)):
                print(f"loaded demo shop: {load_demo_data(session)}", flush=True)


def up_scale(settings: Settings) -> int:
    """`herald up --scale`: prepare PostgreSQL, start every replica, stop them on Ctrl-C."""
    from bot.stack import ensure_local_secrets, train_model

    try:
        prepare_scale_database(settings)
        secrets = ensure_local_secrets(settings.var_dir)
        print("training the model if data or config changed…", flush=True)
        config = ScaleConfig.from_settings(settings, secrets, train_model())
        nginx_binary()
    except ScaleError as error:
        print(error, file=sys.stderr)
        return 2
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    print(
        f"starting nginx, {len(config.rasa_replica_ports)} Rasa replicas, "
        f"{len(config.action_server_ports)} action servers, {len(config.worker_ports)} "
        "proactive workers and the web server…",
        flush=True,
    )
    with running_scale_stack(config) as stack:
        print(
            f"\n  Herald (scale-out) is running. Open {config.app_url}/ to chat.\n"
            f"  Rasa behind nginx: {config.rasa_url} -> "
            + ", ".join(config.replica_url(port) for port in config.rasa_replica_ports)
            + f"\n  Processes: {', '.join(stack.processes)}."
            f"\n  Logs: {stack.log_dir}. Press Ctrl-C to stop.\n",
            flush=True,
        )
        stopped.wait()
        print("stopping…", flush=True)
    return 0

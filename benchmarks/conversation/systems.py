"""The systems under test, each started fresh: Herald embedded, Herald scale-out, plain Rasa."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import func, select

from benchmarks.conversation.script import SimulatedCustomer
from bot.db import migrate, session_scope
from bot.db.demo import load_demo_data
from bot.db.models import Order
from bot.identity.tokens import sign_customer_token
from bot.scale import ScaleConfig, ensure_postgres_database, running_scale_stack
from bot.settings import PROJECT_ROOT
from bot.stack import RASA_BIN, StackConfig, ensure_local_secrets, rasa_env, running_stack

# Enough demo customers that no two load runs of one system share a conversation.
DEMO_CUSTOMERS = 800
POSTGRES_URL = os.environ.get(
    "HERALD_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# Plain Rasa's `rasa init` project is trained once and kept here between runs.
RASA_DEFAULT_PROJECT = PROJECT_ROOT / "var" / "bench" / "rasa-default"


@dataclass
class RunningSystem:
    """A started system: where clients talk to it, its customers, and its processes."""

    name: str
    url: str
    processes: dict[str, subprocess.Popen[bytes]]
    customers: list[SimulatedCustomer]
    replicas: int = 1
    _handed_out: int = field(default=0, repr=False)

    def take_customers(self, count: int) -> list[SimulatedCustomer]:
        """Customers nobody has talked as yet, so every run starts fresh conversations."""
        start = self._handed_out
        self._handed_out += count
        if self._handed_out > len(self.customers):
            raise RuntimeError(f"{self.name}: only {len(self.customers)} customers to hand out")
        return self.customers[start : self._handed_out]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_customers(database_url: str, secret: str) -> list[SimulatedCustomer]:
    """Demo customers who have an order, each signed in with a shop token."""
    with session_scope(database_url) as session:
        rows = session.execute(
            select(Order.customer_id, func.max(Order.number))
            .group_by(Order.customer_id)
            .order_by(Order.customer_id)
        ).all()
    return [
        SimulatedCustomer(
            sender=f"web:{customer_id}",
            order_number=number,
            token=sign_customer_token(customer_id, secret),
        )
        for customer_id, number in rows
    ]


def _quiet_proactive_policy(var_dir: Path) -> dict[str, str]:
    """The production policy with the periodic scans off.

    On a fresh demo shop the first scan queues a few hundred renewal and maintenance
    notices at once; their delivery through Rasa would compete with the conversations
    being measured. The workers still run their dispatch loop.
    """
    var_dir.mkdir(parents=True, exist_ok=True)
    policy = var_dir / "proactive-policy.yml"
    policy.write_text("scans:\n  enabled: false\n")
    return {"HERALD_PROACTIVE_POLICY": str(policy)}


def _load_demo_shop(database_url: str) -> None:
    migrate(database_url)
    with session_scope(database_url) as session:
        load_demo_data(session, customers=DEMO_CUSTOMERS)


@contextmanager
def herald_embedded(work: Path, model: Path) -> Iterator[RunningSystem]:
    """`make run`'s stack: SQLite, in-memory lock store, one process of each kind."""
    var_dir = work / f"embedded-{uuid.uuid4().hex[:6]}"
    database_url = f"sqlite:///{var_dir / 'herald.db'}"
    _load_demo_shop(database_url)
    secrets = ensure_local_secrets(var_dir)
    config = StackConfig(
        database_url=database_url,
        var_dir=var_dir,
        secrets=secrets,
        model=model,
        rasa_port=free_port(),
        action_port=free_port(),
        app_port=free_port(),
        worker_port=free_port(),
        extra_env=_quiet_proactive_policy(var_dir),
        ready_timeout_seconds=900,
    )
    with running_stack(config) as stack:
        yield RunningSystem(
            name="Herald embedded",
            url=config.rasa_url,
            processes=stack.processes,
            customers=demo_customers(database_url, secrets["HERALD_CUSTOMER_TOKEN_SECRET"]),
        )


@contextmanager
def herald_scale_out(
    work: Path, model: Path, replicas: int, workers: int = 2
) -> Iterator[RunningSystem]:
    """`make run-scale`'s stack: PostgreSQL, Redis, `replicas` Rasa replicas behind nginx."""
    name = f"herald_bench_{uuid.uuid4().hex[:8]}"
    database_url = str(sa.make_url(POSTGRES_URL).set(database=name).render_as_string(False))
    ensure_postgres_database(database_url)
    try:
        _load_demo_shop(database_url)
        var_dir = work / f"scale-{replicas}-{uuid.uuid4().hex[:6]}"
        secrets = ensure_local_secrets(var_dir)
        config = ScaleConfig(
            database_url=database_url,
            var_dir=var_dir,
            secrets=secrets,
            model=model,
            rasa_port=free_port(),
            action_port=free_port(),
            app_port=free_port(),
            rasa_replica_ports=[free_port() for _ in range(replicas)],
            action_server_ports=[free_port() for _ in range(2)],
            namespace=f"bench{uuid.uuid4().hex[:8]}",
            worker_ports=[free_port() for _ in range(workers)],
            extra_env=_quiet_proactive_policy(var_dir),
            nginx_worker_processes=1,
            ready_timeout_seconds=900,
        )
        with running_scale_stack(config) as stack:
            yield RunningSystem(
                name=f"Herald scale-out ({replicas} replica{'s' if replicas > 1 else ''})",
                url=config.rasa_url,
                processes=stack.processes,
                customers=demo_customers(database_url, secrets["HERALD_CUSTOMER_TOKEN_SECRET"]),
                replicas=replicas,
            )
    finally:
        _drop_postgres_database(database_url)


def _drop_postgres_database(url: str) -> None:
    from bot.db.session import get_engine

    get_engine(url).dispose()
    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            quoted = admin.dialect.identifier_preparer.quote(target.database or "")
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
    finally:
        admin.dispose()


def rasa_default_model() -> Path:
    """Plain Rasa 3.6's own starter project (`rasa init`), trained once and then reused."""
    models = sorted((RASA_DEFAULT_PROJECT / "models").glob("*.tar.gz"))
    if models:
        return models[-1]
    shutil.rmtree(RASA_DEFAULT_PROJECT, ignore_errors=True)
    RASA_DEFAULT_PROJECT.mkdir(parents=True)
    print("  rasa init --no-prompt (trains Rasa's default project, once)…", flush=True)
    subprocess.run(
        [str(RASA_BIN), "init", "--no-prompt", "--init-dir", str(RASA_DEFAULT_PROJECT)],
        cwd=RASA_DEFAULT_PROJECT,
        env=_plain_rasa_env(),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return sorted((RASA_DEFAULT_PROJECT / "models").glob("*.tar.gz"))[-1]


def _plain_rasa_env() -> dict[str, str]:
    env = rasa_env({})
    # Plain Rasa must not see our connectors or actions: only its own project.
    env["PYTHONPATH"] = str(RASA_DEFAULT_PROJECT)
    return env


@contextmanager
def plain_rasa(work: Path) -> Iterator[RunningSystem]:
    """`rasa run --enable-api` and `rasa run actions` on the default project, as shipped.

    The only additions are the socket.io channel (commented out in the template) and the
    action endpoint, so that both channels and the action server take part.
    """
    model = rasa_default_model()
    run_dir = work / f"rasa-default-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir(parents=True)
    rasa_port, action_port = free_port(), free_port()
    credentials = run_dir / "credentials.yml"
    credentials.write_text(
        "rest:\n"
        "socketio:\n"
        "  user_message_evt: user_uttered\n"
        "  bot_message_evt: bot_uttered\n"
        "  session_persistence: false\n"
    )
    endpoints = run_dir / "endpoints.yml"
    endpoints.write_text(f"action_endpoint:\n  url: http://127.0.0.1:{action_port}/webhook\n")
    commands = {
        "actions": [str(RASA_BIN), "run", "actions", "--port", str(action_port)],
        "rasa": [
            str(RASA_BIN),
            "run",
            "--enable-api",
            "--model",
            str(model),
            "--credentials",
            str(credentials),
            "--endpoints",
            str(endpoints),
            "--port",
            str(rasa_port),
            "--interface",
            "127.0.0.1",
        ],
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            log = (run_dir / f"{name}.log").open("ab")
            processes[name] = subprocess.Popen(
                command,
                cwd=RASA_DEFAULT_PROJECT,
                env=_plain_rasa_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_until_up(
            processes,
            {
                "actions": f"http://127.0.0.1:{action_port}/health",
                "rasa": f"http://127.0.0.1:{rasa_port}/status",
            },
        )
        yield RunningSystem(
            name="plain Rasa 3.6 (rasa init)",
            url=f"http://127.0.0.1:{rasa_port}",
            processes=processes,
            customers=[
                SimulatedCustomer(sender=f"customer-{i}", order_number=10001 + i)
                for i in range(DEMO_CUSTOMERS)
            ],
        )
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_until_up(
    processes: dict[str, subprocess.Popen[bytes]], checks: dict[str, str], timeout: float = 900
) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(checks)
    while pending:
        for name, url in list(pending.items()):
            if processes[name].poll() is not None:
                raise RuntimeError(f"plain Rasa's {name} exited; see its log")
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status == 200:
                        del pending[name]
            except (urllib.error.URLError, OSError):
                pass
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"plain Rasa not up after {timeout:.0f}s: {', '.join(pending)}")
        time.sleep(0.5)

"""Start and stop Herald's processes: the action server, Rasa, and the app's HTTP server.

`make run` and the end-to-end tests use the same code, so what the tests exercise is
what a person gets.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bot.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

RASA_BIN = PROJECT_ROOT / ".venv-rasa" / "bin" / "rasa"
APP_PYTHON = Path(sys.executable)
MODELS_DIR = PROJECT_ROOT / "models"
MODEL_NAME = "herald"
SECRET_NAMES = (
    "HERALD_CUSTOMER_TOKEN_SECRET",
    "HERALD_ACTION_SERVER_TOKEN",
    "HERALD_RASA_API_TOKEN",
    "HERALD_API_ADMIN_KEY",
    "HERALD_API_EVENTS_KEY",
    "HERALD_INTERNAL_API_KEY",
    # identity: key of the hash one-time link codes are stored under.
    "HERALD_LINK_CODE_SECRET",
    # channels: Telegram sends it back with every webhook update (`herald telegram set-webhook`).
    "HERALD_TELEGRAM_WEBHOOK_SECRET",
)


def ensure_local_secrets(var_dir: Path) -> dict[str, str]:
    """Generate this machine's secrets on first run; they live in var/ and are never committed."""
    path = var_dir / "secrets.env"
    existing: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                existing[key.strip()] = value.strip()
    missing = [name for name in SECRET_NAMES if not existing.get(name)]
    if missing:
        existing.update({name: secrets.token_urlsafe(32) for name in missing})
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in existing.items()))
        path.chmod(0o600)
    return existing


def train_model(*, force: bool = False, out: Path = MODELS_DIR) -> Path:
    """Train only when data, domain or config changed since the last model (Rasa's fingerprint).

    A file lock serialises concurrent callers (parallel test runs, `make run` while testing):
    the second one finds the model already up to date instead of training it again.
    """
    model = out / f"{MODEL_NAME}.tar.gz"
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / f"{MODEL_NAME}.inputs.sha256"
    with (out / ".train.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        inputs = training_inputs_digest()
        # Rasa would also notice nothing changed, but only after ~a minute of loading and
        # repackaging; our own digest of its inputs makes the no-change case instant.
        if force or not model.exists() or not stamp.exists() or stamp.read_text() != inputs:
            _train(model, force=force, out=out)
            stamp.write_text(inputs)
    return model


def training_inputs_digest() -> str:
    """A digest of everything `rasa train` reads: config, domain, training data, Rasa version."""
    digest = hashlib.sha256()
    paths = [PROJECT_ROOT / name for name in ("config.yml", "domain.yml", "requirements/rasa.lock")]
    paths += sorted((PROJECT_ROOT / "data").rglob("*.yml"))
    for path in paths:
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


# The project Rasa trains and validates, as `rasa` command-line arguments (cwd: the project root).
RASA_PROJECT = ("--config", "config.yml", "--domain", "domain.yml", "--data", "data")


def _train(model: Path, *, force: bool, out: Path) -> None:
    command = [
        str(RASA_BIN),
        "train",
        *RASA_PROJECT,
        "--out",
        str(out),
        "--fixed-model-name",
        MODEL_NAME,
    ]
    if force:
        command.append("--force")
    subprocess.run(command, cwd=PROJECT_ROOT, check=True, env=rasa_env({}))


def action_server_command(port: int) -> list[str]:
    """Our rasa-sdk action server on `port`."""
    return [str(APP_PYTHON), "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)]


def rasa_command(config: StackConfig, port: int) -> list[str]:
    """`rasa run` with our endpoints and channels on `port`, its HTTP API behind a token.

    The token reaches Rasa through HERALD_RASA_API_TOKEN in its environment, never argv
    (rasa_components/launcher.py, which also swaps in our hot paths).
    """
    return [
        str(RASA_BIN.parent / "python"),
        "-m",
        "rasa_components.launcher",
        "run",
        "--model",
        str(config.model),
        "--endpoints",
        "endpoints.yml",
        "--credentials",
        "credentials.yml",
        "--enable-api",
        "--port",
        str(port),
        "--interface",
        config.host,
        "--cors",
        "*",
    ]


def rasa_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {**os.environ, **extra}
    # connectors/ is imported by the Rasa runtime from the project root, never installed.
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    return env


def tracker_store_env(database_url: str) -> dict[str, str]:
    """Rasa's SQL tracker store shares our database; Rasa's SQLAlchemy 1.4 wants its own URL."""
    if database_url.startswith("sqlite"):
        return {"HERALD_TRACKER_DIALECT": "sqlite", "HERALD_TRACKER_URL": database_url}
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    return {"HERALD_TRACKER_DIALECT": "postgresql", "HERALD_TRACKER_URL": url}


@dataclass
class StackConfig:
    database_url: str
    var_dir: Path
    secrets: dict[str, str]
    model: Path = MODELS_DIR / f"{MODEL_NAME}.tar.gz"
    host: str = "127.0.0.1"
    rasa_port: int = 5005
    action_port: int = 5055
    app_port: int = 8000
    # proactive: the worker's health endpoint.
    worker_port: int = 8001
    lock_store: str = "in_memory"
    extra_env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    # Loading the model takes Rasa seconds on an idle machine, minutes on a busy one.
    # Loading the model takes minutes on a busy 2-core machine; a slow start is not a failure.
    ready_timeout_seconds: float = 600.0

    @property
    def rasa_url(self) -> str:
        return f"http://{self.host}:{self.rasa_port}"

    @property
    def action_url(self) -> str:
        return f"http://{self.host}:{self.action_port}"

    @property
    def app_url(self) -> str:
        return f"http://{self.host}:{self.app_port}"

    @property
    def worker_url(self) -> str:
        return f"http://{self.host}:{self.worker_port}"

    def env(self) -> dict[str, str]:
        return {
            **self.secrets,
            "HERALD_DATABASE_URL": self.database_url,
            "HERALD_VAR_DIR": str(self.var_dir),
            "HERALD_RASA_URL": self.rasa_url,
            "HERALD_ACTION_URL": f"{self.action_url}/webhook",
            "HERALD_APP_HOST": self.host,
            "HERALD_APP_PORT": str(self.app_port),
            "HERALD_APP_URL": self.app_url,
            "HERALD_WORKER_PORT": str(self.worker_port),
            "HERALD_LOCK_STORE": self.lock_store,
            "HERALD_REDIS_HOST": os.environ.get("HERALD_REDIS_HOST", "127.0.0.1"),
            "HERALD_REDIS_PORT": os.environ.get("HERALD_REDIS_PORT", "6379"),
            "HERALD_LOCK_KEY_PREFIX": "herald",
            **tracker_store_env(self.database_url),
            **self.extra_env,
        }


@dataclass
class Stack:
    """The running processes of one Herald; stop() ends them all."""

    config: StackConfig
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self) -> None:
        env = self.config.env()
        self._spawn("actions", action_server_command(self.config.action_port), env)
        self._spawn("rasa", rasa_command(self.config, self.config.rasa_port), rasa_env(env))
        self._spawn("app", [str(APP_PYTHON), "-m", "bot.cli", "serve-api"], env)
        # proactive: the dispatch loop and scans, delivering through Rasa's API.
        self._spawn("worker", [str(APP_PYTHON), "-m", "bot.cli", "worker"], env)
        self.wait_ready(self.config.ready_timeout_seconds)

    def _spawn(self, name: str, command: list[str], env: Mapping[str, str]) -> None:
        log_dir = self.config.log_dir or self.config.var_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = (log_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def health_checks(self) -> dict[str, str]:
        """The URL that answers 200 once each process is ready, by process name."""
        api_token = self.config.secrets["HERALD_RASA_API_TOKEN"]
        return {
            "actions": f"{self.config.action_url}/health",
            "rasa": f"{self.config.rasa_url}/status?token={api_token}",
            "app": f"{self.config.app_url}/health",
            "worker": f"{self.config.worker_url}/health",
        }

    def wait_ready(self, timeout: float = 600.0) -> None:
        checks = self.health_checks()
        deadline = time.monotonic() + timeout
        pending = {name: url for name, url in checks.items() if name in self.processes}
        while pending:
            for name, url in list(pending.items()):
                process = self.processes[name]
                if process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{name} exited with {process.returncode}; see its log")
                if _responds(url):
                    del pending[name]
            if pending and time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"not ready after {timeout:.0f}s: {', '.join(pending)}")
            time.sleep(0.3)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


def _responds(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 (local health URL)
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_stack(config: StackConfig) -> Iterator[Stack]:
    stack = Stack(config)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()

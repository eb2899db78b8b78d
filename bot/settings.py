"""Herald's settings, read from the environment in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _var_dir() -> Path:
    return Path(os.environ.get("HERALD_VAR_DIR", PROJECT_ROOT / "var"))


def _default_database_url() -> str:
    return f"sqlite:///{_var_dir() / 'herald.db'}"


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults `make run` uses on a laptop."""

    database_url: str = field(default_factory=_default_database_url)
    # HS256 secret the shop's website signs customer tokens with.
    customer_token_secret: str = ""
    # Shared secret Rasa sends to the action server in a header.
    action_server_token: str = ""
    # Token for Rasa's own HTTP API (trigger_intent, tracker reads).
    rasa_api_token: str = ""
    # App API keys: events intake, admin and reports, and connectors reporting back.
    api_events_key: str = ""
    api_admin_key: str = ""
    internal_api_key: str = ""
    rasa_url: str = "http://127.0.0.1:5005"
    # Where a browser reaches Rasa's socket.io endpoint (differs from rasa_url behind a proxy).
    rasa_public_url: str = "http://127.0.0.1:5005"
    # The demo shop page signs tokens for any demo customer: never on in production.
    demo_mode: bool = True
    app_host: str = "127.0.0.1"
    app_port: int = 8000
    # How long a demo token signed by the demo page stays valid.
    demo_token_ttl_seconds: int = 8 * 3600
    var_dir: Path = field(default_factory=_var_dir)
    # identity: account linking codes sent by email over SMTP.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "Lumen Home <support@lumen-home.example>"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    # Key of the hash link codes are stored under, so a leaked table reveals no codes.
    link_code_secret: str = ""
    link_code_ttl_seconds: int = 600
    link_max_attempts: int = 5
    link_lockout_seconds: int = 900
    link_max_codes_per_hour: int = 5
    # privacy: conversations older than this are purged; Rasa's tracker store database.
    retention_days: int = 90
    tracker_database_url: str = ""
    # scale-out (HERALD_MODE=scale or `herald up --scale`): replicas behind nginx, Redis locks.
    mode: str = "embedded"
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    rasa_replicas: int = 2
    action_servers: int = 2
    dispatchers: int = 2
    # Several proactive workers share their platform pacing through this Redis (scale-out
    # sets it), under this key prefix; empty: each worker paces alone (embedded, one worker).
    pacing_redis_url: str = ""
    pacing_key_prefix: str = "herald"
    # proactive: a YAML file overriding bot/proactive/policy.yml; the worker's health port.
    proactive_policy_path: Path | None = None
    worker_port: int = 8001

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _load_secrets_file(var_dir: Path) -> dict[str, str]:
    """Secrets `make run` generated on first run (var/secrets.env), below real env vars."""
    path = var_dir / "secrets.env"
    if not path.exists():
        return {}
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    var_dir = _var_dir()
    env = {**_load_secrets_file(var_dir), **os.environ}
    return Settings(
        database_url=env.get("HERALD_DATABASE_URL") or _default_database_url(),
        customer_token_secret=env.get("HERALD_CUSTOMER_TOKEN_SECRET", ""),
        action_server_token=env.get("HERALD_ACTION_SERVER_TOKEN", ""),
        rasa_api_token=env.get("HERALD_RASA_API_TOKEN", ""),
        api_events_key=env.get("HERALD_API_EVENTS_KEY", ""),
        api_admin_key=env.get("HERALD_API_ADMIN_KEY", ""),
        internal_api_key=env.get("HERALD_INTERNAL_API_KEY", ""),
        rasa_url=env.get("HERALD_RASA_URL", "http://127.0.0.1:5005"),
        rasa_public_url=env.get("HERALD_RASA_PUBLIC_URL")
        or env.get("HERALD_RASA_URL", "http://127.0.0.1:5005"),
        demo_mode=env.get("HERALD_DEMO_MODE", "1") == "1",
        app_host=env.get("HERALD_APP_HOST", "127.0.0.1"),
        app_port=int(env.get("HERALD_APP_PORT", "8000")),
        var_dir=var_dir,
        smtp_host=env.get("HERALD_SMTP_HOST", "127.0.0.1"),
        smtp_port=int(env.get("HERALD_SMTP_PORT", "25")),
        smtp_from=env.get("HERALD_SMTP_FROM") or Settings.smtp_from,
        smtp_username=env.get("HERALD_SMTP_USERNAME", ""),
        smtp_password=env.get("HERALD_SMTP_PASSWORD", ""),
        smtp_starttls=env.get("HERALD_SMTP_STARTTLS", "0") == "1",
        link_code_secret=env.get("HERALD_LINK_CODE_SECRET", ""),
        link_code_ttl_seconds=int(env.get("HERALD_LINK_CODE_TTL_SECONDS", "600")),
        link_max_attempts=int(env.get("HERALD_LINK_MAX_ATTEMPTS", "5")),
        link_lockout_seconds=int(env.get("HERALD_LINK_LOCKOUT_SECONDS", "900")),
        link_max_codes_per_hour=int(env.get("HERALD_LINK_MAX_CODES_PER_HOUR", "5")),
        retention_days=int(env.get("HERALD_RETENTION_DAYS", "90")),
        tracker_database_url=env.get("HERALD_TRACKER_DATABASE_URL")
        or env.get("HERALD_DATABASE_URL")
        or _default_database_url(),
        proactive_policy_path=Path(env["HERALD_PROACTIVE_POLICY"])
        if env.get("HERALD_PROACTIVE_POLICY")
        else None,
        worker_port=int(env.get("HERALD_WORKER_PORT", "8001")),
        mode=env.get("HERALD_MODE", "embedded"),
        redis_host=env.get("HERALD_REDIS_HOST", "127.0.0.1"),
        redis_port=int(env.get("HERALD_REDIS_PORT", "6379")),
        rasa_replicas=int(env.get("HERALD_RASA_REPLICAS", "2")),
        action_servers=int(env.get("HERALD_ACTION_SERVERS", "2")),
        dispatchers=int(env.get("HERALD_DISPATCHERS", "2")),
        pacing_redis_url=env.get("HERALD_PACING_REDIS_URL", ""),
        pacing_key_prefix=env.get("HERALD_PACING_KEY_PREFIX", "herald"),
    )

"""Secrets come from the environment: generated locally on first run, never committed."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

from bot.settings import PROJECT_ROOT
from bot.stack import SECRET_NAMES, ensure_local_secrets

# What a secret looks like when someone pastes one into a file.
SECRET_ASSIGNMENT = re.compile(
    r"HERALD_\w*(?:SECRET|TOKEN|KEY|PASSWORD)\w*\s*[=:]\s*[\"']?([A-Za-z0-9_\-+/=.]{16,})"
)
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")
SIGNED_TOKEN = re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")
# Tokens the platforms issue: Slack bot/user tokens, Telegram bot tokens.
SAYS_FAKE = re.compile(r"(?i)fake|for[-_]?tests|dummy|example")
PLATFORM_TOKEN = re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}|\b\d{8,10}:[A-Za-z0-9_-]{35}\b")


def tracked_files() -> list[Path]:
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [PROJECT_ROOT / name for name in listing.split("\0") if name]


def tracked_text() -> dict[Path, str]:
    texts = {}
    for path in tracked_files():
        try:
            texts[path] = path.read_text()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
    return texts


def test_first_run_generates_every_secret_privately(tmp_path: Path) -> None:
    secrets = ensure_local_secrets(tmp_path)

    path = tmp_path / "secrets.env"
    assert set(SECRET_NAMES) <= set(secrets)
    assert "HERALD_LINK_CODE_SECRET" in secrets
    assert all(len(secrets[name]) >= 32 for name in SECRET_NAMES)
    assert len({secrets[name] for name in SECRET_NAMES}) == len(SECRET_NAMES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Later runs keep them (sessions and linked codes stay valid) ...
    assert ensure_local_secrets(tmp_path) == secrets
    # ... and fill in only what is missing.
    path.write_text("".join(f"{k}={v}\n" for k, v in secrets.items() if k != SECRET_NAMES[0]))
    again = ensure_local_secrets(tmp_path)
    assert again[SECRET_NAMES[0]] != secrets[SECRET_NAMES[0]]
    assert {k: again[k] for k in SECRET_NAMES[1:]} == {k: secrets[k] for k in SECRET_NAMES[1:]}


def test_local_secrets_are_ignored_by_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "var/secrets.env"], cwd=PROJECT_ROOT, check=False
    )
    assert ignored.returncode == 0
    assert not any(p.name == "secrets.env" for p in tracked_files())


def test_the_repository_holds_no_secrets() -> None:
    found = []
    for path, text in tracked_text().items():
        name = path.relative_to(PROJECT_ROOT)
        for pattern in (SECRET_ASSIGNMENT, PRIVATE_KEY, SIGNED_TOKEN, PLATFORM_TOKEN):
            for match in pattern.finditer(text):
                value = match.group(1) if pattern.groups else match.group(0)
                # Placeholders that point at the environment are how config is written.
                if value.startswith("${") or value.startswith("$"):
                    continue
                # Test fixtures say so in the value itself ("fake-token-for-tests").
                if SAYS_FAKE.search(match.group(0)):
                    continue
                found.append(f"{name}: {match.group(0)[:60]}")
    assert not found, f"secret-looking values in tracked files: {found}"


def test_this_machines_generated_secrets_appear_in_no_tracked_file() -> None:
    local = PROJECT_ROOT / "var" / "secrets.env"
    if not local.exists():
        return  # nothing generated here yet (fresh clone): nothing that could leak
    values = [
        line.partition("=")[2].strip()
        for line in local.read_text().splitlines()
        if "=" in line and len(line.partition("=")[2].strip()) >= 16
    ]
    leaks = [
        str(path.relative_to(PROJECT_ROOT))
        for path, text in tracked_text().items()
        if any(value in text for value in values)
    ]
    assert not leaks, f"generated secrets committed in: {leaks}"


def test_the_scan_would_notice_a_pasted_secret() -> None:
    generated = ensure_local_secrets.__globals__["secrets"].token_urlsafe(32)
    assert SECRET_ASSIGNMENT.search(f"HERALD_RASA_API_TOKEN={generated}")
    assert SECRET_ASSIGNMENT.search(f'export HERALD_SMTP_PASSWORD="{generated}"')
    assert not SECRET_ASSIGNMENT.search("HERALD_RASA_API_TOKEN: ${HERALD_RASA_API_TOKEN}")
    # Built at run time, so this file does not trip its own scan.
    assert PRIVATE_KEY.search("-----BEGIN RSA " + "PRIVATE KEY-----")
    assert PLATFORM_TOKEN.search("xox" + "b-1234567890-abcdefghijkl")

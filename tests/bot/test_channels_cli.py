"""`herald telegram set-webhook` registers the webhook and its secret with the Bot API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.channels_cli import webhook_url
from bot.cli import main
from bot.settings import get_settings
from bot.stack import ensure_local_secrets
from tests.fakes.telegram import FakeTelegram


@pytest.fixture
def telegram(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeTelegram]:
    fake = FakeTelegram().start_in_thread()
    monkeypatch.setenv("HERALD_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("HERALD_TELEGRAM_TOKEN", fake.token)
    monkeypatch.setenv("HERALD_TELEGRAM_API_URL", fake.api_url)
    monkeypatch.delenv("HERALD_TELEGRAM_WEBHOOK_SECRET", raising=False)
    get_settings.cache_clear()
    yield fake
    fake.stop()
    get_settings.cache_clear()


def test_set_webhook_sends_the_url_and_the_generated_secret(
    telegram: FakeTelegram, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["telegram", "set-webhook", "https://bot.lumen.example/"]) == 0

    [call] = telegram.calls("setWebhook")
    secret = ensure_local_secrets(tmp_path)["HERALD_TELEGRAM_WEBHOOK_SECRET"]
    assert call.params["url"] == "https://bot.lumen.example/webhooks/telegram/webhook"
    assert call.params["secret_token"] == secret
    assert call.params["allowed_updates"] == ["message", "callback_query"]
    out = capsys.readouterr().out
    assert "https://bot.lumen.example/webhooks/telegram/webhook" in out
    assert secret not in out and telegram.token not in out


def test_webhook_info_and_delete(
    telegram: FakeTelegram, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["telegram", "set-webhook", "https://bot.lumen.example/webhooks/telegram/webhook"])
    assert main(["telegram", "webhook-info"]) == 0
    assert "https://bot.lumen.example/webhooks/telegram/webhook" in capsys.readouterr().out
    assert main(["telegram", "delete-webhook"]) == 0
    assert telegram.webhook == {}


def test_a_rejected_token_is_a_clear_error(
    telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HERALD_TELEGRAM_TOKEN", "123:wrong")
    assert main(["telegram", "set-webhook", "https://bot.lumen.example"]) == 1
    assert "rejected" in capsys.readouterr().err
    assert telegram.calls("setWebhook") == []


def test_no_token_says_what_to_set(
    telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HERALD_TELEGRAM_TOKEN")
    assert main(["telegram", "webhook-info"]) == 2
    assert "HERALD_TELEGRAM_TOKEN" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://x.example", "https://x.example/webhooks/telegram/webhook"),
        ("https://x.example/rasa/", "https://x.example/rasa/webhooks/telegram/webhook"),
        (
            "https://x.example/webhooks/telegram/webhook",
            "https://x.example/webhooks/telegram/webhook",
        ),
    ],
)
def test_webhook_url_completes_a_base_url(given: str, expected: str) -> None:
    assert webhook_url(given) == expected


@pytest.mark.parametrize("given", ["x.example", "ftp://x.example", ""])
def test_webhook_url_refuses_what_is_not_a_url(given: str) -> None:
    with pytest.raises(ValueError):
        webhook_url(given)

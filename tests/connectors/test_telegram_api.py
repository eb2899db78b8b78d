"""Telegram through the real python-telegram-bot client against a fake Bot API server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from telegram import Update

from connectors.dedup import SeenDeliveries
from connectors.limits import TOO_LONG_REPLY
from connectors.messages import Button, OutgoingMessage
from connectors.pacing import Pacer
from connectors.telegram_api import (
    EXPIRED_BUTTON_REPLY,
    UNSUPPORTED_REPLY,
    CallbackPayloads,
    Outcome,
    TelegramDelivery,
    TelegramInbound,
    UpdateHandler,
    build_bot,
    poll_updates,
)
from connectors.unreachable import UnreachableReporter
from tests.connectors.conftest import INTERNAL_KEY, ReportInbox
from tests.fakes.telegram import (
    FakeTelegram,
    callback_update,
    inline_keyboard,
    message_update,
)

CHAT = 700_007_919
TRACK = '/track_order{"order_number":"10042"}'


@pytest.fixture
async def delivery(
    fake_telegram: FakeTelegram, reporter: UnreachableReporter
) -> AsyncIterator[TelegramDelivery]:
    # Short spacing keeps the suite quick; the default limits are tested in test_pacing.
    delivery = TelegramDelivery(
        build_bot(fake_telegram.token, fake_telegram.api_url), Pacer(0.01, 30), reporter
    )
    yield delivery
    await delivery.bot.shutdown()


async def test_text_goes_out_verbatim_as_plain_text_with_an_inline_keyboard(
    delivery: TelegramDelivery, fake_telegram: FakeTelegram
) -> None:
    text = "Refund of <b>€20</b> & *more* _soon_ [link](x)"
    message = OutgoingMessage(
        text=text,
        buttons=(
            Button("Order 10042", TRACK),
            Button("Setup guide", url="https://lumen.example/guide"),
        ),
    )

    assert await delivery.send(CHAT, message) is Outcome.SENT

    [call] = fake_telegram.sent_messages(CHAT)
    assert call.params["text"] == text
    assert "parse_mode" not in call.params  # nothing for Telegram to interpret
    assert inline_keyboard(call) == [
        {"text": "Order 10042", "callback_data": TRACK},
        {"text": "Setup guide", "url": "https://lumen.example/guide"},
    ]


async def test_messages_over_4096_characters_arrive_in_parts_in_order(
    delivery: TelegramDelivery, fake_telegram: FakeTelegram
) -> None:
    text = "\n\n".join(f"Step {n}: " + "plug the hub in and wait. " * 30 for n in range(1, 13))
    message = OutgoingMessage(text=text, buttons=(Button("It works", "/affirm"),))

    assert await delivery.send(CHAT, message) is Outcome.SENT

    calls = fake_telegram.sent_messages(CHAT)
    assert len(calls) == 3
    assert " ".join(c.params["text"] for c in calls).split() == text.split()
    assert [bool(c.params.get("reply_markup")) for c in calls] == [False, False, True]


async def test_long_payloads_travel_by_reference_and_come_back_whole(
    delivery: TelegramDelivery, fake_telegram: FakeTelegram
) -> None:
    payload = '/choose_device{"product":"Lumen Hub Pro with Thread border router","n":"2"}'
    await delivery.send(CHAT, OutgoingMessage(text="Which?", buttons=(Button("Hub", payload),)))

    [button] = inline_keyboard(fake_telegram.sent_messages(CHAT)[0])
    assert len(button["callback_data"].encode()) <= 64  # the fake refuses more, as Telegram does
    assert delivery.payloads.decode(button["callback_data"]) == payload
    assert CallbackPayloads().decode(button["callback_data"]) is None  # e.g. after a restart


async def test_retry_after_is_honoured_and_the_message_still_arrives(
    delivery: TelegramDelivery, fake_telegram: FakeTelegram
) -> None:
    fake_telegram.flood("sendMessage", 1)

    assert await delivery.send(CHAT, OutgoingMessage(text="Your order shipped")) is Outcome.SENT

    refused, delivered = fake_telegram.sent_messages(CHAT)
    assert delivered.params["text"] == "Your order shipped"
    assert delivered.at - refused.at >= 1.0


async def test_a_blocked_bot_reports_the_user_unreachable_and_stops(
    delivery: TelegramDelivery, fake_telegram: FakeTelegram, inbox: ReportInbox
) -> None:
    fake_telegram.block(CHAT)
    message = OutgoingMessage(text="x " * 5000)  # two parts; the second is never tried

    assert await delivery.send(CHAT, message) is Outcome.UNREACHABLE

    assert len(fake_telegram.sent_messages(CHAT)) == 1
    assert inbox.reports() == [
        {
            "platform": "telegram",
            "external_id": str(CHAT),
            "authorization": f"Bearer {INTERNAL_KEY}",
        }
    ]


async def test_a_chat_telegram_no_longer_knows_is_reported_too(
    delivery: TelegramDelivery, fake_telegram: FakeTelegram, inbox: ReportInbox
) -> None:
    fake_telegram.forget_chat(CHAT)
    assert await delivery.send(CHAT, OutgoingMessage(text="hello")) is Outcome.UNREACHABLE
    assert [r["external_id"] for r in inbox.reports()] == [str(CHAT)]


async def test_an_app_without_the_report_endpoint_is_logged_not_fatal(
    fake_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    async with ReportInbox(status=404) as missing:
        reporter = UnreachableReporter(missing.url, INTERNAL_KEY)
        delivery = TelegramDelivery(
            build_bot(fake_telegram.token, fake_telegram.api_url), Pacer(0.01, 30), reporter
        )
        fake_telegram.block(CHAT)
        with caplog.at_level(logging.WARNING):
            assert await delivery.send(CHAT, OutgoingMessage(text="hi")) is Outcome.UNREACHABLE
        await delivery.close()
    assert "answered 404" in caplog.text


async def test_photos_are_sent_before_the_text(
    delivery: TelegramDelivery, fake_telegram: FakeTelegram
) -> None:
    message = OutgoingMessage(text="Your hub", image="https://lumen.example/hub.png")
    await delivery.send(CHAT, message)
    assert [c.method for c in fake_telegram.calls() if c.method.startswith("send")] == [
        "sendPhoto",
        "sendMessage",
    ]
    assert fake_telegram.calls("sendPhoto")[0].params["photo"] == "https://lumen.example/hub.png"


async def test_messages_to_one_chat_are_spaced_by_the_pacer(
    delivery: TelegramDelivery, fake_telegram: FakeTelegram
) -> None:
    delivery.pacer = Pacer(0.05, 30)
    await asyncio.gather(
        *(delivery.send(CHAT, OutgoingMessage(text=f"message {n}")) for n in range(10))
    )
    calls = fake_telegram.sent_messages(CHAT)
    assert [c.params["text"] for c in calls] == [f"message {n}" for n in range(10)]
    assert min(b.at - a.at for a, b in zip(calls, calls[1:], strict=False)) >= 0.05


def test_http_logging_stays_at_warning_because_urls_hold_the_token() -> None:
    build_bot("123:abc")
    for name in ("httpx", "httpcore", "telegram"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING


# --- incoming updates ----------------------------------------------------------------------


class Conversation:
    """What the handler passed on to the bot, standing in for Rasa."""

    def __init__(self) -> None:
        self.received: list[TelegramInbound] = []
        self.fail_next = False

    async def __call__(self, inbound: TelegramInbound) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("Rasa is down")
        await asyncio.sleep(0.05)  # the bot thinking; typing shows meanwhile
        self.received.append(inbound)


@pytest.fixture
def conversation() -> Conversation:
    return Conversation()


@pytest.fixture
def handler(delivery: TelegramDelivery, conversation: Conversation) -> UpdateHandler:
    return UpdateHandler(delivery, SeenDeliveries("telegram"), conversation)


def as_update(data: dict[str, object], delivery: TelegramDelivery) -> Update:
    update = Update.de_json(data, delivery.bot)
    assert update is not None
    return update


async def test_a_message_reaches_the_bot_once_with_typing_shown(
    handler: UpdateHandler,
    conversation: Conversation,
    delivery: TelegramDelivery,
    fake_telegram: FakeTelegram,
) -> None:
    update = message_update(CHAT, "where is my order?")

    assert await handler.handle(as_update(update, delivery))
    assert not await handler.handle(as_update(update, delivery))  # Telegram's retry

    [inbound] = conversation.received
    assert inbound.sender_id == f"telegram:{CHAT}" and inbound.text == "where is my order?"
    assert fake_telegram.calls("sendChatAction", chat_id=CHAT, action="typing")


async def test_a_button_press_comes_back_as_its_payload_and_is_answered(
    handler: UpdateHandler,
    conversation: Conversation,
    delivery: TelegramDelivery,
    fake_telegram: FakeTelegram,
) -> None:
    await handler.handle(as_update(callback_update(CHAT, TRACK), delivery))

    assert [m.text for m in conversation.received] == [TRACK]
    assert fake_telegram.calls("answerCallbackQuery")


async def test_an_expired_long_button_gets_a_polite_reply(
    handler: UpdateHandler,
    conversation: Conversation,
    delivery: TelegramDelivery,
    fake_telegram: FakeTelegram,
) -> None:
    await handler.handle(as_update(callback_update(CHAT, "ref:" + "0" * 32), delivery))
    assert conversation.received == []
    assert fake_telegram.texts(CHAT) == [EXPIRED_BUTTON_REPLY]


@pytest.mark.parametrize(
    ("text", "reply"),
    [(None, UNSUPPORTED_REPLY), ("x" * 2001, TOO_LONG_REPLY)],
    ids=["sticker", "too-long"],
)
async def test_what_the_bot_cannot_read_gets_a_polite_reply(
    handler: UpdateHandler,
    conversation: Conversation,
    delivery: TelegramDelivery,
    fake_telegram: FakeTelegram,
    text: str | None,
    reply: str,
) -> None:
    await handler.handle(as_update(message_update(CHAT, text), delivery))
    assert conversation.received == []
    assert fake_telegram.texts(CHAT) == [reply]


async def test_start_greets_and_group_chats_are_never_answered(
    handler: UpdateHandler, conversation: Conversation, delivery: TelegramDelivery
) -> None:
    await handler.handle(as_update(message_update(CHAT, "/start"), delivery))
    await handler.handle(as_update(message_update(CHAT, "my order?", chat_type="group"), delivery))
    assert [m.text for m in conversation.received] == ["/greet"]


async def test_a_failed_update_is_processed_when_telegram_retries_it(
    handler: UpdateHandler, conversation: Conversation, delivery: TelegramDelivery
) -> None:
    update = message_update(CHAT, "hello")
    conversation.fail_next = True
    with pytest.raises(RuntimeError):
        await handler.handle(as_update(update, delivery))
    assert await handler.handle(as_update(update, delivery))
    assert [m.text for m in conversation.received] == ["hello"]


async def test_polling_mode_receives_updates_without_a_webhook(
    delivery: TelegramDelivery, conversation: Conversation, fake_telegram: FakeTelegram
) -> None:
    fake_telegram.webhook = {"url": "https://old.example/hook"}
    handler = UpdateHandler(delivery, SeenDeliveries("telegram"), conversation)
    fake_telegram.queue_update(message_update(CHAT, "first"))
    fake_telegram.queue_update(callback_update(CHAT, TRACK))
    stop = asyncio.Event()
    polling = asyncio.ensure_future(
        poll_updates(delivery.bot, handler.handle, stop, long_poll_seconds=1)
    )

    await fake_telegram.wait_for_async(lambda: len(conversation.received) == 2)
    stop.set()
    await asyncio.wait_for(polling, 10)

    assert sorted(m.text for m in conversation.received) == sorted(["first", TRACK])
    assert fake_telegram.calls("deleteWebhook")
    # Handled updates were acknowledged through the offset, so none comes twice.
    assert fake_telegram.calls("getUpdates")[-1].params.get("offset") is not None

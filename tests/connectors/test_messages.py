"""One message shape, rendered the native way on Telegram, Slack and web chat."""

from __future__ import annotations

import pytest

from connectors.messages import (
    SLACK_MAX_BLOCKS,
    SLACK_SECTION_CHARS,
    TELEGRAM_MAX_CHARS,
    Button,
    Link,
    OutgoingMessage,
    slack_parts,
    split_text,
    telegram_parts,
    utf16_length,
    webchat_payload,
)

TRACK = '/track_order{"order_number":"10042"}'


def test_rasa_message_with_buttons_quick_replies_elements_and_image() -> None:
    message = OutgoingMessage.from_rasa(
        {
            "text": "Order 10042 has shipped.",
            "buttons": [
                {"title": "Talk to a person", "payload": "/contact_human_agent"},
                {"title": "Setup guide", "url": "https://lumen.example/guide"},
                {"title": "Carrier site", "type": "web_url", "payload": "https://dhl.example/t"},
                {"payload": "/no_title"},
            ],
            "elements": [
                {
                    "title": "Hub setup",
                    "subtitle": "5 minutes",
                    "default_action": {"url": "https://lumen.example/hub"},
                }
            ],
            "image": "https://lumen.example/hub.png",
            "attachment": "https://lumen.example/invoice.pdf",
            "custom": {"anything": "platform specific"},
            "timestamp": 1.0,
        }
    )

    assert message.text == "Order 10042 has shipped."
    assert message.buttons == (
        Button("Talk to a person", "/contact_human_agent"),
        Button("Setup guide", url="https://lumen.example/guide"),
        Button("Carrier site", url="https://dhl.example/t"),
    )
    assert message.links == (
        Link("Hub setup", "https://lumen.example/hub", "5 minutes"),
        Link("https://lumen.example/invoice.pdf", "https://lumen.example/invoice.pdf"),
    )
    assert message.image == "https://lumen.example/hub.png"


def test_quick_replies_are_buttons_too() -> None:
    message = OutgoingMessage.from_rasa(
        {"text": "Which one?", "quick_replies": [{"title": "Order 10042", "payload": TRACK}]}
    )
    assert message.buttons == (Button("Order 10042", TRACK),)


def test_split_prefers_paragraphs_then_lines_then_spaces() -> None:
    paragraphs = "a" * 40 + "\n\n" + "b" * 20 + " " + "c" * 30
    assert split_text(paragraphs, 70) == ["a" * 40, "b" * 20 + " " + "c" * 30]
    lines = "a" * 30 + "\n\n" + "b" * 30 + "\n" + "c" * 30 + " " + "d" * 30
    assert split_text(lines, 70) == ["a" * 30 + "\n\n" + "b" * 30, "c" * 30 + " " + "d" * 30]


def test_split_cuts_a_word_longer_than_the_limit() -> None:
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_split_never_cuts_an_emoji_in_half_as_telegram_counts() -> None:
    text = "🙂" * 5000  # 2 UTF-16 units each
    chunks = split_text(text, TELEGRAM_MAX_CHARS, utf16_length)
    assert "".join(chunks) == text
    assert all(utf16_length(c) <= TELEGRAM_MAX_CHARS for c in chunks)


def test_telegram_long_text_is_split_with_the_keyboard_on_the_last_part() -> None:
    paragraph = "Your Lumen Hub needs the 2.4 GHz band & a <strong> signal. " * 40
    message = OutgoingMessage(
        text="\n\n".join([paragraph] * 6), buttons=(Button("Talk to a person", "/human"),)
    )

    parts = telegram_parts(message)

    assert len(parts) >= 3
    assert all(utf16_length(p.text) <= TELEGRAM_MAX_CHARS for p in parts)
    assert [bool(p.keyboard) for p in parts] == [False] * (len(parts) - 1) + [True]
    # Plain text: nothing escaped or lost, so the customer reads exactly what was written.
    assert " ".join(p.text for p in parts).split() == message.text.split()
    assert "2.4 GHz band & a <strong> signal." in parts[0].text


def test_telegram_links_become_lines_and_images_photos() -> None:
    message = OutgoingMessage(
        text="Here's the guide.",
        image="https://lumen.example/hub.png",
        links=(Link("Hub setup", "https://lumen.example/hub", "5 minutes"),),
    )
    parts = telegram_parts(message)
    assert parts[0].photo == "https://lumen.example/hub.png"
    assert parts[1].text == "Here's the guide.\nHub setup (5 minutes): https://lumen.example/hub"


def test_telegram_buttons_without_text_still_get_a_message() -> None:
    parts = telegram_parts(OutgoingMessage(buttons=(Button("Yes", "/affirm"),)))
    assert parts[0].text and parts[0].keyboard == ((Button("Yes", "/affirm"),),)


def test_slack_escapes_control_characters_and_renders_buttons_as_block_kit() -> None:
    message = OutgoingMessage(
        text="Refund of <€20> & more",
        buttons=(Button("Order 10042", TRACK), Button("Guide", url="https://lumen.example/g")),
    )

    [part] = slack_parts(message)

    section, actions = part.blocks
    assert section == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "Refund of &lt;€20&gt; &amp; more"},
    }
    assert part.text == "Refund of &lt;€20&gt; &amp; more"
    assert actions["type"] == "actions"
    first, second = actions["elements"]
    assert first["value"] == TRACK and first["text"]["text"] == "Order 10042"
    assert first["action_id"] != second["action_id"]
    assert second["url"] == "https://lumen.example/g" and "value" not in second


def test_slack_long_text_and_many_buttons_stay_within_block_kit_limits() -> None:
    message = OutgoingMessage(
        text=("word & " * 3000),
        buttons=tuple(Button(f"Option {i} " + "x" * 80, f'/choose{{"n":{i}}}') for i in range(30)),
    )
    parts = slack_parts(message)
    blocks = [b for p in parts for b in p.blocks]
    sections = [b for b in blocks if b["type"] == "section"]
    assert all(len(b["text"]["text"]) <= SLACK_SECTION_CHARS for b in sections)
    assert not any(b["text"]["text"].endswith("&amp") for b in sections)
    actions = [b for b in blocks if b["type"] == "actions"]
    assert [len(b["elements"]) for b in actions] == [25, 5]
    assert all(len(e["text"]["text"]) <= 75 for b in actions for e in b["elements"])
    assert all(len(p.blocks) <= SLACK_MAX_BLOCKS for p in parts)


def test_slack_message_of_many_sections_is_split_across_posts() -> None:
    parts = slack_parts(OutgoingMessage(text="\n\n".join(["y" * 2900] * 60)))
    assert [len(p.blocks) for p in parts] == [50, 10]
    assert all(p.text for p in parts)


def test_slack_link_labels_cannot_break_out_of_the_link() -> None:
    [part] = slack_parts(OutgoingMessage(links=(Link("a|b>c", "https://x.example/?q=1|2"),)))
    assert part.blocks[0]["text"]["text"] == "<https://x.example/?q=1%7C2|a|b&gt;c>"


def test_webchat_payload_has_quick_replies_links_and_image() -> None:
    message = OutgoingMessage(
        text="Pick one",
        buttons=(Button("Order 10042", TRACK), Button("Guide", url="https://lumen.example/g")),
        image="https://lumen.example/i.png",
    )
    assert webchat_payload(message) == {
        "text": "Pick one",
        "quick_replies": [{"title": "Order 10042", "payload": TRACK}],
        "links": [{"title": "Guide", "url": "https://lumen.example/g"}],
        "image": "https://lumen.example/i.png",
    }


@pytest.mark.parametrize(
    "raw", [{}, {"text": ""}, {"buttons": "nonsense"}, {"elements": [1, None]}]
)
def test_nothing_to_show_is_empty(raw: dict[str, object]) -> None:
    message = OutgoingMessage.from_rasa(raw)
    assert message.is_empty
    assert telegram_parts(message) == [] and webchat_payload(message) == {}

"""The one message shape the bot sends, and how each platform shows it natively."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

logger = logging.getLogger(__name__)

TELEGRAM_MAX_CHARS = 4096
# Slack truncates a section's text past 3000 characters and a message past 50 blocks.
SLACK_SECTION_CHARS = 3000
SLACK_MAX_BLOCKS = 50
SLACK_BUTTON_TITLE_CHARS = 75
SLACK_BUTTON_VALUE_CHARS = 2000
SLACK_BUTTONS_PER_BLOCK = 25
SLACK_BUTTON_ACTION_PREFIX = "herald_button_"


@dataclass(frozen=True)
class Button:
    """A choice the customer can tap; pressing it sends `payload` back as their message."""

    title: str
    payload: str = ""
    url: Optional[str] = None


@dataclass(frozen=True)
class Link:
    title: str
    url: str
    subtitle: str = ""


@dataclass(frozen=True)
class OutgoingMessage:
    """What an action said, free of any platform's formatting."""

    text: str = ""
    buttons: Tuple[Button, ...] = ()
    image: Optional[str] = None
    links: Tuple[Link, ...] = field(default=())

    @property
    def is_empty(self) -> bool:
        return not (self.text or self.buttons or self.image or self.links)

    @classmethod
    def from_rasa(cls, message: Mapping[str, Any]) -> "OutgoingMessage":
        """Read the dict Rasa hands an output channel (text, buttons, image, elements...)."""
        text = message.get("text") or ""
        raw_buttons = message.get("buttons") or message.get("quick_replies") or []
        buttons = tuple(b for b in (_button(raw) for raw in raw_buttons) if b is not None)
        links: List[Link] = []
        for element in message.get("elements") or []:
            link = _element_link(element)
            if link is not None:
                links.append(link)
        attachment = message.get("attachment")
        if isinstance(attachment, str) and attachment.startswith(("http://", "https://")):
            links.append(Link(title=attachment, url=attachment))
        elif isinstance(attachment, dict):
            url = (attachment.get("payload") or {}).get("src") or attachment.get("url")
            if isinstance(url, str):
                links.append(Link(title=str(attachment.get("title") or url), url=url))
        if message.get("custom"):
            # A custom payload is platform-specific by definition; actions must not send one.
            logger.debug("dropping a custom JSON payload that no channel renders")
        image = message.get("image")
        return cls(
            text=str(text),
            buttons=buttons,
            image=image if isinstance(image, str) and image else None,
            links=tuple(links),
        )


def _button(raw: Any) -> Optional[Button]:
    if not isinstance(raw, dict) or not raw.get("title"):
        return None
    title = str(raw["title"])
    url = raw.get("url")
    payload = str(raw.get("payload") or "")
    if not url and raw.get("type") == "web_url" and payload.startswith(("http://", "https://")):
        url = payload
    if url:
        return Button(title=title, url=str(url))
    return Button(title=title, payload=payload or title)


def _element_link(element: Any) -> Optional[Link]:
    if not isinstance(element, dict):
        return None
    url = (element.get("default_action") or {}).get("url") or element.get("url")
    if not isinstance(url, str):
        for button in element.get("buttons") or []:
            if isinstance(button, dict) and isinstance(button.get("url"), str):
                url = button["url"]
                break
    if not isinstance(url, str):
        return None
    return Link(
        title=str(element.get("title") or url), url=url, subtitle=str(element.get("subtitle") or "")
    )


# --- splitting -------------------------------------------------------------------------


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units, so an emoji counts twice."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, measure: Any = len) -> List[str]:
    """Chunks of at most `limit` (by `measure`), broken at paragraphs, lines, then spaces."""
    chunks: List[str] = []
    rest = text
    while measure(rest) > limit:
        cut = _longest_prefix(rest, limit, measure)
        window = rest[:cut]
        for separator in ("\n\n", "\n", " "):
            at = window.rfind(separator)
            if at > cut // 2:
                cut = at + len(separator)
                break
        chunk = rest[:cut].rstrip()
        if chunk:
            chunks.append(chunk)
        rest = rest[cut:].lstrip("\n ")
    if rest.strip() or not chunks:
        chunks.append(rest)
    return chunks


def _longest_prefix(text: str, limit: int, measure: Any) -> int:
    """How many characters fit in `limit`, never splitting a surrogate-pair character."""
    low, high = 1, min(len(text), limit)
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


# --- Telegram ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TelegramPart:
    """One Bot API call: plain text (no parse mode, so nothing needs escaping) or a photo."""

    text: str = ""
    # Rows of buttons for an inline keyboard, on the last text part only.
    keyboard: Tuple[Tuple[Button, ...], ...] = ()
    photo: Optional[str] = None


def telegram_parts(message: OutgoingMessage) -> List[TelegramPart]:
    """Text split at 4096 characters, links as lines Telegram links itself, buttons below."""
    lines = [message.text] if message.text else []
    for link in message.links:
        detail = f" ({link.subtitle})" if link.subtitle else ""
        lines.append(f"{link.title}{detail}: {link.url}" if link.title != link.url else link.url)
    text = "\n".join(lines)
    keyboard = tuple((button,) for button in message.buttons)
    parts: List[TelegramPart] = []
    if message.image:
        parts.append(TelegramPart(photo=message.image))
    if text.strip():
        chunks = split_text(text, TELEGRAM_MAX_CHARS, utf16_length)
        parts.extend(TelegramPart(text=chunk) for chunk in chunks[:-1])
        parts.append(TelegramPart(text=chunks[-1], keyboard=keyboard))
    elif keyboard:
        # A keyboard needs a message to hang on.
        parts.append(TelegramPart(text="Please choose:", keyboard=keyboard))
    return parts


# --- Slack ---------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escaped_length(text: str) -> int:
    return len(slack_escape(text))


def slack_unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@dataclass(frozen=True)
class SlackPart:
    """One chat.postMessage: fallback text for notifications, and Block Kit blocks."""

    text: str
    blocks: Tuple[Dict[str, Any], ...]


def slack_parts(message: OutgoingMessage) -> List[SlackPart]:
    blocks: List[Dict[str, Any]] = []
    if message.text.strip():
        # Split before escaping, measuring the escaped length, so no entity is cut in two.
        for chunk in split_text(message.text, SLACK_SECTION_CHARS, _escaped_length):
            section = {"type": "mrkdwn", "text": slack_escape(chunk)}
            blocks.append({"type": "section", "text": section})
    if message.links:
        lines = []
        for link in message.links:
            detail = f" — {slack_escape(link.subtitle)}" if link.subtitle else ""
            lines.append(f"<{_slack_url(link.url)}|{slack_escape(link.title)}>{detail}")
        for chunk in split_text("\n".join(lines), SLACK_SECTION_CHARS):
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
    if message.image:
        blocks.append({"type": "image", "image_url": message.image, "alt_text": "image"})
    buttons = list(message.buttons)
    for start in range(0, len(buttons), SLACK_BUTTONS_PER_BLOCK):
        elements = [
            _slack_button(start + offset, button)
            for offset, button in enumerate(buttons[start : start + SLACK_BUTTONS_PER_BLOCK])
        ]
        blocks.append({"type": "actions", "elements": elements})
    parts: List[SlackPart] = []
    for start in range(0, len(blocks), SLACK_MAX_BLOCKS):
        chunk = blocks[start : start + SLACK_MAX_BLOCKS]
        parts.append(SlackPart(text=_slack_fallback(chunk, message), blocks=tuple(chunk)))
    return parts


def _slack_url(url: str) -> str:
    # Inside <url|label>, a | or > would end the link early.
    return url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")


def _slack_button(index: int, button: Button) -> Dict[str, Any]:
    title = button.title
    if len(title) > SLACK_BUTTON_TITLE_CHARS:
        title = title[: SLACK_BUTTON_TITLE_CHARS - 1] + "…"
    element: Dict[str, Any] = {
        "type": "button",
        "action_id": f"{SLACK_BUTTON_ACTION_PREFIX}{index}",
        "text": {"type": "plain_text", "text": title, "emoji": True},
    }
    if button.url:
        element["url"] = button.url
    else:
        element["value"] = button.payload[:SLACK_BUTTON_VALUE_CHARS]
    return element


def _slack_fallback(blocks: List[Dict[str, Any]], message: OutgoingMessage) -> str:
    """The text a notification shows; Slack wants one even when blocks carry the content."""
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    if texts:
        return split_text(texts[0], SLACK_SECTION_CHARS)[0]
    if any(b["type"] == "actions" for b in blocks):
        return "Please choose:"
    return "Image" if message.image else " "


# --- web chat -----------------------------------------------------------------------------


def webchat_payload(message: OutgoingMessage) -> Dict[str, Any]:
    """What the page's `bot_uttered` handler draws: text, quick replies, image, links."""
    payload: Dict[str, Any] = {}
    if message.text:
        payload["text"] = message.text
    replies = [{"title": b.title, "payload": b.payload} for b in message.buttons if not b.url]
    if replies:
        payload["quick_replies"] = replies
    links = [{"title": b.title, "url": b.url} for b in message.buttons if b.url]
    links += [
        {"title": link.title, "url": link.url, "subtitle": link.subtitle} for link in message.links
    ]
    if links:
        payload["links"] = links
    if message.image:
        payload["image"] = message.image
    return payload

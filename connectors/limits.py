"""Limits every channel applies to what customers send, before Rasa sees it."""

# Longer messages are refused with a polite reply instead of being parsed: nobody types
# this much into a support chat, and unbounded text is an easy way to tie up NLU.
MAX_MESSAGE_CHARS = 2000
TOO_LONG_REPLY = (
    "That message is a bit long for me. Could you tell me in a sentence or two "
    f"(under {MAX_MESSAGE_CHARS} characters) what you need help with?"
)


def clean_text(text: object) -> str:
    """Text as a string, without control characters that break logs or the NLU tokenizer."""
    if not isinstance(text, str):
        return ""
    return "".join(ch for ch in text if ch.isprintable() or ch in "\n\t").strip()

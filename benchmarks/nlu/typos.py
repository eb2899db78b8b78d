"""One deterministic typo per message, to measure how Herald copes with real-world typing."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from pathlib import Path

import yaml

# An annotated entity, `[text](name)` or `[text]{"entity": ...}`: never typo'd, so the
# entity labels of the held-out split stay valid for the typo variant.
ENTITY = re.compile(r"\[[^\]]*\](?:\([^)]*\)|\{[^}]*\})")
WORD = re.compile(r"[A-Za-z]{4,}")
DEFAULT_SEED = 7

# Neighbouring keys on a QWERTY keyboard: a replaced letter is one a finger could slip to.
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_ROWS):
    for _c, _key in enumerate(_row):
        near = [_row[i] for i in (_c - 1, _c + 1) if 0 <= i < len(_row)]
        for _other in (_r - 1, _r + 1):
            if 0 <= _other < len(_ROWS):
                row = _ROWS[_other]
                near += [row[i] for i in (_c - 1, _c, _c + 1) if 0 <= i < len(row)]
        NEIGHBOURS[_key] = "".join(near)

OPERATIONS = ("swap", "drop", "duplicate", "replace")


def misspell(word: str, rng: random.Random) -> str:
    """The word with one letter swapped with its neighbour, dropped, doubled or mistyped."""
    for _ in range(10):
        operation = rng.choice(OPERATIONS)
        i = rng.randrange(len(word) - 1) if operation == "swap" else rng.randrange(len(word))
        if operation == "swap":
            typo = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        elif operation == "drop":
            typo = word[:i] + word[i + 1 :]
        elif operation == "duplicate":
            typo = word[:i] + word[i] + word[i:]
        else:
            key = rng.choice(NEIGHBOURS[word[i].lower()])
            typo = word[:i] + (key.upper() if word[i].isupper() else key) + word[i + 1 :]
        if typo != word:
            return typo
    return word[1:]


def with_one_typo(example: str, seed: int = DEFAULT_SEED) -> str:
    """The example with one word of at least four letters, outside any entity, misspelt.

    The random choice is seeded by the seed and the example itself, so each message gets
    the same typo on every run and adding a line to the split does not change the others.
    """
    entities = [m.span() for m in ENTITY.finditer(example)]
    words = [
        m
        for m in WORD.finditer(example)
        if not any(start < m.end() and m.start() < end for start, end in entities)
    ]
    if not words:
        return example
    rng = random.Random(f"{seed}:{example}")
    word = rng.choice(words)
    return example[: word.start()] + misspell(word.group(), rng) + example[word.end() :]


def read_examples(paths: Iterable[Path]) -> dict[str, list[str]]:
    """Intent -> annotated examples of Rasa NLU YAML files (intents only)."""
    examples: dict[str, list[str]] = {}
    for path in paths:
        for block in yaml.safe_load(path.read_text()).get("nlu", []):
            if "intent" not in block:
                continue
            lines = [line.strip() for line in block["examples"].splitlines()]
            examples.setdefault(block["intent"], []).extend(
                line[2:] for line in lines if line.startswith("- ")
            )
    return examples


def write_examples(examples: dict[str, list[str]], path: Path) -> None:
    """Write intent examples back as Rasa NLU YAML."""
    lines = ['version: "3.1"', "nlu:"]
    for intent, texts in examples.items():
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {text}" for text in texts]
    path.write_text("\n".join(lines) + "\n")


def write_typo_variant(sources: Iterable[Path], out: Path, seed: int = DEFAULT_SEED) -> int:
    """Write the one-typo variant of the sources to `out`; returns how many lines changed."""
    examples = read_examples(sources)
    variant = {
        intent: [with_one_typo(text, seed) for text in texts] for intent, texts in examples.items()
    }
    write_examples(variant, out)
    return sum(
        original != typo
        for intent, texts in examples.items()
        for original, typo in zip(texts, variant[intent], strict=True)
    )

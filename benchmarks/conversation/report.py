"""Where benchmark results go: raw JSON and plots in docs/benchmarks/, a section of the page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bot.settings import PROJECT_ROOT

DOCS_PAGE = PROJECT_ROOT / "docs" / "benchmarks.md"
RAW_DIR = PROJECT_ROOT / "docs" / "benchmarks"


def write_raw(name: str, data: dict[str, Any]) -> Path:
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    path = RAW_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def write_section(title: str, body: str) -> None:
    """Replace the `## <title>` section of docs/benchmarks.md, leaving the others alone."""
    heading = f"## {title}"
    section = f"{heading}\n\n{body.strip()}\n"
    DOCS_PAGE.parent.mkdir(parents=True, exist_ok=True)
    text = DOCS_PAGE.read_text() if DOCS_PAGE.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS_PAGE.write_text(text.rstrip("\n") + "\n")


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"

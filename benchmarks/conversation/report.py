"""Markdown tables and millisecond figures for the conversation and memory sections."""

from __future__ import annotations


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"

"""Where every benchmark writes: its section of docs/benchmarks.md, its raw numbers, and the
facts about the machine it ran on."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS_PAGE = ROOT / "docs" / "benchmarks.md"
RAW_DIR = ROOT / "docs" / "benchmarks"


def machine() -> dict[str, Any]:
    """The machine and the moment: numbers from a busy shared machine mean less."""
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "commit": commit,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


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

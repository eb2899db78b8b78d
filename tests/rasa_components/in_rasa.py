"""Scripts run in Rasa's own runtime (.venv-rasa, Python 3.10), where our components live."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"


def run_in_rasa(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`script` run with `args` by Rasa's Python, from the project root."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [str(RASA_PYTHON), "-c", script, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def json_from_rasa(script: str, *args: str) -> Any:
    """What `script` prints as JSON on its last line; it must succeed."""
    done = run_in_rasa(script, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])

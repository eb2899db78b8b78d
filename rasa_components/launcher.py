"""`rasa run` as Herald starts it: our hot paths swapped in, its API token from the environment.

`rasa run --auth-token` wants the token as an argument, and arguments are readable by every
local user (ps, /proc/<pid>/cmdline). bot/stack.py starts `python -m
rasa_components.launcher run ...` with the token in HERALD_RASA_API_TOKEN instead, and it
is added to Rasa's arguments here, inside the process.
"""

from __future__ import annotations

import os
import sys


def rasa_argv(args: list[str], token: str) -> list[str]:
    """Rasa's command line with the token; joined by "=" as a token may start with "-"."""
    return ["rasa", *args, f"--auth-token={token}"]


def main() -> None:
    from rasa.__main__ import main as rasa_main

    from rasa_components import hot_paths

    hot_paths.install()
    sys.argv = rasa_argv(sys.argv[1:], os.environ["HERALD_RASA_API_TOKEN"])
    rasa_main()


if __name__ == "__main__":
    main()

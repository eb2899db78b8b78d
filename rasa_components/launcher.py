"""`rasa run` as Herald starts it: our hot paths swapped in, its API token from the environment.

`rasa run --auth-token` wants the token as an argument, and arguments are readable by every
local user (ps, /proc/<pid>/cmdline). bot/stack.py starts `python -m
rasa_components.launcher run ...` with the token in HERALD_RASA_API_TOKEN instead, and it
is added to Rasa's arguments here, inside the process.

Once the model is loaded, its objects are moved out of the garbage collector's sight
(`gc.freeze`): they live as long as the process, and every full collection walked all of
them, stopping every conversation for ~300 ms several times a minute under load.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any


def rasa_argv(args: list[str], token: str) -> list[str]:
    """Rasa's command line with the token; joined by "=" as a token may start with "-"."""
    return ["rasa", *args, f"--auth-token={token}"]


def freezing_after(load: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`load`, then everything alive so far frozen out of the garbage collector's walks."""

    async def load_then_freeze(*args: Any, **kwargs: Any) -> Any:
        loaded = await load(*args, **kwargs)
        gc.collect()
        gc.freeze()
        return loaded

    return load_then_freeze


def main() -> None:
    import rasa.core.run
    from rasa.__main__ import main as rasa_main

    from rasa_components import hot_paths

    hot_paths.install()
    rasa.core.run.load_agent_on_start = freezing_after(rasa.core.run.load_agent_on_start)
    sys.argv = rasa_argv(sys.argv[1:], os.environ["HERALD_RASA_API_TOKEN"])
    rasa_main()


if __name__ == "__main__":
    main()

"""Our Rasa launcher: the API token whatever it starts with, the loaded model frozen."""

from __future__ import annotations

import gc

import pytest

from rasa_components.launcher import freezing_after
from tests.rasa_components.in_rasa import run_in_rasa

# Runs in .venv-rasa: Rasa's own argument parser reads what the launcher hands it.
PARSE = r"""
import sys
from rasa.__main__ import create_argument_parser
from rasa_components.launcher import rasa_argv
parsed = create_argument_parser().parse_args(rasa_argv(["run", "--enable-api"], sys.argv[1])[1:])
print(parsed.auth_token)
"""


# secrets.token_urlsafe draws from letters, digits, "-" and "_": one token in 64 starts
# with "-", which Rasa used to read as a missing token (exit 2 at start-up).
@pytest.mark.parametrize("token", ["plain-token", "-starts-with-a-dash", "--two"])
def test_rasa_reads_the_token_it_is_given(token: str) -> None:
    done = run_in_rasa(PARSE, token)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == token


async def test_what_the_model_load_leaves_alive_is_frozen_out_of_collections() -> None:
    gc.unfreeze()
    before = gc.get_freeze_count()

    async def load() -> list[object]:
        return [object() for _ in range(1000)]

    try:
        loaded = await freezing_after(load)()
        assert len(loaded) == 1000
        assert gc.get_freeze_count() >= before + 1000
    finally:
        gc.unfreeze()

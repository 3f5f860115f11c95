"""Shared test helpers: run the CLI in-process and read its JSON, small PHOLD arguments."""

from __future__ import annotations

import json

import pytest

from atleus_dist.cli import main

SMALL_PHOLD = ["--lps", "6", "--objects", "16", "--events-per-object", "2", "--end-ps", "200000",
               "--remote", "0.5", "--seed", "7", "--trace", "--quiet"]


@pytest.fixture
def cli(capsys):
    """``cli(*args) -> (exit_code, parsed_json_or_None, stderr)``; SystemExit is caught."""

    def run(*args: str):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        data = None
        if "--json" in args and code == 0:
            data = json.loads(out.strip().splitlines()[-1])
        return code, data, err

    return run


@pytest.fixture
def digest_of(cli):
    def get(run_dir) -> str:
        code, data, err = cli("digest", str(run_dir), "--json")
        assert code == 0, err
        assert data["status"] == "complete"
        return data["digest"]

    return get

"""Shared test helpers: run the CLI in-process and read its JSON, small PHOLD arguments."""

from __future__ import annotations

import dataclasses
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


@pytest.fixture(scope="module")
def mapping():
    """A shrunken GPT-2 Medium step (one layer, d_model 128, seq 32) mapped on the default chip:
    small enough for chip runs on every partition in seconds."""
    from atleus_dist.workload import Mapper, compile_step, load_model
    from atleus_dist.workload.scenario import Scenario

    model = dataclasses.replace(load_model("gpt2-medium"), layers=1, d_model=128, heads=4, kv_heads=4,
                                d_ff=512, vocab=512, positions=64)
    sc = Scenario(model, seq=32, lora_rank=4, pipeline_chunk_tokens=16)
    return Mapper().map(sc, compile_step(sc))


@pytest.fixture(scope="session")
def small_chip_run(tmp_path_factory):
    """A complete chip run on the NoC (seq 32 on the default chip: ops, packets, links), shared by
    the tests that only read a run."""
    out = tmp_path_factory.mktemp("chip") / "run"
    assert main(["run", "--set", "scenario.seq=32", "--backend", "inline", "--workers", "1", "--quiet",
                 "--out", str(out)]) == 0
    return out

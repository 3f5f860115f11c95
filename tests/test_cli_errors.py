"""Bad input: one line on stderr naming the argument, exit code 2, no run directory claimed."""

from __future__ import annotations

import pytest

from tests.conftest import SMALL_PHOLD


@pytest.mark.parametrize("args,flag", [
    (["--backend", "mpi"], "--backend"),
    (["--lookahead-ps", "-5"], "--lookahead-ps"),
    (["--lookahead-ps", "0"], "--lookahead-ps"),
    (["--lps", "0"], "--lps"),
    (["--end-ps", "1.5"], "--end-ps"),
    (["--end-ps", "ten"], "--end-ps"),
    (["--remote", "1.5"], "--remote"),
    (["--workers", "0"], "--workers"),
    (["--objects", "-1"], "--objects"),
])
def test_bad_phold_arguments(cli, tmp_path, args, flag):
    out = tmp_path / "run"
    code, _data, err = cli("phold", *SMALL_PHOLD, *args, "--out", str(out))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert flag in lines[0]
    assert not (out / "manifest.json").exists()


def test_unwritable_out_dir(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _d, err = cli("phold", *SMALL_PHOLD, "--out", str(blocker / "run"))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "--out" in err


def test_out_dir_holding_a_run_is_refused(cli, tmp_path):
    out = tmp_path / "run"
    assert cli("phold", *SMALL_PHOLD, "--backend", "inline", "--out", str(out))[0] == 0
    code, _d, err = cli("phold", *SMALL_PHOLD, "--backend", "inline", "--out", str(out))
    assert code == 2 and "already holds a run" in err


def test_digest_of_missing_dir(cli, tmp_path):
    code, _d, err = cli("digest", str(tmp_path / "nope"))
    assert code == 2 and "run_dir" in err


def test_unknown_command(cli):
    code, _d, err = cli("frobnicate")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_every_command_is_registered_and_has_help(capsys):
    from atleus_dist.cli import COMMANDS, build_parser

    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices  # noqa: SLF001
    assert set(choices) == {c.replace("_", "-") for c in COMMANDS}

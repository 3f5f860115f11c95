"""A complete run whose files were damaged is refused - by report, digest, compare and verify - with
exit 2 and one line naming the file; malformed manifests likewise; digest refuses runs that are not
complete or have no result tables. Each case damages a copy of one small real run."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pyarrow as pa
import pytest

from atleus_dist.results import finish_manifest, read_manifest, start_manifest
from atleus_dist.results.writer import LPSink

STUB_RUN = ("run", "--transport", "stub", "--set", "scenario.seq=8", "--backend", "inline", "--quiet")


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    from atleus_dist.cli import main

    out = tmp_path_factory.mktemp("verify") / "good"
    assert main([*STUB_RUN, "--out", str(out)]) == 0
    return out


@pytest.fixture
def run_copy(good_run, tmp_path):
    def copy(name="run"):
        dst = tmp_path / name
        shutil.copytree(good_run, dst)
        return dst
    return copy


def _flip_bit(path, offset=None):
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x04
    path.write_bytes(bytes(data))


def _as_arrow_file(path):
    table = pa.ipc.open_stream(path.read_bytes()).read_all()
    with pa.OSFile(str(path), "wb") as fh, pa.ipc.new_file(fh, table.schema) as w:
        w.write_table(table)


def _as_directory(path):
    path.unlink()
    path.mkdir()


def _foreign_schema(path):
    windows = sorted((path.parent.parent / "windows").glob("lp*.arrows"))[0]
    shutil.copy(windows, path.parent / "lp099.arrows")  # another table's stream dropped into ops/


DAMAGE = {
    "random bytes": lambda p: p.write_bytes(os.urandom(p.stat().st_size)),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "zero-length": lambda p: p.write_bytes(b""),
    "bit-flipped": _flip_bit,
    "arrow file format": _as_arrow_file,
    "directory": _as_directory,
    "foreign schema": _foreign_schema,
    "missing": lambda p: p.unlink(),
}


def _one_line_naming(code, err, name):
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert name in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_stream_is_refused_by_every_reader(cli, run_copy, good_run, damage):
    from atleus_dist.commands.verify import format_verify
    from atleus_dist.results.verify import verify_run

    run = run_copy()
    DAMAGE[damage](run / "ops" / "lp000.arrows")
    named = "ops/lp099.arrows" if damage == "foreign schema" else "ops/lp000.arrows"
    for args in (("report", str(run), "--no-plots"), ("digest", str(run)), ("compare", str(run), str(good_run))):
        code, _d, err = cli(*args)
        _one_line_naming(code, err, named)
    code, _d, err = cli("verify", str(run))
    assert code == 2 and not err
    report = "\n".join(format_verify(verify_run(run)))
    assert f"BAD {named}: " in report and "verdict: BAD" in report, report
    assert report.count("BAD ") == 2  # that file and the verdict: the other files are fine


def test_a_bit_flip_in_a_column_is_caught_only_by_the_checksum(run_copy):
    from atleus_dist.results import read_table
    from atleus_dist.results.stream import CLOSED, scan_file

    run = run_copy()
    target = run / "ops" / "lp004.arrows"
    _flip_bit(target, target.stat().st_size - 64)  # inside the last batch's column buffers
    assert scan_file(target).end == CLOSED  # the stream still parses: only the SHA-256 can tell
    with pytest.raises(ValueError, match="lp004.arrows: SHA-256 differs"):
        read_table(run, "ops")


def test_damaged_parquet_is_refused_by_open(run_copy):
    from atleus_dist import results

    run = run_copy()
    _flip_bit(run / "ops.parquet")
    with pytest.raises(ValueError, match="ops.parquet"):
        results.open(run, "ops")
    assert results.read_table(run, "ops").num_rows > 0  # the streams are intact


MANIFESTS = {
    "JSON list": lambda p: p.write_text("[1, 2]"),
    "empty": lambda p: p.write_text(""),
    "binary": lambda p: p.write_bytes(bytes(range(256))),
    "directory": lambda p: (p.unlink(), p.mkdir()),
    "invalid JSON": lambda p: p.write_text('{"status": "complete",'),
    "unknown status": lambda p: p.write_text('{"status": "done"}'),
}


@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_malformed_manifest_is_one_line_in_every_command(cli, run_copy, good_run, kind):
    run = run_copy()
    MANIFESTS[kind](run / "manifest.json")
    for args in (("report", str(run), "--no-plots"), ("digest", str(run)), ("verify", str(run)),
                 ("compare", str(good_run), str(run))):
        code, _d, err = cli(*args)
        _one_line_naming(code, err, "manifest.json")


def _unfinished_run(path, status):
    sink = LPSink(str(path), 0)
    sink.write("t", {"x": np.arange(3, dtype=np.int64)})
    sink.close()
    data = start_manifest(path, "test", {}, {})
    if status != "running":
        finish_manifest(path, data, status, {})


@pytest.mark.parametrize("status", ["running", "failed", "interrupted"])
def test_digest_refuses_runs_that_are_not_complete_unless_partial(cli, tmp_path, status):
    _unfinished_run(tmp_path, status)
    code, _d, err = cli("digest", str(tmp_path))
    assert code == 2 and f"'{status}'" in err and "--partial" in err and len(err.strip().splitlines()) == 1
    code, data, err = cli("digest", str(tmp_path), "--partial", "--json")
    assert code == 0 and data["partial"] is True and data["status"] == status
    code, _d, _err = cli("digest", str(tmp_path), "--partial")
    assert code == 0
    code, _d, _err = cli("verify", str(tmp_path))
    assert code == 1  # readable, not complete


def test_digest_refuses_a_run_with_no_result_tables(cli, tmp_path):
    finish_manifest(tmp_path, start_manifest(tmp_path, "test", {}, {}), "complete", {})
    code, _d, err = cli("digest", str(tmp_path))
    assert code == 2 and "no result tables" in err
    code, _d, err = cli("digest", str(tmp_path), "--partial")
    assert code == 2 and "no result tables" in err


def test_verify_of_a_good_run(cli, good_run):
    code, data, err = cli("verify", str(good_run), "--json")
    assert code == 0, err
    assert data["status"] == "complete" and data["checksums"] and data["bad"] == 0
    man = read_manifest(good_run)
    assert data["ok"] == len(man["files"])  # every stream and every Parquet file
    assert data["tables"]["ops"]["rows"] == man["tables"]["ops"]["rows"] == man["files"]["ops.parquet"]["rows"]
    assert not list(good_run.glob("*/*.done"))  # close records folded into the manifest


def test_a_stream_with_bytes_after_its_end_marker_is_corrupt(tmp_path):
    from atleus_dist.results import read_table

    _unfinished_run(tmp_path, "failed")
    path = tmp_path / "t" / "lp000.arrows"
    path.write_bytes(path.read_bytes() + b"junk")
    with pytest.raises(ValueError, match="after the end-of-stream marker"):
        read_table(tmp_path, "t")


def test_a_closed_stream_of_an_unfinished_run_must_match_its_close_record(tmp_path):
    from atleus_dist.results import read_table

    _unfinished_run(tmp_path, "interrupted")
    path = tmp_path / "t" / "lp000.arrows"
    _flip_bit(path, path.stat().st_size - 20)
    with pytest.raises(ValueError, match="close record"):
        read_table(tmp_path, "t")


def test_sealing_refuses_a_stream_that_was_never_closed(tmp_path):
    from atleus_dist.kernel import SimulationAborted

    sink = LPSink(str(tmp_path), 0, flush_rows=1)
    sink.write("t", {"x": np.arange(3, dtype=np.int64)})  # flushed, never closed
    data = start_manifest(tmp_path, "test", {}, {})
    with pytest.raises(SimulationAborted, match="lp000.arrows"):
        finish_manifest(tmp_path, data, "complete", {})
    assert read_manifest(tmp_path)["status"] == "failed"
    assert not list(tmp_path.glob("*.parquet"))


def test_a_foreign_stream_in_an_unfinished_run_is_refused(tmp_path):
    from atleus_dist.results import read_table

    _unfinished_run(tmp_path, "interrupted")
    other = LPSink(str(tmp_path / "elsewhere"), 0)
    other.write("w", {"y": np.arange(2, dtype=np.float64)})
    other.close()
    os.replace(tmp_path / "elsewhere" / "w" / "lp000.arrows", tmp_path / "t" / "lp007.arrows")
    with pytest.raises(ValueError, match="lp007.arrows: holds table 'w', not 't'"):
        read_table(tmp_path, "t")

"""Result streams, manifests, readers and the digest."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from atleus_dist.results import (LPSink, digest, finish_manifest, open, read_manifest,
                                 read_table, start_manifest)
from atleus_dist.results.writer import lp_file


def _write(run_dir, lp, values, wall=None):
    sink = LPSink(str(run_dir), lp, flush_rows=1)
    cols = {"x": np.asarray(values, dtype=np.int64)}
    if wall is not None:
        cols["wall_s"] = np.asarray(wall, dtype=np.float64)
    sink.write("t", cols, wallclock=("wall_s",))
    sink.write("w", {"round": np.asarray(values, dtype=np.int64)}, kind="execution")
    sink.close()


def _manifest(run_dir):
    start_manifest(run_dir, "test", {}, {})


def test_digest_ignores_row_order_lp_split_wallclock_and_execution_tables(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, 0, [1, 2, 3], wall=[0.1, 0.2, 0.3])
    _write(b, 0, [3], wall=[9.0])
    _write(b, 5, [2, 1], wall=[8.0, 7.0])
    da, per_a = digest(a)
    db, _ = digest(b)
    assert da == db
    assert set(per_a) == {"t"}
    c = tmp_path / "c"
    _write(c, 0, [1, 2, 4], wall=[0.1, 0.2, 0.3])
    assert digest(c)[0] != da


def test_stream_survives_a_torn_tail(tmp_path):
    sink = LPSink(str(tmp_path), 0, flush_rows=1)
    for i in range(5):
        sink.write("t", {"x": np.arange(i * 10, i * 10 + 10, dtype=np.int64)})
    # simulate a kill: no close(), and the last batch only half on disk
    path = lp_file(tmp_path, "t", 0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    table = read_table(tmp_path, "t")
    assert table.num_rows == 40
    assert table.column("x").to_pylist() == list(range(40))


def test_open_returns_pyarrow_datasets(tmp_path):
    _write(tmp_path, 0, [1, 2])
    _write(tmp_path, 1, [3])
    dset = open(tmp_path, "t")
    assert isinstance(dset, ds.Dataset)
    assert sorted(dset.to_table().column("x").to_pylist()) == [1, 2, 3]
    assert set(open(tmp_path)) == {"t", "w"}
    meta = dset.schema.metadata
    assert meta[b"atleus.schema_version"] == b"1" and meta[b"atleus.table_kind"] == b"result"


def test_manifest_lifecycle(tmp_path):
    data = start_manifest(tmp_path, "phold", {"lps": 2}, {"groups": [[0, 1]]})
    assert read_manifest(tmp_path)["status"] == "running"
    finish_manifest(tmp_path, data, "complete", {"events": 5})
    man = read_manifest(tmp_path)
    assert man["status"] == "complete" and man["figures"]["events"] == 5
    assert man["finished"] and man["versions"]["pyarrow"] == pa.__version__
    with pytest.raises(ValueError):
        finish_manifest(tmp_path, data, "done", {})
    assert not list(tmp_path.glob("*.tmp"))
    json.loads((tmp_path / "manifest.json").read_text())


def test_stream_files_open_with_plain_pyarrow(tmp_path):
    _write(tmp_path, 2, [4, 5])
    with pa.ipc.open_stream(pa.OSFile(str(lp_file(tmp_path, "t", 2)))) as reader:
        assert reader.read_all().column("x").to_pylist() == [4, 5]

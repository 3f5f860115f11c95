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
    assert not list(tmp_path.glob("*.tmp")) + list(tmp_path.glob(".*.tmp"))
    json.loads((tmp_path / "manifest.json").read_text())


def test_stream_files_open_with_plain_pyarrow(tmp_path):
    _write(tmp_path, 2, [4, 5])
    with pa.ipc.open_stream(pa.OSFile(str(lp_file(tmp_path, "t", 2)))) as reader:
        assert reader.read_all().column("x").to_pylist() == [4, 5]


def _stream_bytes(batches=3, close=True) -> bytes:
    t = pa.table({"x": np.arange(100, dtype=np.int64)})
    sink = pa.BufferOutputStream()
    w = pa.ipc.new_stream(sink, t.schema)
    for _ in range(batches):
        w.write_table(t)
    w.close()
    data = sink.getvalue().to_pybytes()
    return data if close else data[:-8]  # without the 8-byte end-of-stream marker


def test_how_a_stream_ends_is_classified():
    from atleus_dist.results import stream as st

    whole = _stream_bytes()
    assert (st.scan_bytes(whole).end, st.scan_bytes(whole).rows) == (st.CLOSED, 300)
    assert st.scan_bytes(_stream_bytes(close=False)).end == st.OPEN  # stopped between batches
    assert st.scan_bytes(b"").end == st.EMPTY
    for cut in range(1, len(whole) - 8, 37):  # a kill at any byte: a torn tail, never corruption
        scan = st.scan_bytes(whole[:cut])
        assert scan.end in (st.TORN, st.OPEN), (cut, scan.problem)
        assert scan.rows == 100 * len(scan.batches)
    assert st.scan_bytes(whole + b"x").end == st.CORRUPT
    assert st.scan_bytes(np.random.default_rng(1).bytes(len(whole))).end == st.CORRUPT
    t = pa.table({"x": [1]})
    fsink = pa.BufferOutputStream()
    with pa.ipc.new_file(fsink, t.schema) as w:
        w.write_table(t)
    assert "Arrow file" in st.scan_bytes(fsink.getvalue().to_pybytes()).problem


def test_close_record_and_json_code_tables(tmp_path):
    import hashlib

    sink = LPSink(str(tmp_path), 3, flush_rows=2)
    sink.write("t", {"k": np.array([0, 1, 1], dtype=np.int8)}, meta={"kind_codes": {"a": 0, "b": 1}, "note": "x"})
    sink.write("t", {"k": np.array([1], dtype=np.int8)})
    sink.close()
    path = lp_file(tmp_path, "t", 3)
    record = json.loads((path.parent / "lp003.arrows.done").read_text())
    assert record == {"rows": 4, "batches": 2, "bytes": path.stat().st_size,
                      "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    meta = read_table(tmp_path, "t").schema.metadata
    assert json.loads(meta[b"atleus.kind_codes"]) == {"a": 0, "b": 1} and meta[b"atleus.note"] == b"x"


def _reprs(table):
    return {c: [repr(v) for v in table.column(c).to_pylist()] for c in table.column_names}


def test_canonical_order_is_arrows_sort_row_for_row():
    """Parquet's canonical order is computed with numpy (no pyarrow.compute import in a noc run);
    it must be exactly ``sort_by`` over the same keys: random tables of ints, floats (with -0.0,
    inf), booleans, many ties and several chunks, plus the kinds it hands back to Arrow."""
    from atleus_dist.results.parquet import canonical_order

    rng = np.random.default_rng(7)
    for trial in range(300):
        n = int(rng.integers(1, 200))
        cols = {}
        for j in range(int(rng.integers(1, 5))):
            kind = int(rng.integers(0, 5))
            cols[f"c{j}"] = [pa.array(rng.integers(0, 4, n)), pa.array(rng.integers(-3, 3, n).astype(np.int32)),
                             pa.array(rng.choice([-0.0, 0.0, 1.5, -2.25], n)),
                             pa.array(rng.choice([0.0, 1.5, -2.25, 1e300, -np.inf], n)),
                             pa.array(rng.integers(0, 2, n).astype(bool))][kind]
        cols["wall_s"] = pa.array(rng.random(n))
        t = pa.table(cols).replace_schema_metadata({"atleus.wallclock_columns": "wall_s"})
        if trial % 2:  # several chunks, as several LPs' streams give
            k = int(rng.integers(0, n + 1))
            t = pa.concat_tables([t.slice(0, k), t.slice(k)])
        keys = [c for c in t.column_names if c != "wall_s"] + ["wall_s"]
        assert _reprs(canonical_order(t)) == _reprs(t.sort_by([(c, "ascending") for c in keys])), trial
    for t in (pa.table({"s": ["b", "a", "b"], "x": [1, 2, 0]}), pa.table({"x": pa.array([2, None, 1])}),
              pa.table({"x": [2.0, float("nan"), 1.0, float("nan")], "y": [1, 2, 3, 0]})):
        assert _reprs(canonical_order(t)) == _reprs(t.sort_by([(c, "ascending") for c in t.column_names]))


def test_a_noc_run_never_imports_pyarrow_compute(tmp_path):
    """~0.05 s of every noc process: its tables are sealed (Parquet in canonical order) without it."""
    import subprocess
    import sys

    code = ("import sys; from atleus_dist import api; "
            "api.noc(sets=['topology=mesh:4x4x2', 'phases.warmup_cycles=20', 'phases.measure_cycles=40', "
            "'phases.drain_cycles=40', 'traffic.rate=0.2'], out=sys.argv[1]); "
            "print(int('pyarrow.compute' in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "noc")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-1] == "0"
    assert (tmp_path / "noc" / "packets.parquet").is_file()

"""A run's tables open in DuckDB, polars and pyarrow straight from ``RUN/<table>.parquet``, and
``atleus_dist.results.open`` gives the same rows - from the Parquet of a complete run and from the
per-LP streams of a run that has none. The Parquet files are in a canonical row order, so a result
table's file is byte-identical whatever the partition; the digest (over the streams) is untouched.
DuckDB and polars tests are skipped only if the package is not installed.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from atleus_dist import results
from atleus_dist.run.baselines import write_gpu_baseline
from atleus_dist.workload import load_scenario

STUB = ("run", "--transport", "stub", "--set", "scenario.seq=8", "--quiet")
NOC = ("noc", "--mesh", "3x3x2", "--rate", "0.05", "--warmup", "100", "--measure", "500", "--drain", "500",
       "--partition", "by-tier", "--workers", "1", "--backend", "inline", "--quiet", "--json")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The stub scenario on one inline group and on two local workers, and a small NoC run."""
    from atleus_dist.cli import main

    root = tmp_path_factory.mktemp("tools")
    assert main([*STUB, "--backend", "inline", "--workers", "1", "--out", str(root / "inline")]) == 0
    assert main([*STUB, "--backend", "local", "--workers", "2", "--out", str(root / "local")]) == 0
    assert main([*NOC, "--out", str(root / "noc")]) == 0
    return root


def _rows(table: pa.Table) -> list[tuple]:
    """Rows as plain tuples (dictionary columns as their strings), in file order."""
    table = table.select(sorted(table.column_names))
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return list(zip(*(c.to_pylist() for c in cols)))


def test_pyarrow_and_open_give_the_same_rows(runs):
    run = runs / "inline"
    file_rows = pq.read_table(run / "ops.parquet")
    opened = results.open(run, "ops").to_table()
    assert _rows(opened) == _rows(file_rows)
    man = results.read_manifest(run)
    assert file_rows.num_rows == man["tables"]["ops"]["rows"] == results.read_table(run, "ops").num_rows
    assert pa.types.is_dictionary(file_rows.schema.field("kind").type)
    assert set(file_rows.column("phase").to_pylist()) == {"fwd", "bwd", "update"}
    # the code tables are JSON: the integer codes of the streams can be recovered
    codes = json.loads(file_rows.schema.metadata[b"atleus.codes"])
    raw = results.read_table(run, "ops")
    assert json.loads(raw.schema.metadata[b"atleus.kind_codes"]) == {k: v for k, v in codes["kind"].items()}
    back = sorted(codes["kind"][k] for k in file_rows.column("kind").to_pylist())
    assert back == sorted(raw.column("kind").to_pylist())


def test_duckdb_reads_the_parquet_file(runs):
    duckdb = pytest.importorskip("duckdb")
    run = runs / "inline"
    got = duckdb.sql(f"SELECT * FROM '{run / 'ops.parquet'}'").arrow()
    if isinstance(got, pa.RecordBatchReader):  # DuckDB 1.4+ returns a reader
        got = got.read_all()
    assert _rows(got) == _rows(results.open(run, "ops").to_table())
    by_phase = dict(duckdb.sql(f"SELECT phase, sum(energy_pj) FROM '{run / 'ops.parquet'}' GROUP BY phase").fetchall())
    ops = results.read_table(run, "ops")
    assert by_phase["fwd"] == pytest.approx(sum(e for e, p in zip(ops.column("energy_pj").to_pylist(),
                                                                  ops.column("phase").to_pylist()) if p == 0))
    noc = runs / "noc"
    classes = {r[0] for r in duckdb.sql(f"SELECT DISTINCT link_class FROM '{noc / 'links.parquet'}'").fetchall()}
    assert classes <= {"planar", "tsv", "local"} and {"planar", "tsv"} <= classes


def test_polars_scans_the_parquet_file(runs):
    pl = pytest.importorskip("polars")
    run = runs / "inline"
    got = pl.scan_parquet(run / "ops.parquet").collect().to_arrow()
    assert _rows(got) == _rows(results.open(run, "ops").to_table())
    packets = pl.scan_parquet(runs / "noc" / "packets.parquet").select(pl.len()).collect().item()
    assert packets == results.open(runs / "noc", "packets").count_rows() > 0


def test_a_run_without_parquet_opens_to_the_same_rows_from_its_streams(runs, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(runs / "inline", run)
    man = results.read_manifest(run)
    results.finish_manifest(run, man, "interrupted", {})  # a partial run keeps no Parquet
    assert not list(run.glob("*.parquet"))
    assert _rows(results.open(run, "ops").to_table()) == _rows(pq.read_table(runs / "inline" / "ops.parquet"))


def test_parquet_is_canonical_across_partitions_and_digest_unchanged(runs, tmp_path):
    import shutil

    a, b = runs / "inline", runs / "local"
    assert results.read_manifest(a)["partition"]["groups"] != results.read_manifest(b)["partition"]["groups"]
    assert (a / "ops.parquet").read_bytes() == (b / "ops.parquet").read_bytes()
    run = tmp_path / "no-parquet"
    shutil.copytree(a, run)
    before = results.digest(run)[0]
    for p in run.glob("*.parquet"):
        p.unlink()
    man = results.read_manifest(run)
    man["files"] = {k: v for k, v in man["files"].items() if not k.endswith(".parquet")}
    results.manifest.write_manifest(run, man)
    assert results.digest(run)[0] == before == results.digest(b)[0]


def test_gpu_baseline_is_sealed_and_has_parquet(tmp_path):
    out = tmp_path / "gpu"
    m = write_gpu_baseline(load_scenario("gpt2-medium-lora32-s1024"), out)
    t = pq.read_table(out / "ops.parquet")
    assert t.num_rows == m["figures"]["ops"] == m["tables"]["ops"]["rows"]
    assert set(t.column("tier_name").to_pylist()) == {"gpu"}
    assert pa.compute.max(t["end_ps"]).as_py() == m["figures"]["step_latency_ps"]

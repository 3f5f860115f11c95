"""A run's tables open in pyarrow, DuckDB and polars and give the same figures the run reported.

DuckDB (2.x) has no built-in reader for Arrow IPC *stream* files (``read_arrow`` needs the
``arrow`` community extension, a network install), so the documented path is through pyarrow:
DuckDB scans a ``pyarrow.RecordBatchReader`` (streaming, one LP file), a ``pyarrow.Table`` or a
``pyarrow.dataset.Dataset`` (what ``atleus_dist.results.open`` returns) by variable name.
Polars reads each stream file with ``pl.read_ipc_stream``. Each test is skipped only if its
package is not installed.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from atleus_dist import results
from atleus_dist.run.baselines import write_gpu_baseline
from atleus_dist.workload import load_scenario

NOC = ("--mesh", "3x3x2", "--rate", "0.05", "--warmup", "100", "--measure", "500", "--drain", "500",
       "--partition", "by-tier", "--workers", "1", "--backend", "inline", "--quiet", "--json")


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tools") / "gpu"
    m = write_gpu_baseline(load_scenario("gpt2-medium-lora32-s1024"), out)
    return out, m["figures"]


@pytest.fixture
def noc_run(tmp_path, cli):
    out = tmp_path / "noc"
    code, fig, err = cli("noc", *NOC, "--out", str(out))
    assert code == 0, err
    return out, fig


def _files(run, table):
    return sorted((run / table).glob("lp*.arrows"))


def test_pyarrow(gpu_run, noc_run):
    out, fig = gpu_run
    ops = results.open(out, "ops")
    assert ops.count_rows() == fig["ops"]
    t = ops.to_table(columns=["end_ps", "energy_pj"])
    assert pa.compute.max(t["end_ps"]).as_py() == fig["step_latency_ps"]
    assert pa.compute.sum(t["energy_pj"]).as_py() == pytest.approx(400.0 * fig["step_latency_ps"])
    nout, nfig = noc_run
    assert len(_files(nout, "packets")) == 2  # one stream per LP (two tiers)
    per_file = sum(pa.ipc.open_stream(str(f)).read_all().num_rows for f in _files(nout, "packets"))
    assert per_file == results.open(nout, "packets").count_rows() == nfig["packets_delivered"]


def test_duckdb(gpu_run, noc_run):
    duckdb = pytest.importorskip("duckdb")
    out, fig = gpu_run
    con = duckdb.connect()
    # 1. a RecordBatchReader over one stream file, scanned by DuckDB as it streams
    reader = pa.ipc.open_stream(str(_files(out, "ops")[0]))  # noqa: F841 (DuckDB finds it by name)
    n, end, energy = con.sql("select count(*), max(end_ps), sum(energy_pj) from reader").fetchall()[0]
    assert (n, end) == (fig["ops"], fig["step_latency_ps"])
    assert energy == pytest.approx(400.0 * fig["step_latency_ps"])
    # 2. the dataset of every LP file (atleus_dist.results.open)
    packets = results.open(noc_run[0], "packets")  # noqa: F841
    (count, mean) = con.sql("select count(*), avg(latency_cycle) from packets").fetchall()[0]
    assert count == noc_run[1]["packets_delivered"]
    assert mean == pytest.approx(noc_run[1]["packet_latency_mean"])
    # 3. a registered pyarrow Table, grouped like the report does
    con.register("links", results.read_table(noc_run[0], "links"))
    rows = dict(con.sql("select link_class, avg(utilisation) from links group by link_class").fetchall())
    assert rows[0] == pytest.approx(noc_run[1]["planar_link_utilisation_mean"])
    assert rows[1] == pytest.approx(noc_run[1]["tsv_link_utilisation_mean"])


def test_polars(gpu_run, noc_run):
    pl = pytest.importorskip("polars")
    out, fig = gpu_run
    ops = pl.concat([pl.read_ipc_stream(f) for f in _files(out, "ops")])
    assert ops.height == fig["ops"] and ops["end_ps"].max() == fig["step_latency_ps"]
    assert ops["energy_pj"].sum() == pytest.approx(400.0 * fig["step_latency_ps"])
    packets = pl.concat([pl.read_ipc_stream(f) for f in _files(noc_run[0], "packets")])
    assert packets.height == noc_run[1]["packets_delivered"]
    assert packets["latency_cycle"].mean() == pytest.approx(noc_run[1]["packet_latency_mean"])
    windows = pl.concat([pl.read_ipc_stream(f) for f in _files(noc_run[0], "windows")])
    assert set(windows["lp"].unique().to_list()) == {0, 1}

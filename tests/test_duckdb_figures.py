"""The report's summary figures recomputed from the run's Parquet files with DuckDB, a reader
that shares no code with ours: every figure must come out the same (issue 23: every Parquet
column true)."""

from __future__ import annotations

import json

import duckdb
import pytest

from atleus_dist.results.summary import summary_figures


def _one(sql: str):
    return duckdb.sql(sql).fetchall()[0]


def test_summary_figures_agree_with_duckdb_over_the_parquet_files(small_chip_run):
    run = small_chip_run
    fig = summary_figures(run)
    ops, links, packets = (f"'{run / t}.parquet'" for t in ("ops", "links", "packets"))
    n, start, end, busy, energy, macs, nbytes = _one(
        f"SELECT count(*), min(start_ps), max(end_ps), sum(end_ps - start_ps), sum(energy_pj), sum(macs), "
        f"sum(bytes) FROM {ops}")
    assert fig["ops"] == n and fig["step_latency_ps"] == end - start and fig["ops_busy_ps"] == busy
    assert fig["macs"] == macs and fig["op_bytes"] == nbytes
    assert fig["ops_energy_pj"] == pytest.approx(energy, rel=1e-12)
    noc_energy, = _one(f"SELECT sum(energy_pj) FROM {links}")
    assert fig["noc_energy_pj"] == pytest.approx(noc_energy, rel=1e-12)
    assert fig["energy_pj"] == pytest.approx(energy + noc_energy, rel=1e-12)
    # link utilisation: flits per cycle of the step, by link class (the links table's class names)
    clock = json.loads((run / "manifest.json").read_text())["config"]["chip"]["noc"]["router"]["clock_period_ps"]
    cycles = (end - start) / clock
    for cls, count, mean, peak, e in duckdb.sql(
            f"SELECT link_class, count(*), avg(flits) / {cycles}, max(flits) / {cycles}, sum(energy_pj) "
            f"FROM {links} GROUP BY link_class").fetchall():
        assert fig[f"{cls}_links"] == count
        assert fig[f"{cls}_link_utilisation_mean"] == pytest.approx(mean, rel=1e-12)
        assert fig[f"{cls}_link_utilisation_max"] == pytest.approx(peak, rel=1e-12)
        assert fig[f"{cls}_link_energy_pj"] == pytest.approx(e, rel=1e-12)
    count, lat_mean, lat_max = _one(f"SELECT count(*), avg(latency_cycle), max(latency_cycle) FROM {packets}")
    assert fig["packets"] == count
    assert fig["packet_latency_mean_cycles"] == pytest.approx(lat_mean, rel=1e-12)
    assert fig["packet_latency_max_ps"] == pytest.approx(lat_max * clock, rel=1e-12)
    # breakdowns by phase: the categories as DuckDB reads the dictionary columns
    by_phase = dict(duckdb.sql(f"SELECT phase, sum(energy_pj) FROM {ops} GROUP BY phase").fetchall())
    from atleus_dist.results.report import build_report

    rep = build_report(run)
    assert {k: v["energy_pj"] for k, v in rep["breakdown"]["phase"].items()} == pytest.approx(by_phase, rel=1e-12)


def test_links_utilisation_column_is_flits_per_cycle_of_the_step(small_chip_run):
    # the links table's own utilisation column (NaN in the streams: no LP knows when the step ends)
    run = small_chip_run
    clock = json.loads((run / "manifest.json").read_text())["config"]["chip"]["noc"]["router"]["clock_period_ps"]
    start, end = _one(f"SELECT min(start_ps), max(end_ps) FROM '{run / 'ops'}.parquet'")
    n, nan, worst = _one(f"SELECT count(*), count(*) FILTER (WHERE isnan(utilisation)), "
                         f"max(abs(utilisation - flits / {(end - start) / clock})) FROM '{run / 'links'}.parquet'")
    assert n > 0 and nan == 0 and worst < 1e-12

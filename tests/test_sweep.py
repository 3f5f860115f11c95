"""`atleus-dist sweep`: points are complete runs (same digest as `run`), the table is typed and
readable by DuckDB, reruns recompute nothing, bad values stop everything before a file is written,
a failing or interrupted point leaves the others intact and the next run resumes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from atleus_dist.cli import main
from atleus_dist.results import read_manifest, read_table
from atleus_dist.run import sweep as sweep_mod
from atleus_dist.run.sweep_grid import expand, parse_zip, point_id, split_values

SCEN = "gpt2-medium-lora32-s1024"
GRID = ["--grid", "scenario.seq=32,64", "--grid", "reram_tiers=4,5"]
BASE = [SCEN, *GRID, "--transport", "stub", "--quiet"]


def _sweep(*args: str) -> int:
    try:
        return main(["sweep", *args])
    except SystemExit as exc:
        return int(exc.code)


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "s"
    assert _sweep(*BASE, "--backend", "local", "--workers", "2", "--out", str(out)) == 0
    return out


def _file_state(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted((root / "points").rglob("*")) if p.is_file()}


# --- the grid ------------------------------------------------------------------------------------
def test_grid_syntax_zip_brackets_and_stable_ids():
    assert split_values("a,[b,c],{d: 1, e: 2}") == ["a", "[b,c]", "{d: 1, e: 2}"]
    assert parse_zip("scenario.seq=32,64,reram_tiers=4,5") == [("scenario.seq", ["32", "64"]), ("reram_tiers", ["4", "5"])]
    keys, pts = expand(SCEN, None, "stub", [], ["scenario.seq=32,64", "reram_tiers=4,5"], [])
    assert keys == ["scenario.seq", "reram_tiers"] and len(pts) == 4
    assert [p.values() for p in pts][1] == {"scenario.seq": "32", "reram_tiers": "5"}  # first axis slowest
    _k, swapped = expand(SCEN, None, "stub", [], ["reram_tiers=4,5", "scenario.seq=32,64"], [])
    assert {p.id for p in pts} == {p.id for p in swapped}  # ids do not depend on flag order
    assert pts[0].id == "reram_tiers=4,scenario.seq=32" and pts[0].sets == ("scenario.seq=32", "reram_tiers=4")
    _k, zipped = expand(SCEN, None, "stub", ["noc.hbm_ports=8"], ["reram_tiers=4,5"],
                        ["scenario.seq=32,64,scenario.batch=1,2"])
    assert len(zipped) == 4 and {p.values()["scenario.batch"] for p in zipped if p.values()["scenario.seq"] == "64"} == {"2"}
    assert all(p.sets[0] == "noc.hbm_ports=8" for p in zipped)
    _k, flags = expand(SCEN, None, "stub", ["noc.hbm_ports=8"], ["reram_tiers=4,5"],
                       ["scenario.seq=32,64", "scenario.batch=1,2"])  # several --zip: one axis, as documented
    assert [p.id for p in flags] == [p.id for p in zipped]
    odd = point_id({"scenario": "workloads/x y.yaml"})
    assert "/" not in odd and " " not in odd and odd != point_id({"scenario": "workloads/x_y.yaml"})


@pytest.mark.parametrize("args,needle", [
    (["--grid", "reram_tiers=4,0"], "point reram_tiers=0"),           # a bad value: the point and the key
    (["--grid", "scenario.seq=32,0"], "seq"),
    (["--grid", "reram.nonsense=1,2"], "nonsense"),
    (["--grid", "reram_tiers=4,5", "--grid", "reram_tiers=3"], "swept twice"),
    (["--grid", "reram_tiers=4,5", "--set", "reram_tiers=4"], "--set"),
    (["--zip", "scenario.seq=32,64,reram_tiers=4"], "as many values"),
    (["--zip", "scenario.seq=8,16", "--zip", "reram_tiers=4"], "--zip: keys varied together need as many values each, "
                                                              "got scenario.seq: 2, reram_tiers: 1"),
    (["--grid", "reram_tiers"], "--grid"),
])
def test_a_bad_point_is_exit_2_naming_it_and_nothing_is_written(tmp_path, capsys, args, needle):
    out = tmp_path / "bad"
    code = _sweep(SCEN, *args, "--transport", "stub", "--quiet", "--backend", "inline", "--out", str(out))
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert not out.exists()
    if needle.startswith("point"):
        assert "reram_tiers" in err.split(needle, 1)[1]  # after the point, the key that is wrong


# --- the points and the table -------------------------------------------------------------------
def test_each_point_has_the_digest_of_a_standalone_run(swept, tmp_path, cli, digest_of):
    for seq, tiers in (("32", "4"), ("64", "5")):
        out = tmp_path / f"run{seq}"
        code, _d, err = cli("run", SCEN, "--set", f"scenario.seq={seq}", "--set", f"reram_tiers={tiers}",
                            "--transport", "stub", "--quiet", "--out", str(out))
        assert code == 0, err
        point = swept / "points" / f"reram_tiers={tiers},scenario.seq={seq}"
        how = ("execution",)  # how it ran (a point runs inline, the standalone run on 2 workers), not what
        strip = (lambda c: {k: v for k, v in c.items() if k not in how})
        assert strip(read_manifest(point)["config"]) == strip(read_manifest(out)["config"])
        assert digest_of(point) == digest_of(out)


def test_table_rows_are_the_points_figures_in_grid_order(swept):
    t = pq.read_table(swept / "sweep.parquet")
    assert t.column_names[:3] == ["point", "scenario.seq", "reram_tiers"]
    assert str(t.schema.field("scenario.seq").type) == "int64"
    rows = t.to_pylist()
    assert [(r["scenario.seq"], r["reram_tiers"]) for r in rows] == [(32, 4), (32, 5), (64, 4), (64, 5)]
    for r in rows:
        point = swept / "points" / r["point"]
        fig = read_manifest(point)["figures"]
        ops = read_table(point, "ops")
        assert r["status"] == "complete" and r["error"] is None and r["wall_s"] > 0
        assert r["step_latency_ps"] == fig["step_latency_ps"] == max(ops.column("end_ps").to_pylist())
        assert r["energy_pj"] == pytest.approx(fig["energy_pj"])
        assert r["edp_j_s"] == pytest.approx(fig["energy_pj"] / 1e12 * fig["step_latency_ps"] / 1e12)
        # ReRAM tiers are tiers 0 .. reram_tiers-1 (tier_names): their share of op energy, by numpy
        tier, energy = ops.column("tier").to_numpy(), ops.column("energy_pj").to_numpy()
        assert r["reram_energy_share"] == pytest.approx(energy[tier < r["reram_tiers"]].sum() / energy.sum())
    man = read_manifest(swept)
    assert man["command"] == "sweep" and man["status"] == "complete" and man["counts"]["complete"] == 4


def test_duckdb_reads_the_sweep_table(swept):
    duckdb = pytest.importorskip("duckdb")
    rel = duckdb.sql(f"SELECT * FROM '{swept / 'sweep.parquet'}'")
    assert len(rel.fetchall()) == 4
    faster = duckdb.sql(f"""SELECT "scenario.seq", min(step_latency_ps) FILTER (reram_tiers = 5) <
                            min(step_latency_ps) FILTER (reram_tiers = 4) FROM '{swept / 'sweep.parquet'}'
                            WHERE status = 'complete' GROUP BY 1 ORDER BY 1""").fetchall()
    assert [seq for seq, _ in faster] == [32, 64]


def test_rerun_recomputes_no_point_and_a_wider_grid_only_the_new_ones(swept, tmp_path, capsys):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(swept, out)
    before = _file_state(out)
    assert _sweep(*BASE, "--backend", "local", "--workers", "2", "--out", str(out)) == 0
    man = read_manifest(out)
    assert [p["computed"] for p in man["points"]] == [False] * 4
    assert _file_state(out) == before  # not one file of a point touched
    wider = [SCEN, "--grid", "scenario.seq=32,64,48", "--grid", "reram_tiers=4,5", "--transport", "stub", "--quiet"]
    assert _sweep(*wider, "--backend", "inline", "--out", str(out)) == 0
    computed = sorted(p["id"] for p in read_manifest(out)["points"] if p["computed"])
    assert computed == ["reram_tiers=4,scenario.seq=48", "reram_tiers=5,scenario.seq=48"]
    assert pq.read_table(out / "sweep.parquet").num_rows == 6
    # another base configuration in the same directory is refused, not mixed in
    capsys.readouterr()
    assert _sweep(*BASE, "--set", "noc.hbm_ports=8", "--backend", "inline", "--out", str(out)) == 2
    assert "another base" in capsys.readouterr().err


def _flaky(fail_ids: set[str], exc: BaseException):
    real = sweep_mod.run_point

    def run_point(point, out_dir):
        if point.id in fail_ids:
            out_dir.mkdir(parents=True)
            (out_dir / "manifest.json").write_text(json.dumps({"status": "running"}))  # as a killed run leaves it
            raise exc
        return real(point, out_dir)

    return run_point


def test_a_failing_point_does_not_stop_the_sweep_and_is_rerun(tmp_path, monkeypatch, capsys):
    out = tmp_path / "f"
    bad = "reram_tiers=5,scenario.seq=32"
    monkeypatch.setattr(sweep_mod, "run_point", _flaky({bad}, RuntimeError("model exploded")))
    assert _sweep(*BASE, "--backend", "inline", "--out", str(out)) == 1
    rows = {r["point"]: r for r in pq.read_table(out / "sweep.parquet").to_pylist()}
    assert rows[bad]["status"] == "failed" and rows[bad]["error"] == "RuntimeError: model exploded"
    assert rows[bad]["step_latency_ps"] is None
    assert [r["status"] for p, r in rows.items() if p != bad] == ["complete"] * 3
    assert read_manifest(out)["status"] == "failed"
    monkeypatch.undo()
    assert _sweep(*BASE, "--backend", "inline", "--out", str(out)) == 0
    assert [p["id"] for p in read_manifest(out)["points"] if p["computed"]] == [bad]
    assert read_manifest(out / "points" / bad)["status"] == "complete"


def test_ctrl_c_keeps_finished_points_and_the_next_run_resumes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "i"
    # inline runs the longest points first: seq 64, then seq 32, 5 tiers before 4 (one more LP); stop
    # at the third
    stop, after_stop = "reram_tiers=5,scenario.seq=32", "reram_tiers=4,scenario.seq=32"
    monkeypatch.setattr(sweep_mod, "run_point", _flaky({stop}, KeyboardInterrupt()))
    assert _sweep(*BASE, "--backend", "inline", "--out", str(out)) == 130
    assert "interrupted" in capsys.readouterr().err
    man = read_manifest(out)
    status = {p["id"]: p["status"] for p in man["points"]}
    assert man["status"] == "interrupted"
    assert status == {"reram_tiers=4,scenario.seq=64": "complete", "reram_tiers=5,scenario.seq=64": "complete",
                      stop: "interrupted", after_stop: "interrupted"}
    kept = _file_state(out)
    monkeypatch.undo()
    assert _sweep(*BASE, "--backend", "inline", "--out", str(out)) == 0
    assert sorted(p["id"] for p in read_manifest(out)["points"] if p["computed"]) == sorted([stop, after_stop])
    after = _file_state(out)
    assert all(after[k] == v for k, v in kept.items() if "seq=64" in k)  # finished points untouched


def test_report_and_compare_take_a_sweep_and_its_points(swept, cli):
    code, data, err = cli("report", str(swept), "--json")
    assert code == 0, err
    assert data["keys"] == ["scenario.seq", "reram_tiers"] and len(data["rows"]) == 4
    assert set(data["plots"]["written"]) >= {"sweep_step_latency_ms.png", "sweep_energy_j.png", "sweep_edp_j_s.png",
                                             "sweep_reram_energy_share.png", "sweep_pareto.png"}
    assert all((swept / "plots" / f).stat().st_size > 0 for f in data["plots"]["written"])
    code, data, err = cli("compare", f"{swept}@reram_tiers=5,scenario.seq=64", f"{swept}@scenario.seq=64,reram_tiers=4",
                          "--json")
    assert code == 0, err
    rows = {r["point"]: r for r in pq.read_table(swept / "sweep.parquet").to_pylist()}
    assert data["speedup"] == pytest.approx(rows["reram_tiers=4,scenario.seq=64"]["step_latency_ps"]
                                            / rows["reram_tiers=5,scenario.seq=64"]["step_latency_ps"])
    code, _d, err = cli("compare", f"{swept}@scenario.seq=64", f"{swept}@reram_tiers=4", "--json")
    assert code == 2 and "2 points" in err


def test_pareto_front_is_the_non_dominated_points():
    from atleus_dist.results.sweep_report import pareto_front

    pts = [(1.0, 5.0), (2.0, 2.0), (3.0, 3.0), (4.0, 1.0), (2.5, 2.0)]
    assert sorted(pareto_front(pts)) == [0, 1, 3]
    rng = np.random.default_rng(1)
    xy = [tuple(v) for v in rng.random((50, 2))]
    front = set(pareto_front(xy))
    for i, (x, y) in enumerate(xy):  # brute force: on the front iff nothing is better in both
        dominated = any(a <= x and b <= y and (a, b) != (x, y) for a, b in xy)
        assert (i in front) == (not dominated)


def test_a_point_that_asks_for_several_workers_gets_them(swept, tmp_path, digest_of):
    out = tmp_path / "pw"
    # 2 CPUs, 2 LP groups per point: one point at a time, each on the local backend (by-tier groups)
    assert _sweep(SCEN, "--grid", "reram_tiers=4,5", "--set", "scenario.seq=32", "--transport", "stub", "--quiet",
                  "--backend", "local", "--workers", "2", "--point-workers", "2", "--out", str(out)) == 0
    man = read_manifest(out)
    assert man["execution"]["concurrency"] == 1 and man["execution"]["point_workers"] == 2
    for tiers in ("4", "5"):
        point = out / "points" / f"reram_tiers={tiers}"
        part = read_manifest(point)["partition"]
        assert part["backend"] == "local" and len(part["groups"]) == 2
        assert digest_of(point) == digest_of(swept / "points" / f"reram_tiers={tiers},scenario.seq=32")


def test_a_worker_that_dies_fails_its_point_and_the_rest_still_run(tmp_path, monkeypatch):
    import os

    out = tmp_path / "k"
    crash = "reram_tiers=4,scenario.seq=64"  # one of the two points the pool runs first (longest first)
    real = sweep_mod.run_point

    def run_point(point, out_dir):
        if point.id == crash:
            out_dir.mkdir(parents=True)
            os._exit(9)  # as the kernel's OOM killer would end it: no exception, no manifest
        return real(point, out_dir)

    monkeypatch.setattr(sweep_mod, "run_point", run_point)  # the forked workers inherit it
    assert _sweep(*BASE, "--backend", "local", "--workers", "2", "--out", str(out)) == 1
    rows = {r["point"]: r for r in pq.read_table(out / "sweep.parquet").to_pylist()}
    assert rows[crash]["status"] == "failed" and "worker process died" in rows[crash]["error"]
    # points running in the other worker when the pool broke fail with it (how many depends on
    # timing: the survivor may have moved on to a second point); the others ran on a fresh pool
    failed = [r for r in rows.values() if r["status"] != "complete"]
    assert all(r["status"] == "failed" and "worker process died" in r["error"] for r in failed)
    assert len(failed) < len(rows)
    monkeypatch.undo()
    assert _sweep(*BASE, "--backend", "local", "--workers", "2", "--out", str(out)) == 0
    rows = pq.read_table(out / "sweep.parquet").to_pylist()
    assert {r["status"] for r in rows} == {"complete"}  # the rerun completed exactly what had failed


def test_api_sweep_returns_the_table(tmp_path):
    import atleus_dist.api as A

    t = A.sweep(tmp_path / "api", SCEN, grid=["scenario.seq=32,64"], transport="stub", backend="inline")
    assert t.num_rows == 2 and set(t.column("status").to_pylist()) == {"complete"}
    assert t.to_pylist() == pq.read_table(tmp_path / "api" / "sweep.parquet").to_pylist()

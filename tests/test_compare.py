"""``atleus-dist compare``: ratios against closed forms built from GPU baselines whose times are
known exactly (a compute-bound GEMM at full and half efficiency), a run against itself, a tier
run against a GPU baseline, differing token counts and input errors."""

from __future__ import annotations

import pytest

from atleus_dist.results.report import compare_runs
from atleus_dist.run.baselines import GpuConfig, write_gpu_baseline
from atleus_dist.workload import OpGraph, load_scenario
from tests.test_report import make_tier_run


def _gemm_run(out, cfg: GpuConfig, m=8192):
    g = OpGraph()
    a = g.add("gemm", "dynamic_mm", "fwd", 0, m=m, n=m, k=m)
    g.add("gemm.dx", "dynamic_mm", "bwd", 0, [a], m=m, n=m, k=m)
    g.add("state", "hbm_read", "update", 0, [a], nbytes=10**9)
    write_gpu_baseline(load_scenario("gpt2-medium-lora32-s1024"), out, cfg, graph=g)
    return out


@pytest.fixture(scope="module")
def gemm_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    fast = _gemm_run(root / "fast", GpuConfig())
    # half the compute rate and 1.5x the power: compute ops 2x slower, memory ops unchanged
    slow = _gemm_run(root / "slow", GpuConfig(compute_efficiency=0.5, board_power_w=600.0))
    return fast, slow


def test_ratios_match_closed_form(gemm_runs):
    fast, slow = gemm_runs
    c = compare_runs(fast, slow)
    gemm = round(2 * 8192**3 / 312e12 * 1e12)
    mem = round(10**9 / 2.039e12 * 1e12)
    t_fast, t_slow = 2 * gemm + mem, 2 * 2 * gemm + mem
    assert c["step_latency_ps_a"] == t_fast and c["step_latency_ps_b"] == t_slow
    assert c["speedup"] == pytest.approx(t_slow / t_fast)
    e_fast, e_slow = 400.0 * t_fast, 600.0 * t_slow
    assert c["energy_efficiency_ratio"] == pytest.approx(e_slow / e_fast)
    assert c["edp_ratio"] == pytest.approx(e_slow * t_slow / (e_fast * t_fast))
    ph = c["phase"]["ratios"]
    assert ph["fwd"]["time_ratio"] == pytest.approx(2.0) and ph["bwd"]["time_ratio"] == pytest.approx(2.0)
    assert ph["update"]["time_ratio"] == pytest.approx(1.0) and ph["update"]["energy_ratio"] == pytest.approx(1.5)
    assert c["kind"]["ratios"]["dynamic_mm"]["energy_ratio"] == pytest.approx(3.0)
    assert c["kind"]["ratios"]["dynamic_mm"]["time_ratio"] == pytest.approx(2.0)  # busy time of the GEMMs
    assert c["kind"]["ratios"]["hbm_read"]["time_ratio"] == pytest.approx(1.0)
    assert c["tier"]["ratios"]["gpu"]["time_ratio"] == pytest.approx(t_slow / t_fast)
    assert c["warnings"] == []
    back = compare_runs(slow, fast)
    assert back["speedup"] == pytest.approx(1 / c["speedup"])


def test_run_against_itself_is_one(gemm_runs, cli):
    fast, _ = gemm_runs
    code, c, err = cli("compare", str(fast), str(fast), "--json")
    assert code == 0, err
    assert c["speedup"] == c["energy_efficiency_ratio"] == c["edp_ratio"] == 1.0


def test_tier_run_against_gpu_baseline(tmp_path, cli):
    atleus, _, _ = make_tier_run(tmp_path / "atleus", layers=1, seq=128)
    code, _, err = cli("baseline", "gpu", "gpt2-medium-lora32-s1024", "--seq", "128", "--out",
                       str(tmp_path / "gpu"), "--json")
    assert code == 0, err
    code, c, err = cli("compare", str(atleus), str(tmp_path / "gpu"), "--json")
    assert code == 0, err
    assert c["baseline_b"] == "gpu" and c["baseline_a"] is None
    assert c["speedup"] == pytest.approx(c["step_latency_ps_b"] / c["step_latency_ps_a"])
    assert c["energy_efficiency_ratio"] == pytest.approx(c["energy_pj_b"] / c["energy_pj_a"])
    # one Atleus layer vs 24 GPU layers: the workload check says so
    assert any("different workloads" in w for w in c["warnings"])
    assert set(c["phase"]["ratios"]) == {"fwd", "bwd", "update"}
    assert "gpu" in c["tier"]["only_in_b"] and c["tier"]["ratios"] == {}


def test_different_token_counts_use_per_token_ratios(tmp_path):
    sc = load_scenario("gpt2-medium-lora32-s1024")
    import dataclasses

    write_gpu_baseline(dataclasses.replace(sc, seq=256), tmp_path / "short")
    write_gpu_baseline(sc, tmp_path / "long")
    c = compare_runs(tmp_path / "short", tmp_path / "long")
    assert any("different token counts" in w for w in c["warnings"])
    tps_a = 256 / (c["step_latency_ps_a"] * 1e-12)
    tps_b = 1024 / (c["step_latency_ps_b"] * 1e-12)
    assert c["speedup"] == pytest.approx(tps_a / tps_b)
    assert c["energy_efficiency_ratio"] == pytest.approx((c["energy_pj_b"] / 1024) / (c["energy_pj_a"] / 256))


def test_compare_errors(tmp_path, gemm_runs, cli):
    fast, _ = gemm_runs
    code, _, err = cli("compare", str(fast), str(tmp_path), "--json")
    assert code == 2 and "argument dir_b" in err and "no manifest.json" in err
    code, _, err = cli("compare", str(tmp_path), str(fast))
    assert code == 2 and "argument dir_a" in err
    code, _, err = cli("noc", "--mesh", "2x2x1", "--warmup", "10", "--measure", "50", "--drain", "50",
                       "--backend", "inline", "--quiet", "--out", str(tmp_path / "noc"))
    assert code == 0, err
    code, _, err = cli("compare", str(tmp_path / "noc"), str(fast))
    assert code == 2 and "no ops table" in err and len(err.strip().splitlines()) == 1

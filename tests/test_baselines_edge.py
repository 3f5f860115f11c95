"""Baselines an architect would pick: Jetson AGX Orin from its published figures and power modes,
the realistic-efficiency profile per kernel class, and compare's explanation in words."""

from __future__ import annotations

import pytest

from atleus_dist.kernel.errors import ConfigError
from atleus_dist.run.baselines import GpuConfig, evaluate_gpu, gpu_config, jetson_orin
from atleus_dist.workload import OpGraph


def test_orin_maxn_is_the_published_figures():
    cfg = jetson_orin()
    # 170 sparse INT8 TOPS (technical brief) -> 85 dense INT8 -> 42.5 dense FP16 TFLOPS
    assert cfg.peak_flops_per_s == pytest.approx(170e12 / 2 / 2)
    assert cfg.hbm_bytes_per_s == pytest.approx(256 / 8 * 6400e6)  # LPDDR5 256-bit x 6400 MT/s = 204.8 GB/s
    assert cfg.board_power_w == 60.0
    assert gpu_config(device="jetson-orin") == cfg


def test_power_modes_scale_clock_tpcs_and_power():
    fifteen = jetson_orin("15w")
    assert fifteen.board_power_w == 15.0
    assert fifteen.peak_flops_per_s == pytest.approx(42.5e12 * 3 / 8 * 420.75 / 1301.25)
    assert fifteen.hbm_bytes_per_s == pytest.approx(204.8e9 * 2133 / 3199)
    assert gpu_config({"mode": "30w"}, device="jetson-orin").board_power_w == 30.0
    with pytest.raises(ConfigError) as e:
        jetson_orin("100w")
    assert e.value.field == "mode"
    with pytest.raises(ConfigError) as e:
        gpu_config({"mode": "15w"})  # the A100 has no such modes
    assert e.value.field == "mode"


def test_realistic_profile_applies_per_kernel_class_efficiency():
    g = OpGraph()
    g.add("gemm", "dynamic_mm", "fwd", 0, m=8192, n=8192, k=8192)
    g.add("qk", "dynamic_mm", "fwd", 0, m=8192, n=8192, k=64, count=16)  # per-head, batched
    ideal, real = GpuConfig(), gpu_config({"profile": "realistic"})
    assert real.compute_efficiency == 0.7 and real.batched_gemm_efficiency == 0.35 and real.name.endswith("realistic")
    a, b = evaluate_gpu(g, ideal), evaluate_gpu(g, real)
    da, db = a["end_ps"] - a["start_ps"], b["end_ps"] - b["start_ps"]
    assert db[0] == pytest.approx(da[0] / 0.7 + real.launch_overhead_ps, abs=2)
    qk_compute = 2 * 8192 * 8192 * 64 * 16 / (312e12 * 0.35) * 1e12
    qk_memory = (8192 * 64 + 64 * 8192 + 8192 * 8192) * 16 * 2 / (2.039e12 * 0.8) * 1e12
    assert db[1] == pytest.approx(max(qk_compute, qk_memory) + real.launch_overhead_ps, abs=2)
    with pytest.raises(ConfigError) as e:
        gpu_config({"profile": "optimistic"})
    assert e.value.field == "profile"


def test_jetson_baseline_cli_and_compare_in_words(tmp_path, cli):
    code, fig, err = cli("baseline", "jetson-orin", "gpt2-medium-lora32-s1024", "--seq", "64", "--out",
                         str(tmp_path / "orin"), "--json")
    assert code == 0, err
    assert fig["baseline"] == "jetson-orin" and fig["gpu"] == "Jetson-AGX-Orin-64GB-maxn"
    code, _, err = cli("baseline", "gpu", "gpt2-medium-lora32-s1024", "--seq", "64", "--out", str(tmp_path / "a100"),
                       "--json")
    assert code == 0, err
    code, c, err = cli("compare", str(tmp_path / "a100"), str(tmp_path / "orin"), "--json")
    assert code == 0, err
    words = " ".join(c["explanation"])
    # same graph, ops in series: the A100 wins by between its compute and bandwidth advantages
    assert c["speedup"] > 1 and words.startswith("A is") and "faster than B" in words
    compute_ratio, bandwidth_ratio = 312e12 / 42.5e12, 2.039e12 / 204.8e9  # 7.3x and 10.0x
    assert compute_ratio * 0.99 < c["speedup"] < bandwidth_ratio * 1.01
    assert "memory-bound" in words and "Jetson-AGX-Orin" in words

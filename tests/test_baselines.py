"""GPU roofline baseline against closed forms: a big GEMM is compute-bound (2MNK / peak), an
element-wise add is memory-bound (bytes / bandwidth), launches and HBM-op policy add exactly what
they say; the written run directory is complete and readable by ``report``."""

from __future__ import annotations

import json

import pytest

from atleus_dist.kernel.errors import ConfigError
from atleus_dist.results import read_manifest, read_table
from atleus_dist.run.baselines import GpuConfig, evaluate_gpu, gpu_config, write_gpu_baseline
from atleus_dist.workload import OpGraph, compile_step, load_scenario

PEAK = 312e12  # A100 dense FP16/BF16 tensor FLOP/s (datasheet)
BW = 2.039e12  # A100 80 GB SXM HBM2e B/s (datasheet)


def gemm_graph(m=8192, n=8192, k=8192) -> OpGraph:
    g = OpGraph()
    g.add("gemm", "dynamic_mm", "fwd", 0, m=m, n=n, k=k)
    return g


def add_graph(elements=100_000_000) -> OpGraph:
    g = OpGraph()
    g.add("add", "vector", "fwd", 0, vector_kind="add", elements=elements)
    return g


def test_defaults_are_the_cited_a100_figures():
    cfg = GpuConfig()
    assert (cfg.peak_flops_per_s, cfg.hbm_bytes_per_s, cfg.board_power_w) == (PEAK, BW, 400.0)


def test_big_gemm_is_compute_bound():
    m = n = k = 8192
    cols = evaluate_gpu(gemm_graph(m, n, k))
    t_ps = 2 * m * n * k / PEAK * 1e12
    assert cols["end_ps"][0] - cols["start_ps"][0] == round(t_ps)  # 3.524 ms
    assert cols["bytes"][0] == 3 * m * n * 2  # A, B read and C written once in FP16
    assert 3 * m * n * 2 / BW * 1e12 < t_ps / 10  # far from the memory roof
    assert cols["energy_pj"][0] == pytest.approx(400.0 * round(t_ps))  # 1 W x 1 ps = 1 pJ
    half = evaluate_gpu(gemm_graph(m, n, k), GpuConfig(compute_efficiency=0.5))
    assert half["end_ps"][0] == round(2 * t_ps)


def test_elementwise_add_is_memory_bound():
    e = 100_000_000
    cols = evaluate_gpu(add_graph(e))
    nbytes = 3 * e * 2  # two FP16 inputs read, one output written
    assert cols["bytes"][0] == nbytes
    assert cols["end_ps"][0] == round(nbytes / BW * 1e12)  # ~294 us
    slow = evaluate_gpu(add_graph(e), GpuConfig(hbm_bytes_per_s=1.555e12, memory_efficiency=0.8))
    assert slow["end_ps"][0] == round(nbytes / (1.555e12 * 0.8) * 1e12)


def test_ops_run_in_series_with_launch_overhead_and_hbm_policy():
    g = OpGraph()
    a = g.add("gemm", "dynamic_mm", "fwd", 0, m=4096, n=4096, k=4096)
    b = g.add("save", "hbm_write", "fwd", 0, [a], nbytes=10**9)
    c = g.add("add", "vector", "bwd", 0, [b], vector_kind="add", elements=10**6)
    g.add("state", "hbm_read", "update", 0, [c], nbytes=2 * 10**9)
    launch = 4_000_000
    cols = evaluate_gpu(g, GpuConfig(launch_overhead_ps=launch))
    gemm = round(2 * 4096**3 / PEAK * 1e12) + launch
    add = round(3 * 10**6 * 2 / BW * 1e12) + launch
    state = round(2 * 10**9 / BW * 1e12)  # an HBM transfer launches no kernel
    # default policy "update": saved activations cost nothing (kernel outputs), optimizer state does
    assert list(cols["end_ps"] - cols["start_ps"]) == [gemm, 0, add, state]
    assert list(cols["start_ps"][1:]) == list(cols["end_ps"][:-1]) and cols["start_ps"][0] == 0
    every = evaluate_gpu(g, GpuConfig(hbm_ops="all"))
    assert every["end_ps"][1] - every["start_ps"][1] == round(10**9 / BW * 1e12)
    none = evaluate_gpu(g, GpuConfig(hbm_ops="none"))
    assert none["end_ps"][3] == none["end_ps"][2]


def test_dynamic_energy_adds_per_flop_and_byte():
    cfg = GpuConfig(dynamic_pj_per_flop=0.5, dynamic_pj_per_byte=10.0)
    m = n = k = 1024
    cols = evaluate_gpu(gemm_graph(m, n, k), cfg)
    t = cols["end_ps"][0]
    assert cols["energy_pj"][0] == pytest.approx(400.0 * t + 0.5 * 2 * m * n * k + 10.0 * 3 * m * n * 2)


def test_real_step_lies_between_the_roofs(tmp_path):
    sc = load_scenario("gpt2-medium-lora32-s1024")
    g = compile_step(sc)
    out = tmp_path / "gpu"
    manifest = write_gpu_baseline(sc, out, graph=g)
    assert manifest["status"] == "complete" and manifest["baseline"] == "gpu"
    assert read_manifest(out)["config"]["scenario"]["seq"] == 1024
    ops = read_table(out, "ops").to_pydict()
    flops = sum(g.flops_by_phase().values())  # independent count from the graph
    assert 2 * sum(ops["macs"]) == flops
    f = manifest["figures"]
    lat = f["step_latency_ps"]
    compute_roof = flops / PEAK * 1e12
    memory_roof = sum(ops["bytes"]) / BW * 1e12
    assert max(compute_roof, memory_roof) <= lat + len(g) <= compute_roof + memory_roof + len(g)
    assert f["energy_pj"] == pytest.approx(400.0 * lat)
    assert f["tokens"] == 1024 and f["tokens_per_s"] == pytest.approx(1024 / (lat * 1e-12))
    schema = read_table(out, "ops").schema
    assert set(schema.names) == {"op", "tier", "core", "layer", "kind", "phase", "start_ps", "end_ps", "macs",
                                 "bytes", "energy_pj"}


def test_config_validation_names_the_field():
    for kw, field in (({"compute_efficiency": 1.5}, "compute_efficiency"), ({"peak_flops_per_s": 0}, "peak_flops_per_s"),
                      ({"hbm_ops": "some"}, "hbm_ops"), ({"launch_overhead_ps": -1}, "launch_overhead_ps")):
        with pytest.raises(ConfigError) as e:
            GpuConfig(**kw)
        assert e.value.field == field
    assert gpu_config({"launch_overhead_ps": "3000000"}).launch_overhead_ps == 3_000_000
    with pytest.raises(ConfigError) as e:
        gpu_config({"tflops": "1"})
    assert e.value.field == "tflops"


def test_baseline_cli(tmp_path, cli):
    out = tmp_path / "gpu"
    code, data, err = cli("baseline", "gpu", "gpt2-medium-lora32-s1024", "--seq", "256", "--set",
                          "launch_overhead_ps=3000000", "--out", str(out), "--json")
    assert code == 0, err
    assert data["baseline"] == "gpu" and data["tokens"] == 256
    m = json.loads((out / "manifest.json").read_text())
    assert m["config"]["gpu"]["launch_overhead_ps"] == 3_000_000 and m["status"] == "complete"
    code, rep, err = cli("report", str(out), "--json", "--no-plots")
    assert code == 0, err
    assert rep["summary"]["step_latency_ps"] == data["step_latency_ps"] and rep["baseline"] == "gpu"
    assert set(rep["breakdown"]["tier"]) == {"gpu"}
    # the serial GPU: phase spans add up to the step
    assert sum(g["span_ps"] for g in rep["breakdown"]["phase"].values()) == data["step_latency_ps"]
    # errors: one line, exit 2, nothing complete written
    code, _, err = cli("baseline", "gpu", "gpt2-medium-lora32-s1024", "--out", str(out), "--json")
    assert code == 2 and "already holds a run" in err
    code, _, err = cli("baseline", "gpu", "no-such-scenario", "--out", str(tmp_path / "x"))
    assert code == 2 and "unknown scenario" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("baseline", "gpu", "gpt2-medium-lora32-s1024", "--set", "compute_efficiency=2",
                       "--out", str(tmp_path / "y"))
    assert code == 2 and "compute_efficiency" in err
    assert not (tmp_path / "y" / "manifest.json").exists()

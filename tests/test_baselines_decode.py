"""GPU and Jetson Orin baselines of mode generate: a decode step at batch 1 is bound by reading
every weight once plus the KV cache, (weight bytes + KV bytes) / memory bandwidth (A100 80 GB SXM:
2,039 GB/s; Jetson AGX Orin LPDDR5: 204.8 GB/s), and the figures of both sides compare."""

from __future__ import annotations

import numpy as np
import pytest

from atleus_dist.hw.params import ACT_BYTES
from atleus_dist.results.report import compare_runs
from atleus_dist.run.baselines import GpuConfig, evaluate_gpu, gpu_config, write_gpu_baseline
from atleus_dist.workload import compile_step
from atleus_dist.workload.decode import kv_bytes_per_token_layer
from atleus_dist.workload.model import load_model
from atleus_dist.workload.scenario import Scenario

SC = Scenario(load_model("gpt2-medium"), mode="generate", seq=64, new_tokens=3, batch=1, pipeline_chunk_tokens=64)


def _weight_bytes(sc) -> int:
    m = sc.model
    linear = m.layers * sum(k * n for k, n in m.linear_shapes().values())
    k, n = m.head_shape()
    return (linear + k * n) * ACT_BYTES  # FP16 weights on the GPU


@pytest.mark.parametrize("device,bw", [("a100", 2.039e12), ("jetson-orin", 204.8e9)])
def test_decode_step_is_weights_plus_kv_over_bandwidth(device, bw):
    cfg = gpu_config({}, device)
    assert cfg.hbm_bytes_per_s == bw
    cols = evaluate_gpu(compile_step(SC), cfg)
    step = cols["step"]
    dur = cols["end_ps"] - cols["start_ps"]
    for t in range(SC.new_tokens):
        kv = SC.model.layers * kv_bytes_per_token_layer(SC) * (SC.seq + t) * SC.batch
        floor_ps = (_weight_bytes(SC) + kv) / bw * 1e12
        got = dur[step == t].sum()
        # every op is memory-bound at batch 1; the rest is activations and vector ops (< 2%)
        assert floor_ps <= got <= 1.02 * floor_ps, (t, got, floor_ps)
        assert cols["bytes"][step == t].sum() >= _weight_bytes(SC) + kv


def test_compare_prints_decode_ratios_and_bounds(tmp_path):
    a = write_gpu_baseline(SC, tmp_path / "orin", gpu_config({}, "jetson-orin"), label="jetson-orin")
    b = write_gpu_baseline(SC, tmp_path / "a100", GpuConfig())
    assert a["status"] == b["status"] == "complete"
    c = compare_runs(tmp_path / "orin", tmp_path / "a100")
    d = c["decode"]
    # both memory-bound: the speed-up is the bandwidth ratio, up to rounding of op times
    assert d["decode_speedup"] == pytest.approx(204.8e9 / 2.039e12, rel=1e-3)
    assert "memory-bound" in d["decode_bound_a"] and "memory-bound" in d["decode_bound_b"]
    fa = a["figures"]
    assert np.isclose(fa["decode_memory_bound_share"], 1.0)

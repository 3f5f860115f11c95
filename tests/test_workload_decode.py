"""Mode generate (issue 22): prefill + decode with a KV cache, checked against closed forms.

- the KV bytes each decode step t reads, from the run's ops table, equal
  layers x 2 x kv_heads x head_dim x (seq + t) x bytes x batch;
- one decode token through one weight on its ReRAM core takes the ReRAM core model's closed form
  for 1-row inputs: (batch x input slices + fill) x cycle;
- the cache size follows GQA's kv heads; phases and steps are carried by ops and the ops table;
- the figures follow from the token ends; bad inputs are refused in one line naming the path.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from atleus_dist.api import simulate
from atleus_dist.hw.params import ACT_BYTES
from atleus_dist.hw.reram import ReramCore, ReramCoreConfig
from atleus_dist.hw.tier import KIND_CODES, PHASE_CODES
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.results.reader import read_table
from atleus_dist.results.summary import summary_figures
from atleus_dist.workload import Mapper, compile_step
from atleus_dist.workload.decode import kv_bytes_per_token_layer, kv_cache_bytes
from atleus_dist.workload.model import load_model
from atleus_dist.workload.scenario import Scenario

TINY = dict(seq=24, new_tokens=5, batch=2, pipeline_chunk_tokens=8)


def _sc(model="gpt2-medium", **kw):
    return Scenario(load_model(model), mode="generate", **{**TINY, **kw})


def test_kv_bytes_per_token_layer_follows_kv_heads():
    # Llama-3-8B: 8 KV heads of 128 (GQA); Llama-2-7B: 32 of 128; 16-bit K and V
    assert kv_bytes_per_token_layer(_sc("llama-3-8b")) == 2 * 8 * 128 * 2
    assert kv_bytes_per_token_layer(_sc("llama-2-7b")) == 2 * 32 * 128 * 2
    sc = _sc("llama-3-8b")
    assert kv_cache_bytes(sc) == 32 * 2 * 8 * 128 * 2 * (24 + 5) * 2


@pytest.mark.parametrize("model", ["gpt2-medium", "llama-3-8b"])
def test_graph_kv_reads_per_step_closed_form(model):
    sc = _sc(model)
    m = sc.model
    g = compile_step(sc)
    for t in range(sc.new_tokens):
        reads = sum(op.nbytes for op in g if op.step == t and op.kind == "hbm_read" and op.name.endswith("kv_read"))
        assert reads == m.layers * 2 * m.kv_heads * m.head_dim * (sc.seq + t) * ACT_BYTES * sc.batch
        appends = sum(op.nbytes for op in g if op.step == t and op.kind == "hbm_write")
        assert appends == m.layers * 2 * m.kv_heads * m.head_dim * ACT_BYTES * sc.batch
    prefill_writes = sum(op.nbytes for op in g if op.phase == "prefill" and op.kind == "hbm_write")
    assert prefill_writes == m.layers * kv_bytes_per_token_layer(sc) * sc.seq * sc.batch
    # attention of step t covers seq + t cached positions and the new one, grouped by KV head
    qk = [op for op in g if op.step == 2 and op.name.endswith(".qk")]
    assert len(qk) == m.layers
    assert all(op.n == sc.seq + 3 and op.m == m.heads // m.kv_heads and op.count == sc.batch * m.kv_heads
               for op in qk)
    assert {op.phase for op in g} == {"prefill", "decode"}
    assert {op.step for op in g if op.phase == "prefill"} == {-1}
    assert {op.step for op in g if op.phase == "decode"} == set(range(sc.new_tokens))


def test_decode_static_matmuls_are_matrix_vector():
    sc = _sc()
    g = compile_step(sc)
    static = [op for op in g if op.phase == "decode" and op.kind == "static_mm"]
    # every layer's 6 weights (q, k, v, o, up, down) and the LM head, per step, one row per sequence
    assert len(static) == sc.new_tokens * (sc.model.layers * 6 + 1)
    assert all(op.m == sc.batch and op.count == 1 for op in static)
    # the prefill's head: the last position of each sequence only, then one sampling op per step
    head = [op for op in g if op.phase == "prefill" and op.weight == "head"]
    assert len(head) == 1 and head[0].m == sc.batch
    samples = [op for op in g if op.vector_kind == "argmax"]
    assert len(samples) == sc.new_tokens + 1 and all(op.elements == sc.batch * sc.model.vocab for op in samples)


def test_decode_token_on_one_reram_core_is_the_closed_form():
    sc = _sc(batch=1)
    cfg = ReramCoreConfig()
    mp = Mapper().map(sc, compile_step(sc))
    slices = math.ceil(cfg.input_bits / cfg.dac_bits)
    cycle = max(cfg.xbar_read_ps, math.ceil(cfg.xbar_cols * 1_000_000 / cfg.adc_msps))
    expect = (1 * slices + cfg.pipeline_fill_cycles) * cycle  # (1 x 16 + 3) x 100 ns = 1.9 us
    assert expect == 1_900_000
    for i, op in enumerate(mp.graph):
        if op.phase == "decode" and op.kind == "static_mm":
            assert mp.latency_ps[i] == expect
            p = mp.placements[op.weight]
            assert mp.latency_ps[i] == ReramCore(cfg).mvm(p.block, 1).latency_ps


def test_generate_run_ops_table_and_figures(tmp_path):
    sc_sets = [f"scenario.{k}={v}" for k, v in TINY.items()]
    run = simulate("gpt2-medium-generate-p128-n128", out=tmp_path / "r", transport="stub", backend="inline",
                   sets=sc_sets)
    ops = read_table(run.path, "ops")
    step = ops.column("step").to_numpy()
    phase = ops.column("phase").to_numpy()
    kind = ops.column("kind").to_numpy()
    nbytes = ops.column("bytes").to_numpy()
    assert set(np.unique(phase)) == {PHASE_CODES["prefill"], PHASE_CODES["decode"]}
    assert ((phase == PHASE_CODES["decode"]) == (step >= 0)).all()
    m = load_model("gpt2-medium")
    # KV reads of step t from the ops table: every HBM read of the step but the token's embedding
    for t in range(TINY["new_tokens"]):
        reads = nbytes[(step == t) & (kind == KIND_CODES["hbm_read"])].sum()
        embed = TINY["batch"] * m.d_model * ACT_BYTES
        assert reads - embed == m.layers * 2 * m.kv_heads * m.head_dim * (TINY["seq"] + t) * ACT_BYTES * TINY["batch"]
    fig = summary_figures(run.path)
    end = ops.column("end_ps").to_numpy()
    ends = [end[step == t].max() for t in range(-1, TINY["new_tokens"])]
    tokens = np.diff(ends)
    assert fig["ttft_ps"] == ends[0] - ops.column("start_ps").to_numpy().min()
    assert fig["decode_token_ps_mean"] == pytest.approx(tokens.mean())
    assert fig["decode_tokens_per_s"] == pytest.approx(TINY["batch"] * len(tokens) / ((ends[-1] - ends[0]) / 1e12))
    energy = ops.column("energy_pj").to_numpy()
    assert fig["decode_energy_per_token_j"] == pytest.approx(
        energy[step >= 0].sum() / (TINY["batch"] * TINY["new_tokens"]) / 1e12)
    shares = [v for k, v in fig.items() if k.startswith("decode_share_")]
    assert sum(shares) == pytest.approx(1.0)
    assert fig["decode_bound"]


def test_kv_cache_edram_has_no_kv_ops_and_refuses_what_does_not_fit():
    sc = _sc(kv_cache="edram")
    g = compile_step(sc)
    assert not [op for op in g if "kv_" in op.name]
    Mapper().map(sc, g)  # 24 layers x 4 KB x 29 x 2 = 5.6 MB fit the 64 MB of eDRAM
    big = _sc(kv_cache="edram", seq=512, new_tokens=512, batch=8)
    assert kv_cache_bytes(big) > 64 * 16 * 64 * 1024  # 64 cores x 16 tiles x 64 KB
    with pytest.raises(ConfigError) as exc:
        Mapper().map(big, compile_step(big))
    assert exc.value.field == "kv_cache"


@pytest.mark.parametrize("sets,path", [
    (["scenario.new_tokens=4"], "scenario.new_tokens"),  # the default scenario is a fine-tuning one
    (["scenario.mode=generate"], "scenario.new_tokens"),  # generate without new_tokens
    (["scenario.mode=generate", "scenario.new_tokens=0"], "scenario.new_tokens"),
    (["scenario.mode=generate", "scenario.new_tokens=5000"], "scenario.new_tokens"),
    (["scenario.mode=generate", "scenario.seq=1000", "scenario.new_tokens=100"], "scenario.new_tokens"),
    (["scenario.kv_cache=edram"], "scenario.kv_cache"),
    (["scenario.mode=generate", "scenario.new_tokens=4", "scenario.kv_cache=sram"], "scenario.kv_cache"),
])
def test_bad_generate_inputs_are_refused_in_one_line(cli, tmp_path, sets, path):
    out = tmp_path / "run"
    args = [a for s in sets for a in ("--set", s)]
    code, _data, err = cli("run", *args, "--transport", "stub", "--out", str(out))
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and path in lines[0], err
    assert not (out / "manifest.json").exists()


def test_bert_cannot_generate(cli, tmp_path):
    code, _d, err = cli("run", "bert-large-lora32-s512", "--set", "scenario.mode=generate", "--set",
                        "scenario.new_tokens=4", "--set", "scenario.finetune=lora", "--transport", "stub",
                        "--out", str(tmp_path / "r"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "scenario.mode" in err, err


def test_decode_attention_is_split_over_systolic_cores_with_macs_kept():
    sc = _sc("llama-3-8b", batch=1)
    g = compile_step(sc)
    mp = Mapper().map(sc, g)
    step1 = [(i, op) for i, op in enumerate(mp.graph) if op.step == 1 and op.layer == 3 and op.kind == "dynamic_mm"]
    parts = {op.part for _i, op in step1}
    assert len(parts) == min(mp.arch.hbm.channels, sc.model.kv_heads)  # 8 KV heads over 8 channels' cores
    assert len({mp.core[i] for i, _op in step1}) == len(parts)
    whole = [op for op in g if op.step == 1 and op.layer == 3 and op.kind == "dynamic_mm"]
    assert sum(op.macs for _i, op in step1) == sum(op.macs for op in whole)


def test_generate_digest_is_the_same_on_every_backend_and_partition(cli, digest_of, tmp_path):
    sets = [a for k, v in dict(TINY, new_tokens=2).items() for a in ("--set", f"scenario.{k}={v}")]
    digests = set()
    for name, flags in (("inline", ["--backend", "inline"]), ("local", ["--backend", "local", "--workers", "2"])):
        out = tmp_path / name
        code, _d, err = cli("run", "gpt2-medium-generate-p128-n128", *sets, "--transport", "stub", *flags,
                            "--out", str(out), "--quiet")
        assert code == 0, err
        digests.add(digest_of(out))
    assert len(digests) == 1


def test_generate_on_a_pipeline_of_chips(tmp_path):
    """Two chips: the KV closed form holds over both chips' ops, each decode step's activations
    cross the link forward and its token back, and one sequence gains nothing from the pipeline."""
    sets = [f"scenario.{k}={v}" for k, v in dict(TINY, batch=1).items()]
    one = simulate("gpt2-medium-generate-p128-n128", out=tmp_path / "one", transport="stub", backend="inline",
                   sets=sets)
    two = simulate("gpt2-medium-generate-p128-n128", out=tmp_path / "two", transport="stub", backend="inline",
                   sets=[*sets, "system.chips=2"])
    ops = read_table(two.path, "ops")
    step, kind, nbytes = (ops.column(c).to_numpy() for c in ("step", "kind", "bytes"))
    m = load_model("gpt2-medium")
    for t in range(TINY["new_tokens"]):
        reads = nbytes[(step == t) & (kind == KIND_CODES["hbm_read"])].sum() - m.d_model * ACT_BYTES
        assert reads == m.layers * 2 * m.kv_heads * m.head_dim * (TINY["seq"] + t) * ACT_BYTES
        # forward at the stage boundary, and (from step 1 on) the previous token back to stage 0
        sends = ((step == t) & (kind == KIND_CODES["link_send"])).sum()
        assert sends >= 1
    f1, f2 = summary_figures(one.path), summary_figures(two.path)
    assert f2["decode_token_ps_mean"] >= f1["decode_token_ps_mean"]
    assert f2["ttft_ps"] >= f1["ttft_ps"]

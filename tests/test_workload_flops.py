"""FLOPs per phase of the compiled step against the closed forms, from the *published* totals.

Closed forms (Kaplan et al. 2020; models.md): with P the parameters used in matmuls (published total
minus pure look-up tables: untied input embeddings, learned positions, token types, unused pooler)
and T = batch x seq tokens,
    forward    = 2 P T + 4 L b s^2 d                       (QK^T and AV: 2 x 2 b s^2 d per layer)
    backward   = 4 P T + 8 L b s^2 d      (full fine-tuning: activation and weight gradients)
               = 2 P T + 8 L b s^2 d + 4 P_lora T   (LoRA: frozen weights get no weight gradient)
    forward   += 2 P_lora T               (LoRA adapters)
so a full step is ~6 P T + 12 L b s^2 d and a LoRA step ~4 P T + 12 L b s^2 d + 6 P_lora T.
Biases, norms and element-wise ops are not matmul FLOPs; they make the <1% difference.
"""

import dataclasses

import pytest

from atleus_dist.workload.compiler import compile_step
from atleus_dist.workload.model import load_model
from atleus_dist.workload.scenario import Scenario

# (published total, look-up-only parameters) -- totals from models.md
CASES = {
    "gpt2-medium": (354_823_168, 1024 * 1024),  # learned positions; tied wte is also the LM head
    "bloom-560m": (559_214_592, 0),  # ALiBi, tied embeddings
    "llama-2-7b": (6_738_415_616, 32000 * 4096),  # untied: input embedding is a look-up
    "llama-3-8b": (8_030_261_248, 128256 * 4096),  # GQA does not change attention FLOPs
    "bert-large-uncased": (335_141_888, 512 * 1024 + 2 * 1024 + 1024 * 1024 + 1024),  # pos, types, pooler
}


def closed_form(name, mode, seq, batch=1, lora=None):
    published, lookup = CASES[name]
    m = load_model(name)
    P, T, L, d = published - lookup, seq * batch, m.layers, m.d_model
    attn_f = 4 * L * batch * seq * seq * d
    if mode == "inference":
        return {"fwd": 2 * P * T + attn_f, "bwd": 0}
    if lora is None:
        return {"fwd": 2 * P * T + attn_f, "bwd": 4 * P * T + 2 * attn_f}
    rank, targets = lora
    p_lora = L * rank * sum(2 * d if t in ("q", "o") else d + m.kv_dim for t in targets)
    return {"fwd": 2 * P * T + attn_f + 2 * p_lora * T, "bwd": 2 * P * T + 2 * attn_f + 4 * p_lora * T}


def _check(sc, expected):
    got = compile_step(sc).flops_by_phase()
    for phase, want in expected.items():
        if want == 0:
            assert got[phase] == 0
        else:
            assert got[phase] == pytest.approx(want, rel=0.01), phase
    assert got["update"] == 0  # the optimizer update is element-wise, not matmul FLOPs


@pytest.mark.parametrize("name", sorted(CASES))
def test_lora_step(name):
    seq = 512
    sc = Scenario(load_model(name), mode="finetune", seq=seq, lora_rank=32, lora_targets=("q", "v"))
    _check(sc, closed_form(name, "finetune", seq, lora=(32, ("q", "v"))))


@pytest.mark.parametrize("name", ["gpt2-medium", "bloom-560m"])
def test_full_step_is_six_p_t(name):
    sc = Scenario(load_model(name), mode="finetune", finetune="full", seq=1024, batch=2)
    exp = closed_form(name, "finetune", 1024, batch=2)
    _check(sc, exp)
    got = compile_step(sc).flops_by_phase()
    assert got["bwd"] == pytest.approx(2 * got["fwd"], rel=0.01)  # the classic 1:2 forward:backward


@pytest.mark.parametrize("name", ["gpt2-medium", "llama-3-8b"])
def test_inference(name):
    sc = Scenario(load_model(name), mode="inference", seq=256, batch=3)
    _check(sc, closed_form(name, "inference", 256, batch=3))


def test_lora_on_all_attention_weights_with_gqa():
    sc = Scenario(load_model("llama-3-8b"), seq=256, lora_rank=8, lora_targets=("q", "k", "v", "o"))
    _check(sc, closed_form("llama-3-8b", "finetune", 256, lora=(8, ("q", "k", "v", "o"))))


def test_graph_is_topological_and_typed():
    g = compile_step(Scenario(load_model("gpt2-medium"), seq=128, pipeline_chunk_tokens=128))
    for op in g:
        assert all(d < op.id for d in op.deps)
        if op.kind == "static_mm":
            assert op.tier == "reram" and op.weight
        if op.kind == "dynamic_mm":
            assert op.tier == "systolic" and not op.weight
    # frozen weights: no weight-gradient matmul for a static weight, but LoRA gradients exist
    names = {op.name for op in g}
    assert "L0.q.dw" not in names and "L0.q.lora_a.dw" in names and "L0.k.lora_a.dw" not in names
    assert "L0.q.dx" in names and g.ops[[o.name for o in g].index("L0.q.dx")].transposed


def test_full_finetune_rewrites_every_static_weight():
    sc = Scenario(load_model("gpt2-medium"), seq=64, finetune="full")
    g = compile_step(sc)
    static = {op.weight for op in g if op.kind == "static_mm"}
    rewritten = {op.weight for op in g if op.kind == "program"}
    assert static == rewritten and len(static) == 24 * 6 + 1

"""Layer pipelining in the compiled graph: token chunks, their dependency rule (causal vs
bidirectional attention, reversed backward), totals unchanged by chunking, and one chunk equal to
the unpipelined graph."""

from collections import Counter

import pytest

from atleus_dist.kernel.errors import ConfigError
from atleus_dist.workload.compiler import compile_step
from atleus_dist.workload.model import load_model
from atleus_dist.workload.scenario import Scenario, scenario_from_dict

# One chunk must be the unpipelined graph: the same ops in the same order with the same shapes and
# deps, whichever way it is asked for. And that graph is checkable by hand: one forward static
# matmul per linear weight per layer, each over every token of the step (m = seq x batch).
ONE_CHUNK = [
    ("gpt2-medium", dict(seq=128)),
    ("bert-large-uncased", dict(seq=64, batch=2)),
    ("llama-3-8b", dict(seq=32, finetune="full")),
    ("vit-b-16", dict(seq=197, mode="inference")),
    ("vit-b-16", dict(seq=197, lora_targets=("q", "k", "v", "o"), lora_rank=8)),
    ("roberta-base", dict(seq=64, finetune="full", optimizer="sgd")),
]


def _rows(g):
    return [(o.name, o.kind, o.phase, o.layer, o.m, o.n, o.k, o.count, o.weight, o.transposed, o.vector_kind,
             o.elements, o.nbytes, o.deps) for o in g]


@pytest.mark.parametrize("name,kw", ONE_CHUNK)
def test_one_chunk_reproduces_the_unpipelined_graph(name, kw):
    model = load_model(name)
    sc = Scenario(model, pipeline_chunk_tokens=kw["seq"], **kw)
    rows = _rows(compile_step(sc))
    assert _rows(compile_step(Scenario(model, pipeline_chunk_tokens=10**6, **kw))) == rows
    assert _rows(compile_step(Scenario(model, pipeline_chunk_tokens=kw["seq"] + 1, **kw).unpipelined())) == rows
    fwd = [op for op in compile_step(sc) if op.kind == "static_mm" and op.phase == "fwd" and 0 <= op.layer < model.layers]
    per_layer = Counter(op.layer for op in fwd)
    assert set(per_layer) == set(range(model.layers))
    assert set(per_layer.values()) == {len(model.linear_shapes())}
    for op in fwd:  # one matmul over all tokens of the step, weight shape from the model
        assert op.m * op.count == sc.tokens or op.m == sc.tokens
        assert (op.k, op.n) == tuple(model.linear_shapes()[op.weight.split(".", 1)[1]])
    for op in compile_step(sc):
        assert all(d < op.id for d in op.deps)


def _totals(g):
    t = Counter()
    for op in g:
        t["flops", op.phase] += op.flops
        t["macs", op.tier, op.phase] += op.macs
        t["bytes", op.kind, op.phase] += op.nbytes
        t["elements", op.vector_kind, op.phase] += op.elements
    return t


CHUNKED = [("gpt2-medium", dict(seq=128), 32), ("gpt2-medium", dict(seq=100, batch=2), 32),
           ("bert-large-uncased", dict(seq=64, batch=2), 16), ("llama-3-8b", dict(seq=48, finetune="full"), 20),
           ("vit-b-16", dict(seq=197, mode="inference"), 64), ("bloom-560m", dict(seq=64, lora_rank=8), 8),
           ("roberta-base", dict(seq=64, finetune="full", optimizer="sgd"), 24)]


@pytest.mark.parametrize("name,kw,chunk", CHUNKED)
def test_chunking_keeps_every_total(name, kw, chunk):
    one = compile_step(Scenario(load_model(name), pipeline_chunk_tokens=kw["seq"], **kw))
    many = compile_step(Scenario(load_model(name), pipeline_chunk_tokens=chunk, **kw))
    assert len(many) > len(one)
    assert _totals(many) == _totals(one)
    assert many.flops_by_phase() == one.flops_by_phase() and many.macs_by_tier() == one.macs_by_tier()
    for op in many:
        assert all(d < op.id for d in op.deps)


def _by_name(g):
    return {op.name: op for op in g}


def _ancestors(g, oid):
    seen, stack = set(), [oid]
    while stack:
        for d in g.ops[stack.pop()].deps:
            if d not in seen:
                seen.add(d)
                stack.append(d)
    return seen


@pytest.mark.parametrize("name,causal", [("gpt2-medium", True), ("bert-large-uncased", False)])
def test_attention_dependency_rule(name, causal):
    assert load_model(name).causal is causal
    sc = Scenario(load_model(name), seq=64, pipeline_chunk_tokens=16)
    g = compile_step(sc)
    ops = _by_name(g)
    chunk = {op.id: op.chunk for op in g}
    for j in range(4):
        want = set(range(j + 1)) if causal else set(range(4))
        # forward: chunk j's scores read K of chunks <= j (causal) or of all chunks
        k_deps = {chunk[d] for d in ops[f"L1.qk[c{j}]"].deps if g.ops[d].name.startswith("L1.k")}
        assert k_deps == want
        v_deps = {chunk[d] for d in ops[f"L1.av[c{j}]"].deps if g.ops[d].name.startswith("L1.v")}
        assert v_deps == want
        # backward: dK/dV of key chunk j sum over the query chunks that read it
        after = set(range(j, 4)) if causal else set(range(4))
        assert {chunk[d] for d in ops[f"L1.av.dv[c{j}]"].deps} == after
        assert {chunk[d] for d in ops[f"L1.qk.dk[c{j}]"].deps} == after
    # token-wise: an op of layer 2 takes from layer 1 only the same chunk (forward and backward)
    for op in g:
        if op.layer == 2:
            assert all(g.ops[d].chunk == op.chunk for d in op.deps if g.ops[d].layer == 1), op.name
    # causal: chunk 0 of the last layer's forward needs nothing of later chunks
    anc = _ancestors(g, ops[f"L{sc.model.layers - 1}.residual2[c0]"].id)
    later = {chunk[a] for a in anc} - {0}
    assert (not later) if causal else later == {1, 2, 3}


def test_backward_runs_last_chunk_first_and_updates_once():
    sc = Scenario(load_model("gpt2-medium"), seq=64, pipeline_chunk_tokens=16)
    g = compile_step(sc)
    ops = _by_name(g)
    first_bwd = [op for op in g if op.phase == "bwd" and op.layer == 23]
    assert first_bwd[0].chunk == 3  # the chunk whose gradient is ready first
    # chunk 3 of layer 22's backward waits for no backward compute of earlier chunks (only for
    # their saved K/V, read back from HBM)
    anc = _ancestors(g, ops["L22.residual0.bwd[c3]"].id)
    assert not any(g.ops[a].phase == "bwd" and g.ops[a].chunk < 3 and g.ops[a].kind != "hbm_read" for a in anc)
    upd = ops["L5.adam"]
    grads = {g.ops[d].name for d in upd.deps if g.ops[d].kind == "dynamic_mm"}
    assert grads == {f"L5.{w}.{ab}.dw[c{j}]" for w in ("q", "v") for ab in ("lora_a", "lora_b") for j in range(4)}
    assert sum(1 for op in g if op.vector_kind == "adam") == 24


def test_chunk_knob_is_validated_and_loaded():
    with pytest.raises(ConfigError) as e:
        Scenario(load_model("gpt2-medium"), seq=64, pipeline_chunk_tokens=0)
    assert e.value.field == "pipeline_chunk_tokens"
    sc = scenario_from_dict({"model": "gpt2-medium", "seq": 100, "pipeline_chunk_tokens": 32})
    assert sc.chunks() == [(0, 32), (32, 32), (64, 32), (96, 4)]
    assert Scenario(load_model("gpt2-medium"), seq=64).pipeline_chunk_tokens == 32  # the default


def test_saved_activations_come_back_in_two_parts_to_where_they_are_used():
    """Korthikanti et al.: a layer saves 34*s*b*h + 5*a*s^2*b bytes; the attention block's part is
    11*s*b*h + 5*a*s^2*b. Backward reads that part for softmax backward and (K, V) the attention
    of later chunks, and the rest for the MLP - never the whole stash twice."""
    m = load_model("gpt2-medium")
    sc = Scenario(m, seq=128, pipeline_chunk_tokens=32)
    g = compile_step(sc)
    ops = list(g)
    users: dict[int, list[str]] = {}
    for op in ops:
        for d in op.deps:
            users.setdefault(d, []).append(op.name.split("[")[0])  # drop the chunk suffix
    saves = [i for i, op in enumerate(ops) if op.name.startswith("L0.save_act[")]
    assert len(saves) == 4
    for s_id in saves:  # the write waits for the saved tensors themselves: the NoC carries them to HBM
        kept = {ops[d].name.split("[")[0] for d in ops[s_id].deps}
        assert {"L0.norm1", "L0.q.lora_add", "L0.k", "L0.v.lora_add", "L0.softmax", "L0.av", "L0.norm2",
                "L0.up", "L0.gelu", "L0.residual2"} == kept, kept
    for s_id in saves:
        attn, mlp = [i for i, op in enumerate(ops) if s_id in op.deps and op.name.startswith("L0.load_act")]
        assert (ops[attn].name[:16], ops[mlp].name[:15]) == ("L0.load_act.attn", "L0.load_act.mlp")
        c, d, h = 32, m.d_model, m.heads
        assert ops[attn].nbytes == 11 * c * d + 5 * h * c * 128
        assert ops[attn].nbytes + ops[mlp].nbytes == ops[s_id].nbytes == 34 * c * d + 5 * h * c * 128
        assert "L0.softmax.bwd" in users[attn] and set(users[attn]) <= {"L0.softmax.bwd", "L0.av.dp", "L0.qk.dq"}
        assert not any(u.startswith(("L0.av", "L0.qk", "L0.softmax")) for u in users[mlp])

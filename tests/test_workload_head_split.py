"""The backward attention split over head groups (workload/head_split.py) and what the chip
delivers to the parts: totals against closed forms of the step (dense s x s attention, the
Korthikanti saved-activation bytes), not against the code that splits."""

import pytest

from atleus_dist.hw.chip import chip_noc_config
from atleus_dist.hw.chip_program import ChipProgram
from atleus_dist.workload.accounting import reram_op_share, step_flops
from atleus_dist.workload.compiler import compile_step
from atleus_dist.workload.head_split import HEAD_PARALLEL_BWD, split_heads
from atleus_dist.workload.mapper import Mapper
from atleus_dist.workload.model import load_model
from atleus_dist.workload.scenario import Scenario

SEQ, CHUNK = 256, 64


@pytest.fixture(scope="module")
def mapped():
    sc = Scenario(load_model("gpt2-medium"), seq=SEQ, pipeline_chunk_tokens=CHUNK)  # LoRA r32 on Q, V
    return sc, compile_step(sc), Mapper().map(sc, compile_step(sc))


def _base(op):
    return op.name.split("[", 1)[0].split(".", 1)[-1]


def test_split_keeps_every_flop_and_element(mapped):
    sc, graph, m = mapped
    L, B, h, hd, s = sc.model.layers, sc.batch, sc.model.heads, sc.model.head_dim, SEQ
    assert step_flops(m.graph) == step_flops(graph)
    assert m.graph.macs_by_tier() == graph.macs_by_tier()
    bwd = [op for op in m.graph if op.phase == "bwd" and op.layer >= 0 and _base(op).rsplit(".h", 1)[0]
           in HEAD_PARALLEL_BWD]
    # dP, dV, dQ, dK: each B*h products over all s x s scores of every layer (dense, as timed)
    assert sum(op.macs for op in bwd if op.kind == "dynamic_mm") == 4 * L * B * h * s * s * hd
    assert sum(op.elements for op in bwd if op.kind == "vector") == L * B * h * s * s  # softmax backward
    assert all(op.parts == 8 for op in bwd)  # 16 heads over 8 channels: 2 heads a part
    assert all(op.count == 2 * B for op in bwd if op.kind == "dynamic_mm")
    assert all(op.elements == 2 * B * CHUNK * s for op in bwd if op.kind == "vector")
    assert all(op.parts == 1 for op in m.graph if op.phase != "bwd")  # the forward is not split
    # the paper's convention (forward, causal scores skipped) counts the parts as the whole ops
    assert reram_op_share(sc, m.graph) == reram_op_share(sc, graph)


def test_parts_run_on_distinct_systolic_cores(mapped):
    sc, _graph, m = mapped
    a = m.arch
    groups = {}
    for i, op in enumerate(m.graph):
        if op.parts > 1:
            groups.setdefault(op.name.rsplit(".h", 1)[0], []).append((op.part, m.core[i], op.layer))
    assert groups
    for parts in groups.values():
        cores = [c for _p, c, _l in sorted(parts)]
        assert len(set(cores)) == len(cores) == a.hbm.channels
        assert all(c >= a.reram_cores for c in cores)
        layer = parts[0][2]
        assert cores[0] == a.reram_cores + layer % m.systolic_cores_used  # part 0 stays with its layer


def test_a_reload_reaches_one_core_per_channel_with_exactly_its_bytes(mapped):
    sc, _graph, m = mapped
    cfg, lay, ports = chip_noc_config(m, None, "single")
    p = ChipProgram.from_mapping(m, lay, ports, None, hbm=m.arch.hbm)
    stripes: dict[int, list[int]] = {}
    for pid, gid in enumerate(p.origin):
        stripes.setdefault(gid, []).append(pid)
    d, B, h = sc.model.d_model, sc.batch, sc.model.heads
    reloads = [op for op in m.graph if op.kind == "hbm_read" and _base(op) == "load_act.attn"]
    assert len(reloads) == sc.model.layers * SEQ // CHUNK
    for op in reloads:
        # Korthikanti: the attention block saves 11 c b h + 5 a c s b bytes of a chunk of c tokens
        assert op.nbytes == 11 * CHUNK * B * d + 5 * h * CHUNK * SEQ * B
        consumers = {p.router[c] for c, deps in enumerate(p.ops.deps) if set(deps) & set(stripes[op.id])}
        assert len(consumers) == len(ports)  # spread, not one core's ejection channel
        per_core = {r: sum(p.bytes_to(k, r) for k in stripes[op.id]) for r in consumers}
        assert sum(per_core.values()) == op.nbytes
        assert max(per_core.values()) - min(per_core.values()) <= 2 * len(ports)


def test_optimizer_state_read_waits_for_gradients_with_a_token(mapped):
    """The gradients order the optimizer-state read; they are not its data (it moves state from
    the memory), so each port gets a one-flit token, not a copy of every gradient."""
    _sc, _graph, m = mapped
    cfg, lay, ports = chip_noc_config(m, None, "single")
    p = ChipProgram.from_mapping(m, lay, ports, None, hbm=m.arch.hbm)
    reads = [pid for pid, gid in enumerate(p.origin) if m.graph.ops[gid].name.endswith("opt_state.load")]
    assert len(reads) == len(ports) * _sc.model.layers  # a stripe per port
    grads = {d for r in reads for d in p.ops.deps[r]}
    assert grads and all(m.graph.ops[p.origin[g]].kind == "dynamic_mm" for g in grads)
    for g in grads:
        # (a read at the gradient's own router needs no transfer; the update there takes the data)
        assert all(p.bytes_to(g, p.router[r]) == 0 for r in reads if p.router[r] != p.router[g])


def test_inference_and_small_chips_are_not_split():
    sc = Scenario(load_model("gpt2-medium"), seq=64, mode="inference")
    m = Mapper().map(sc, compile_step(sc))
    assert all(op.parts == 1 for op in m.graph)
    sc = Scenario(load_model("gpt2-medium"), seq=64)
    g = compile_step(sc)
    heads = sc.batch * sc.model.heads
    assert split_heads(g, heads, 1) is g
    capped = split_heads(g, heads, 4 * heads)  # at most one head per part
    assert {op.parts for op in capped} == {1, heads} and {op.count for op in capped if op.parts > 1 and op.kind == "dynamic_mm"} == {1}


def test_one_chunk_part_names_still_count_as_attention():
    """Without chunks the parts are named ``L3.qk.dq.h2``; the op counts as its base op."""
    from atleus_dist.workload.accounting import _attention_op

    sc = Scenario(load_model("gpt2-medium"), seq=64, pipeline_chunk_tokens=64)
    m = Mapper().map(sc, compile_step(sc))
    assert any(op.name == "L0.qk.dq.h0" for op in m.graph)
    assert _attention_op("L0.qk.h3") and _attention_op("L0.av[c1].h0") and not _attention_op("L0.qk.dq.h3")
    assert reram_op_share(sc, m.graph) == reram_op_share(sc, compile_step(sc))

"""Mapper: crossbar counts from the ISAAC placement closed form, capacity policies, streaming writes,
tier assignment and stage balancing."""

import dataclasses
import math
from collections import Counter

import pytest

from atleus_dist.config.tree import arch_with_sets
from atleus_dist.hw.arch import AtleusArchConfig
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.workload.compiler import compile_step
from atleus_dist.workload.mapper import HBM_CORE, Mapper, _partition
from atleus_dist.workload.model import load_model
from atleus_dist.workload.scenario import Scenario, parse_quant


def xbars(k, n, bits, rows=128, cols=128, bits_per_cell=2):
    return math.ceil(k / rows) * math.ceil(n * math.ceil(bits / bits_per_cell) / cols)


def _map(name="gpt2-medium", arch=None, **kw):
    sc = Scenario(load_model(name), **kw)
    return sc, Mapper(arch).map(sc, compile_step(sc))


def test_crossbars_gpt2_medium_m8f4():
    sc, m = _map(seq=64, quant=parse_quant("M8F4"))
    d, ff, v = 1024, 4096, 50257
    layer = 4 * xbars(d, d, 8) + xbars(d, ff, 4) + xbars(ff, d, 4)
    assert m.crossbars_needed == 24 * layer + xbars(d, v, 8)
    assert m.stream_region_xbars == 0  # fits the three ReRAM tiers: nothing streamed
    assert m.writes.total_writes == 0


def test_fit_policy_refuses_and_stream_counts_writes():
    with pytest.raises(ConfigError) as e:
        _map("llama-2-7b", seq=64, lora_rank=8, policy="fit")
    assert e.value.field == "policy"
    sc, m = _map("llama-2-7b", seq=64, lora_rank=8, policy="stream", quant=parse_quant("M4F4"))
    programs = [op for op in m.graph if op.kind == "program"]
    streamed = [p for p in m.placements.values() if not p.resident]
    assert streamed and len(programs) == 2 * len(streamed)  # once before forward, once before backward
    assert m.writes.total_writes == sum(m.placements[op.weight].block.crossbars for op in programs)
    per_core = Counter(m.core[op.id] for op in programs)  # slices rotate over the region's cores
    assert len(per_core) > 1 and m.writes.max_writes == max(per_core.values())
    for op in programs:  # the weight is read from HBM before it is programmed
        assert any(m.graph.ops[d].kind == "hbm_read" for d in op.deps)


def test_ops_go_to_their_tier():
    sc, m = _map(seq=64)
    a = m.arch
    for i, op in enumerate(m.graph):
        c = m.core[i]
        if op.kind in ("static_mm", "program"):
            assert 0 <= c < a.reram_cores and m.tier_of_op(i) < a.reram_tiers
        elif op.kind in ("dynamic_mm", "vector"):
            assert c >= a.reram_cores and m.tier_of_op(i) >= a.reram_tiers
        else:
            assert c == HBM_CORE
    assert m.systolic_cores_used == 16


def test_quantisation_lowers_reram_energy():
    """Forward (inference) ReRAM energy is roughly linear in weight bits. Backward transposed reads
    drive one cell significance at a time, so their energy grows faster (cells x crossbars)."""
    arch = arch_with_sets({"reram_tiers": "6"})
    _, m8 = _map(seq=64, mode="inference", quant=parse_quant("M8F8"), arch=arch)
    _, m4 = _map(seq=64, mode="inference", quant=parse_quant("M4F4"), arch=arch)
    ratio = m8.energy_by_tier()["reram"] / m4.energy_by_tier()["reram"]
    assert 1.8 < ratio <= 2.0
    _, t8 = _map(seq=64, quant=parse_quant("M8F8"), arch=arch)
    _, t4 = _map(seq=64, quant=parse_quant("M4F4"), arch=arch)
    assert t8.energy_by_tier()["reram"] / t4.energy_by_tier()["reram"] > ratio


def test_partition_is_optimal_contiguous():
    assert _partition([1, 1, 1, 1, 1, 1], 3) == [[0, 1], [2, 3], [4, 5]]
    lat = [5, 1, 1, 1, 4]
    groups = _partition(lat, 3)
    assert max(sum(lat[i] for i in g) for g in groups) == 5 and sum(groups, []) == [0, 1, 2, 3, 4]
    assert _partition([3, 3], 3) == [[0], [1]]


def test_stages_three_reram_one_systolic():
    sc, m = _map(seq=128)
    st = m.stages[0]
    assert len(st["reram_stages"]) == 3
    assert sum(len(s) for s in st["reram_stages"]) == 6  # q k v o up down
    assert st["interval_ps"] == max(st["reram_stage_ps"] + [st["systolic_stage_ps"]])


def test_replication_with_spare_crossbars():
    sc, m = _map(seq=128, quant=parse_quant("M4F4"), arch=arch_with_sets({"reram_tiers": "6"}))
    reps = {w: p.replicas for w, p in m.placements.items()}
    assert max(reps.values()) > 1
    used = sum(p.block.crossbars * p.replicas for p in m.placements.values())
    assert used <= m.arch.crossbar_capacity


def test_arch_sets_name_fields():
    with pytest.raises(ConfigError) as e:
        arch_with_sets({"reram.bogus": "1"})
    assert e.value.field == "reram.bogus"
    with pytest.raises(ConfigError) as e:
        arch_with_sets({"noc.x": "1"})
    assert e.value.field == "noc.x"
    assert arch_with_sets({"systolic.rows": "64"}).systolic.rows == 64


def test_layers_get_their_own_balanced_cores():
    """With room to spare every layer sits on whole cores of its own (consecutive layers can run
    at once) and its six equal-time weights split 3/3 over its two cores."""
    sc, m = _map(seq=64, arch=arch_with_sets({"reram_tiers": "4"}))
    xpc = m.arch.reram.xbars_per_core
    cores = {}
    for w, p in m.placements.items():
        if w != "head":
            cores.setdefault(int(w.split(".")[0][1:]), []).append(p.core(xpc))
    for layer, cs in cores.items():
        assert sorted(set(cs)) == [2 * layer, 2 * layer + 1] and cs.count(2 * layer) == 3, (layer, cs)
    for w, p in m.placements.items():  # layer blocks (each smaller than a core) stay in one core
        if w != "head":
            assert p.core(xpc) == (p.first_xbar + p.block.crossbars - 1) // xpc
        assert p.resident


def test_dynamic_matmul_takes_the_cheaper_orientation():
    sc, m = _map(seq=1024, pipeline_chunk_tokens=32, mode="inference")
    i = next(i for i, op in enumerate(m.graph) if op.name == "L0.qk[c0]")
    op = m.graph.ops[i]
    a, b = Mapper().sa.gemm(op.m, op.n, op.k, op.count), Mapper().sa.gemm(op.n, op.m, op.k, op.count)
    assert b.latency_ps < a.latency_ps and m.latency_ps[i] == b.latency_ps

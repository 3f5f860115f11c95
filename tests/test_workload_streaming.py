"""Streamed weights spread over the stream region's cores (workload.streaming): programming on
many cores, crossbars and writes counted against the ISAAC closed form of the whole blocks, uses
on the core holding their slice, reads pinned to channels and delivered to that core, no cycles.

A GPT-2 Medium on a chip of 384-crossbar cores (``reram.tiles_per_core=4``) is forced to stream:
its MLP blocks (1,024 crossbars) take three cores each and its head (12,568) thirty-three."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict

import pytest

from atleus_dist.config.tree import arch_with_sets
from atleus_dist.hw.chip import ChipProgram, chip_noc_config
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.workload.compiler import compile_step
from atleus_dist.workload.mapper import Mapper
from atleus_dist.workload.model import load_model
from atleus_dist.workload.scenario import Scenario
from atleus_dist.workload.weight_slices import tile_widths


def xbars(k, n, bits, rows=128, cols=128, bits_per_cell=2):
    return math.ceil(k / rows) * math.ceil(n * math.ceil(bits / bits_per_cell) / cols)


def base_of(key: str) -> str:
    return key.split("/", 1)[0]


@pytest.fixture(scope="module")
def streamed():
    arch = arch_with_sets({"reram.tiles_per_core": 4})
    sc = Scenario(load_model("gpt2-medium"), seq=32, lora_rank=8, policy="stream")
    graph = compile_step(sc)
    return sc, graph, Mapper(arch).map(sc, graph)


def test_programs_spread_over_the_region_and_count_the_blocks_crossbars(streamed):
    sc, graph, m = streamed
    xpc = m.arch.reram.xbars_per_core
    assert m.stream_region_xbars == 33 * xpc  # the head's 1,571 column tiles in slices of 48
    first_region_core = (m.arch.crossbar_capacity - m.stream_region_xbars) // xpc
    progs = [i for i, op in enumerate(m.graph) if op.kind == "program"]
    cores = {m.core[i] for i in progs}
    assert len(cores) == 33 and min(cores) == first_region_core  # every region core programs
    # the unmapped graph's static weights (K x N), the closed form of each whole block
    shapes = {}
    for op in graph:
        if op.kind == "static_mm":
            shapes[op.weight] = (op.n, op.k) if op.transposed else (op.k, op.n)
    resident = {w for w, p in m.placements.items() if p.resident}
    stream = [w for w in shapes if w not in resident]
    assert stream and all(w in shapes for w in resident)
    per_weight = defaultdict(int)  # crossbars programmed per streamed weight, over both phases
    for i in progs:
        op = m.graph.ops[i]
        p = m.placements[op.weight]
        assert p.block.crossbars <= xpc and p.first_xbar == m.core[i] * xpc  # one core, its own
        per_weight[base_of(op.weight)] += p.block.crossbars
    bits = {w: sc.quant.bits_for(w.split(".", 1)[-1]) for w in stream}
    want = {w: 2 * xbars(*shapes[w], bits[w]) for w in stream}  # programmed before fwd and before bwd
    assert dict(per_weight) == want
    assert m.writes.total_writes == sum(want.values())
    assert m.crossbars_needed == sum(xbars(*shapes[w], sc.quant.bits_for(w.split(".", 1)[-1])) for w in shapes)


def test_uses_run_on_the_core_that_holds_their_slice(streamed):
    _sc, _g, m = streamed
    prog_core = {}
    for i, op in enumerate(m.graph):
        if op.kind == "program":
            prog_core.setdefault(op.weight, set()).add(m.core[i])
    multi = {base_of(w) for w in prog_core if "/" in w}
    assert "head" in multi and any(w.endswith(".up") for w in multi)  # split into core slices
    for i, op in enumerate(m.graph):
        if op.kind == "static_mm" and op.weight in prog_core:
            assert {m.core[i]} == prog_core[op.weight]


def test_program_waits_for_its_read_and_the_previous_user_of_its_core_only(streamed):
    _sc, _g, m = streamed
    g = m.graph
    assert all(d < op.id for op in g for d in op.deps)  # topological, so no cycle
    last_user = {}  # core -> weight of the last program there
    for i, op in enumerate(g):
        if op.kind != "program":
            continue
        reads = [d for d in op.deps if g.ops[d].kind == "hbm_read"]
        uses = [d for d in op.deps if g.ops[d].kind == "static_mm"]
        assert len(reads) == 1 and g.ops[reads[0]].channel >= 0
        assert {m.core[d] for d in uses} <= {m.core[i]}  # only uses on its own core
        if uses:
            assert {g.ops[d].weight for d in uses} == {last_user[m.core[i]]}
        last_user[m.core[i]] = op.weight
    chans = {op.channel for op in g if op.kind == "hbm_read" and op.channel >= 0}
    assert chans == set(range(m.arch.hbm.channels))


def test_each_stream_read_is_one_op_on_its_channels_port_to_its_slices_core(streamed):
    _sc, _g, m = streamed
    _cfg, xy, hbm = chip_noc_config(m, {}, "single")
    prog = ChipProgram.from_mapping(m, xy, hbm, hbm=m.arch.hbm)
    stripes = defaultdict(list)
    for j, i in enumerate(prog.origin):
        stripes[i].append(j)
    dests = set()
    for i, op in enumerate(m.graph):
        if op.kind == "hbm_read" and op.channel >= 0:
            (j,) = stripes[i]
            assert prog.router[j] == hbm[op.channel % len(hbm)]
            assert prog.ops.nbytes[j] == op.nbytes
            dests.update(prog.dests.get(j, []))
        elif op.kind in ("hbm_read", "hbm_write"):
            assert len(stripes[i]) == len(hbm)  # saved activations still striped over every port
    assert len(dests) == 33  # every region core receives its own slices' data


@pytest.mark.parametrize("bits", [8, 6, 4])
def test_tile_widths_keep_the_blocks_crossbars(bits):
    cpw = math.ceil(bits / 2)
    for n, max_tiles in ((4096, 48), (50257, 192), (11008, 17), (1000, 5)):
        ws = tile_widths(n, cpw, 128, max_tiles)
        assert sum(ws) == n and all(w > 0 for w in ws)
        tiles = [math.ceil(w * cpw / 128) for w in ws]
        assert max(tiles) <= max_tiles and sum(tiles) == math.ceil(n * cpw / 128)
        unit = cpw // math.gcd(128, cpw)  # tiles of the fewest weights that fill whole tiles
        assert max(tiles) - min(tiles) <= 2 * unit  # near-equal: one unit, and the last one's partial
    assert tile_widths(10, 3, 128, 2) is None  # a unit of 3 tiles does not fit 2


def test_stream_cores_sets_the_region_and_keeps_the_writes(streamed):
    sc, graph, m = streamed
    wide_sc = dataclasses.replace(sc, stream_cores=48)
    wide = Mapper(m.arch).map(wide_sc, graph)
    xpc = m.arch.reram.xbars_per_core
    assert wide.stream_region_xbars == 48 * xpc
    progs = [i for i, op in enumerate(wide.graph) if op.kind == "program"]
    assert len({wide.core[i] for i in progs}) == 48
    # fewer resident weights, so more are streamed: each streamed block programmed twice, exactly
    shapes = {op.weight: ((op.n, op.k) if op.transposed else (op.k, op.n)) for op in graph if op.kind == "static_mm"}
    stream = [w for w in shapes if not (w in wide.placements and wide.placements[w].resident)]
    assert len(stream) > len([w for w in shapes if not (w in m.placements and m.placements[w].resident)])
    assert wide.writes.total_writes == sum(2 * xbars(*shapes[w], sc.quant.bits_for(w.split(".", 1)[-1])) for w in stream)
    with pytest.raises(ConfigError) as e:
        Mapper(m.arch).map(dataclasses.replace(sc, stream_cores=m.arch.reram_cores + 1), graph)
    assert e.value.field == "stream_cores"

"""Mapper: op graph + chip -> where every op runs, what it costs, and whether the weights fit.

- Static-weight matmuls go to the ReRAM cores holding their weight block (crossbar-wise quantised
  to the scenario's bits); dynamic matmuls and vector ops to the systolic core of their layer
  (layers round-robin over systolic cores), each dynamic matmul in the orientation (C or C^T) with
  fewer cycles; HBM ops to the HBM (the chip program stripes each over the channels' ports,
  :mod:`atleus_dist.hw.chip_program`).
- Capacity: weights are placed layer by layer into the crossbars of all ReRAM tiers, each layer on
  whole cores of its own with its blocks balanced over them when room allows (see ``_layout``). If they do not
  fit, policy ``fit`` refuses with an error; policy ``stream`` keeps the first weights resident and
  reserves a region of whole cores over which every other weight, cut into one-core column slices,
  is programmed from HBM before each use (an ``hbm_read`` + ``program`` op pair per slice, the
  slices rotating over the region's cores: :mod:`atleus_dist.workload.streaming`), counting writes
  per crossbar. A weight whose block alone exceeds the chip (Llama-3-8B's LM head) is first split
  by output columns into slices no larger than the largest block that fits, each streamed as its
  own weight.
- Backward attention (fine-tuning): each head-parallel op is split into head groups, one per HBM
  channel (at most one per systolic core), part g on the layer's core + g x cores/parts
  (:mod:`atleus_dist.workload.head_split`), so a reload of saved activations reaches as many cores
  as the memory has channels instead of converging on one core's ejection channel.
- Per-layer pipeline: the layer's forward ReRAM matmuls are split into ``reram_stages_per_layer``
  contiguous stages minimising the slowest, next to one systolic stage; spare crossbars then
  replicate the bottleneck stage's weights (ISAAC-style) while they last, which divides its vectors.
- ``static_on="systolic"`` (the paper's 3D-TPU baseline): the same stack with every tier systolic
  (``arch.tiers x systolic_cores_per_tier`` cores; the ReRAM tiers become systolic tiers). Every
  matmul runs on a systolic core, static weights included, and each use of a static weight (every
  chunk, forward and transposed backward) is preceded by an ``hbm_read`` of the whole weight at the
  scenario's weight bits (no on-chip weight reuse across ops; the read has no deps of its own, so
  the HBM port prefetches in op order - the TPU's best case). Layers get ``cores // groups`` cores
  each (groups = layers + 1, as the Atleus systolic round-robin): static matmuls alternate over
  them by weight, dynamic matmuls and vector ops take the group's last core. No crossbars, no
  placements, no stages.

Knows nothing of LPs, files, processes or Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from atleus_dist.hw.arch import AtleusArchConfig
from atleus_dist.hw.hbm import Hbm2
from atleus_dist.hw.reram import ReramCore, WeightBlock, WriteCounters
from atleus_dist.hw.systolic import SystolicCore
from atleus_dist.hw.links import LINK_KINDS, SystemConfig
from atleus_dist.hw.units import HBM_CORE, LINK_UNIT0, link_rx_unit, link_tx_unit
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.workload.decode import check_kv_fits
from atleus_dist.workload.graph import Op, OpGraph
from atleus_dist.workload.head_split import split_heads
from atleus_dist.workload.layout import _layout, _partition  # noqa: F401 - _partition: tests
from atleus_dist.workload.scenario import Scenario
from atleus_dist.workload.streaming import insert_streaming, region_cores, spread
from atleus_dist.workload.weight_slices import SLICE_SEP, slice_widths, split_oversized, weight_name


@dataclass(frozen=True)
class Placement:
    weight: str
    block: WeightBlock
    first_xbar: int
    resident: bool
    replicas: int = 1

    def core(self, xbars_per_core: int) -> int:
        return self.first_xbar // xbars_per_core


@dataclass
class Mapping:
    graph: OpGraph  # the compiled graph with streaming ops inserted
    arch: AtleusArchConfig
    placements: dict[str, Placement]
    core: list[int]  # per op: ReRAM core (0..), systolic core (reram_cores + i), or HBM_CORE
    latency_ps: list[int]
    energy_pj: list[float]
    crossbars_needed: int
    crossbars_resident: int
    stream_region_xbars: int
    writes: WriteCounters
    stages: list[dict] = field(default_factory=list)
    systolic_cores_used: int = 0
    static_on: str = "reram"  # "systolic": the 3D-TPU baseline (every tier systolic)

    def tier_of_op(self, i: int) -> int:
        """LP-level tier index: ReRAM tiers first, then systolic tiers (HBM ops sit on the first
        systolic tier, which holds the memory controller). 3D-TPU: systolic core i (numbered
        ``reram_cores + i``) sits on tier ``i // systolic_cores_per_tier``; HBM stays on tier
        ``reram_tiers``."""
        c, a = self.core[i], self.arch
        if c == HBM_CORE or c <= LINK_UNIT0:  # the HBM or a link port: the interposer tier
            return a.reram_tiers
        if self.static_on == "systolic":
            return (c - a.reram_cores) // a.systolic_cores_per_tier
        if c < a.reram_cores:
            return a.tier_of_reram_core(c)
        return a.tier_of_systolic_core(c - a.reram_cores)

    def energy_by_tier(self) -> dict[str, float]:
        out = {"reram": 0.0, "systolic": 0.0, "hbm": 0.0}
        for op, e in zip(self.graph, self.energy_pj):
            tier = "systolic" if self.static_on == "systolic" and op.tier == "reram" else op.tier
            out[tier] = out.get(tier, 0.0) + e  # "link" only in a system of chips
        return out


def _weight_shapes(sc: Scenario, graph: OpGraph) -> dict[str, tuple[int, int, int]]:
    """Static weights in order of first use: key -> (K, N, bits)."""
    out: dict[str, tuple[int, int, int]] = {}
    for op in graph:
        if op.kind == "static_mm" and op.weight not in out:
            k, n = (op.n, op.k) if op.transposed else (op.k, op.n)
            out[op.weight] = (k, n, sc.quant.bits_for(weight_name(op.weight)))
    return out


def _place(sc: Scenario, arch: AtleusArchConfig, shapes, rc: ReramCore):
    blocks = {w: rc.block(k, n, bits) for w, (k, n, bits) in shapes.items()}
    needed = sum(b.crossbars for b in blocks.values())
    cap = arch.crossbar_capacity
    if needed > cap and sc.policy == "fit":
        raise ConfigError("policy", f"{sc.model.name} at {sc.quant.name} needs {needed} crossbars but the "
                          f"{arch.reram_tiers} ReRAM tiers hold {cap}; use policy stream, fewer weight bits "
                          f"or more reram_tiers", allowed="stream")
    region = 0
    if needed > cap:
        region = max(b.crossbars for b in blocks.values())
        if region > cap:
            raise ConfigError("quant", f"one weight block needs {region} crossbars, more than all {cap}")
        cores = region_cores(blocks, rc)  # whole cores holding any weight's core slices at once
        if cores is not None and sc.stream_cores is not None:
            if sc.stream_cores > arch.reram_cores:
                raise ConfigError("stream_cores", f"{sc.stream_cores} is more than the chip's {arch.reram_cores} "
                                  "ReRAM cores", allowed=f"1..{arch.reram_cores}")
            cores = sc.stream_cores  # fewer than a weight's slices: its slices take turns on a core
        if cores is not None and cores * arch.reram.xbars_per_core <= cap:
            region = cores * arch.reram.xbars_per_core
    usable = cap - region
    resident, total = [], 0
    for w, b in blocks.items():
        if needed <= cap or total + b.crossbars <= usable:
            resident.append(w)
            total += b.crossbars
    first = _layout(sc, arch, blocks, resident, usable)
    placements = {w: Placement(w, b, first[w], True) if w in first else Placement(w, b, cap - region, False)
                  for w, b in blocks.items()}
    return placements, needed, total, region


def _insert_weight_reads(graph: OpGraph, shapes: dict[str, tuple[int, int, int]]) -> OpGraph:
    """3D-TPU: an ``hbm_read`` of the whole weight (K x N at its bits) right before every static
    matmul, which then depends on it. Ids stay topological (a linear pass)."""
    out, new_id = OpGraph(), {}
    for op in graph:
        ds = [new_id[d] for d in op.deps]
        if op.kind == "static_mm":
            k, n, bits = shapes[op.weight]
            ds.append(out.add(f"{op.name}.weight_read", "hbm_read", op.phase, op.layer, (),
                              nbytes=math.ceil(k * n * bits / 8), chunk=op.chunk, step=op.step))
        new_id[op.id] = out.add(op.name, op.kind, op.phase, op.layer, ds, m=op.m, n=op.n, k=op.k, count=op.count,
                                weight=op.weight, transposed=op.transposed, vector_kind=op.vector_kind,
                                elements=op.elements, nbytes=op.nbytes, chunk=op.chunk, peer=op.peer, step=op.step)
    return out


STATIC_ON = ("reram", "systolic")


class Mapper:
    def __init__(self, arch: AtleusArchConfig | None = None, static_on: str = "reram",
                 system: SystemConfig | None = None, chip: int = 0) -> None:
        """``system`` and ``chip``: the system of chips this chip (its index) belongs to, which
        times the graph's link ops (:mod:`atleus_dist.workload.stages`); None: one chip."""
        self.system, self.chip = system, chip
        if static_on not in STATIC_ON:
            raise ConfigError("static_on", f"unknown value {static_on!r}", allowed=", ".join(STATIC_ON))
        self.static_on = static_on
        self.arch = arch or AtleusArchConfig()
        self.rc = ReramCore(self.arch.reram)
        self.sa = SystolicCore(self.arch.systolic)
        self.hbm = Hbm2(self.arch.hbm)

    def map(self, sc: Scenario, graph: OpGraph) -> Mapping:
        if self.static_on == "systolic":
            return self._map_systolic(sc, graph)
        arch, rc = self.arch, self.rc
        check_kv_fits(sc, arch.reram_cores * arch.reram.tiles_per_core * arch.reram.edram_bytes_per_tile)
        shapes = _weight_shapes(sc, graph)
        widths = slice_widths(shapes, rc, arch.crossbar_capacity) if sc.policy == "stream" else {}
        if widths:
            graph = split_oversized(graph, widths)
            shapes = _weight_shapes(sc, graph)
        placements, needed, resident, region = _place(sc, arch, shapes, rc)
        g, channels = graph, 0
        xpc = arch.reram.xbars_per_core
        if region and region % xpc == 0 and region_cores({w: p.block for w, p in placements.items()}, rc):
            # streamed weights cut into core slices over the region's cores (workload.streaming)
            g, placements = spread(g, placements, rc, (arch.crossbar_capacity - region) // xpc, region // xpc,
                                   lambda w, b, x: Placement(w, b, x, False))
            channels = arch.hbm.channels
        if region:
            bits = {w: placements[w].block.weight_bits for w in placements}
            g = insert_streaming(g, placements, bits, channels)
        writes = WriteCounters(arch.crossbar_capacity, arch.reram.endurance_writes)
        placements = self._replicate(sc, g, placements, arch.crossbar_capacity - resident - region)
        n_sys = min(arch.systolic_cores, sc.model.layers + 1)
        if sc.mode == "finetune":  # a reload's consumers on as many cores as the memory has channels
            g = split_heads(g, sc.batch * sc.model.heads, min(arch.hbm.channels, n_sys))
        elif sc.mode == "generate":  # likewise a decode step's KV cache read (workload.decode)
            g = split_heads(g, sc.batch * sc.model.kv_heads, min(arch.hbm.channels, n_sys))
        core, lat, en = [], [], []
        for op in g:
            c, t, e = self._cost(op, placements, writes, n_sys)
            core.append(c)
            lat.append(t)
            en.append(e)
        m = Mapping(g, arch, placements, core, lat, en, needed, resident, region, writes,
                    systolic_cores_used=n_sys)
        m.stages = self._stages(sc, m)
        return m

    def _map_systolic(self, sc: Scenario, graph: OpGraph) -> Mapping:
        arch = self.arch
        g = _insert_weight_reads(graph, _weight_shapes(sc, graph))
        cores = arch.tiers * arch.systolic_cores_per_tier
        groups = min(cores, sc.model.layers + 1)
        per = cores // groups
        slot: dict[str, int] = {}  # static weight -> its index among its layer's weights
        seen: dict[int, int] = {}
        core, lat, en = [], [], []
        for op in g:
            base = arch.reram_cores + (op.layer % groups) * per
            if op.kind in ("hbm_read", "hbm_write"):
                c = self.hbm.transfer(op.nbytes, "read" if op.kind == "hbm_read" else "write")
                core.append(HBM_CORE)
            elif op.kind == "static_mm" or op.kind == "dynamic_mm":
                if op.kind == "static_mm":
                    if op.weight not in slot:
                        slot[op.weight] = seen.get(op.layer, 0)
                        seen[op.layer] = slot[op.weight] + 1
                    core.append(base + slot[op.weight] % per)
                else:
                    core.append(base + per - 1)
                c = min(self.sa.gemm(op.m, op.n, op.k, op.count), self.sa.gemm(op.n, op.m, op.k, op.count),
                        key=lambda x: (x.latency_ps, x.energy_pj))
            elif op.kind == "vector":
                core.append(base + per - 1)
                c = self.sa.vector(op.vector_kind, op.elements)
            else:
                raise ConfigError("static_on", f"a {op.kind} op has no place on a systolic-only chip")
            lat.append(c.latency_ps)
            en.append(c.energy_pj)
        writes = WriteCounters(0, arch.reram.endurance_writes)  # no crossbars
        return Mapping(g, arch, {}, core, lat, en, 0, 0, 0, writes, systolic_cores_used=groups * per,
                       static_on="systolic")

    def _cost(self, op: Op, placements, writes: WriteCounters, n_sys: int) -> tuple[int, int, float]:
        arch = self.arch
        if op.kind in LINK_KINDS:
            return self._link_cost(op)
        if op.kind == "static_mm":
            p = placements[op.weight]
            c = self.rc.mvm(p.block, math.ceil(op.m * op.count / p.replicas), transposed=op.transposed)
            return p.core(arch.reram.xbars_per_core), c.latency_ps, c.energy_pj * p.replicas
        if op.kind == "program":
            p = placements[op.weight]
            writes.program(p.first_xbar, p.block.crossbars)
            c = self.rc.program(p.block)
            return p.core(arch.reram.xbars_per_core), c.latency_ps, c.energy_pj
        if op.kind in ("hbm_read", "hbm_write"):
            c = self.hbm.transfer(op.nbytes, "read" if op.kind == "hbm_read" else "write")
            return HBM_CORE, c.latency_ps, c.energy_pj
        # the layer's core; part g of a head-split op (head_split) g x cores/parts further on
        sys_core = arch.reram_cores + (op.layer + op.part * (n_sys // op.parts)) % n_sys
        if op.kind == "dynamic_mm":
            # both operands are dynamic, so the compiler may compute C^T = B^T A^T instead: keep
            # whichever operand makes the stationary one (a pipeline chunk's few rows streamed
            # past all s keys wastes the array's fill/drain on every fold; its transpose does not)
            c = min(self.sa.gemm(op.m, op.n, op.k, op.count), self.sa.gemm(op.n, op.m, op.k, op.count),
                    key=lambda x: (x.latency_ps, x.energy_pj))
        else:
            c = self.sa.vector(op.vector_kind, op.elements)
        return sys_core, c.latency_ps, c.energy_pj

    def _link_cost(self, op: Op) -> tuple[int, int, float]:
        """A send occupies its port for the serialisation and spends the link's energy per bit;
        the far end's wait and the receive take no time (hw.links: the latency is the message's)."""
        sysc = self.system
        if sysc is None:
            raise ConfigError("system.chips", f"op {op.name} crosses chips on a one-chip run")
        if op.kind == "link_send":
            link = sysc.link
            return link_tx_unit(sysc.port(self.chip, op.peer)), link.serialise_ps(op.nbytes), link.energy_pj(op.nbytes)
        return link_rx_unit(sysc.port(op.peer, self.chip)), 0, 0.0

    def _layer_static_fwd(self, g: OpGraph, layer: int) -> dict[str, list[Op]]:
        """The layer's forward static matmuls grouped by weight (all pipeline chunks of each),
        in order of first use."""
        out: dict[str, list[Op]] = {}
        for op in g:
            if op.layer == layer and op.phase == "fwd" and op.kind == "static_mm":
                out.setdefault(op.weight, []).append(op)
        return out

    def _weight_latency(self, block: WeightBlock, ops: list[Op], replicas: int) -> int:
        return sum(self.rc.mvm(block, math.ceil(o.m * o.count / replicas)).latency_ps for o in ops)

    def _replicate(self, sc: Scenario, g: OpGraph, placements, spare: int):
        """Give the bottleneck ReRAM stage more copies of its weights while spare crossbars last."""
        # the layers this chip holds (all of them on one chip; a pipeline stage's on a system)
        layers = sorted({op.layer for op in g if op.kind == "static_mm" and 0 <= op.layer < sc.model.layers})
        if spare <= 0 or not layers:
            return placements
        by_w = self._layer_static_fwd(g, layers[0])
        if not by_w or not all(placements[w].resident for w in by_w):
            return placements
        ws = list(by_w)
        names = [weight_name(w) for w in ws]
        reps = {n: 1 for n in names}
        while True:
            lat = [self._weight_latency(placements[w].block, by_w[w], reps[nm]) for w, nm in zip(ws, names)]
            stages = _partition(lat, self.arch.reram_stages_per_layer)
            worst = max(stages, key=lambda s: sum(lat[i] for i in s))
            cost = len(layers) * sum(placements[ws[i]].block.crossbars for i in worst)
            if cost > spare or any(min(o.m * o.count for o in by_w[ws[i]]) <= reps[names[i]] for i in worst):
                break
            spare -= cost
            for nm in {names[i] for i in worst}:  # slices of one weight share its replica count
                reps[nm] += 1
        out = dict(placements)
        for w, p in placements.items():
            name = weight_name(w)
            if p.resident and name in reps and reps[name] > 1:
                out[w] = Placement(w, p.block, p.first_xbar, True, reps[name])
        return out

    def _stages(self, sc: Scenario, m: Mapping) -> list[dict]:
        """Per layer: the forward static matmuls (whole weights, all chunks) split into the
        contiguous ReRAM stages that minimise the slowest, next to the systolic stage."""
        out = []
        by_layer: dict[int, list[int]] = {}
        for i, op in enumerate(m.graph):
            if op.phase == "fwd" and 0 <= op.layer < sc.model.layers and op.kind not in LINK_KINDS:
                by_layer.setdefault(op.layer, []).append(i)
        for layer, ids in sorted(by_layer.items()):
            per_key: dict[str, int] = {}
            for i in ids:
                if m.graph.ops[i].kind == "static_mm":
                    w = m.graph.ops[i].weight
                    per_key[w] = per_key.get(w, 0) + m.latency_ps[i]
            per_w: dict[str, int] = {}  # a streamed weight's core slices run side by side: the slowest
            for w, t in per_key.items():
                parent = w.rsplit(SLICE_SEP, 1)[0] if not m.placements[w].resident else w
                per_w[parent] = max(per_w.get(parent, 0), t)
            sys_ids = [i for i in ids if m.graph.ops[i].tier == "systolic"]
            names, lat = [weight_name(w) for w in per_w], list(per_w.values())
            groups = _partition(lat, self.arch.reram_stages_per_layer) if lat else []
            reram = [sum(lat[j] for j in grp) for grp in groups]
            systolic = sum(m.latency_ps[i] for i in sys_ids)
            stage_lat = reram + [systolic]
            out.append({"layer": layer,
                        "reram_stages": [[names[j] for j in grp] for grp in groups],
                        "reram_stage_ps": reram, "systolic_stage_ps": systolic,
                        "interval_ps": max(stage_lat),
                        "balance": max(stage_lat) / (sum(stage_lat) / len(stage_lat))})
        return out

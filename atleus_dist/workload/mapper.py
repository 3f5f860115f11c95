"""Mapper: op graph + chip -> where every op runs, what it costs, and whether the weights fit.

- Static-weight matmuls go to the ReRAM cores holding their weight block (crossbar-wise quantised
  to the scenario's bits); dynamic matmuls and vector ops to the systolic core of their layer
  (layers round-robin over systolic cores); HBM ops to the HBM port.
- Capacity: weights are placed layer by layer into the crossbars of all ReRAM tiers. If they do not
  fit, policy ``fit`` refuses with an error; policy ``stream`` keeps the first weights resident and
  reserves a region into which every other weight is programmed from HBM before each use (an
  ``hbm_read`` + ``program`` op pair inserted into the graph), counting writes per crossbar.
- Per-layer pipeline: the layer's forward ReRAM matmuls are split into ``reram_stages_per_layer``
  contiguous stages minimising the slowest, next to one systolic stage; spare crossbars then
  replicate the bottleneck stage's weights (ISAAC-style) while they last, which divides its vectors.

Knows nothing of LPs, files, processes or Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from atleus_dist.hw.arch import AtleusArchConfig
from atleus_dist.hw.hbm import Hbm2
from atleus_dist.hw.reram import ReramCore, WeightBlock, WriteCounters
from atleus_dist.hw.systolic import SystolicCore
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.workload.graph import Op, OpGraph
from atleus_dist.workload.scenario import Scenario

HBM_CORE = -1


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

    def tier_of_op(self, i: int) -> int:
        """LP-level tier index: ReRAM tiers first, then systolic tiers (HBM ops sit on the first
        systolic tier, which holds the memory controller)."""
        c, a = self.core[i], self.arch
        if c == HBM_CORE:
            return a.reram_tiers
        if c < a.reram_cores:
            return a.tier_of_reram_core(c)
        return a.tier_of_systolic_core(c - a.reram_cores)

    def energy_by_tier(self) -> dict[str, float]:
        out = {"reram": 0.0, "systolic": 0.0, "hbm": 0.0}
        for op, e in zip(self.graph, self.energy_pj):
            out[op.tier] += e
        return out


def _weight_shapes(sc: Scenario, graph: OpGraph) -> dict[str, tuple[int, int, int]]:
    """Static weights in order of first use: key -> (K, N, bits)."""
    out: dict[str, tuple[int, int, int]] = {}
    for op in graph:
        if op.kind == "static_mm" and op.weight not in out:
            k, n = (op.n, op.k) if op.transposed else (op.k, op.n)
            name = op.weight.split(".", 1)[1] if op.weight != "head" else "head"
            out[op.weight] = (k, n, sc.quant.bits_for(name))
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
    placements, nxt = {}, 0
    for w, b in blocks.items():
        if needed <= cap or nxt + b.crossbars <= cap - region:
            placements[w] = Placement(w, b, nxt, True)
            nxt += b.crossbars
        else:
            placements[w] = Placement(w, b, cap - region, False)
    return placements, needed, nxt, region


def _insert_streaming(graph: OpGraph, placements: dict[str, Placement], weight_bits: dict[str, int]) -> OpGraph:
    """Before each use of a streamed weight: read it from HBM and program it into the region."""
    out, new_id, last_region_user = OpGraph(), {}, None
    for op in graph:
        deps = [new_id[d] for d in op.deps]
        p = placements.get(op.weight) if op.kind == "static_mm" else None
        if p is not None and not p.resident:
            b = p.block
            rd = out.add(f"{op.weight}.stream_read", "hbm_read", op.phase, op.layer,
                         nbytes=math.ceil(b.k * b.n * weight_bits[op.weight] / 8))
            prog = out.add(f"{op.weight}.stream_program", "program", op.phase, op.layer,
                           [rd] + ([last_region_user] if last_region_user is not None else []),
                           m=1, n=b.n, k=b.k, weight=op.weight)
            deps.append(prog)
        oid = out.add(op.name, op.kind, op.phase, op.layer, deps, m=op.m, n=op.n, k=op.k, count=op.count,
                      weight=op.weight, transposed=op.transposed, vector_kind=op.vector_kind,
                      elements=op.elements, nbytes=op.nbytes)
        if p is not None and not p.resident:
            last_region_user = oid
        new_id[op.id] = oid
    return out


def _partition(lat: list[int], parts: int) -> list[list[int]]:
    """Contiguous split of ``lat`` into at most ``parts`` groups minimising the largest sum."""
    n = len(lat)
    best: tuple[int, list[int]] | None = None
    for cuts in _cut_sets(n, min(parts, n)):
        bounds = [0, *cuts, n]
        worst = max(sum(lat[a:b]) for a, b in zip(bounds, bounds[1:]))
        if best is None or worst < best[0]:
            best = (worst, bounds)
    bounds = best[1]
    return [list(range(a, b)) for a, b in zip(bounds, bounds[1:])]


def _cut_sets(n: int, parts: int):
    from itertools import combinations

    return combinations(range(1, n), parts - 1)


class Mapper:
    def __init__(self, arch: AtleusArchConfig | None = None) -> None:
        self.arch = arch or AtleusArchConfig()
        self.rc = ReramCore(self.arch.reram)
        self.sa = SystolicCore(self.arch.systolic)
        self.hbm = Hbm2(self.arch.hbm)

    def map(self, sc: Scenario, graph: OpGraph) -> Mapping:
        arch, rc = self.arch, self.rc
        shapes = _weight_shapes(sc, graph)
        placements, needed, resident, region = _place(sc, arch, shapes, rc)
        g = _insert_streaming(graph, placements, {w: s[2] for w, s in shapes.items()}) if region else graph
        writes = WriteCounters(arch.crossbar_capacity, arch.reram.endurance_writes)
        placements = self._replicate(sc, g, placements, arch.crossbar_capacity - resident - region)
        n_sys = min(arch.systolic_cores, sc.model.layers + 1)
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

    def _cost(self, op: Op, placements, writes: WriteCounters, n_sys: int) -> tuple[int, int, float]:
        arch = self.arch
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
        sys_core = arch.reram_cores + (op.layer % n_sys)
        if op.kind == "dynamic_mm":
            c = self.sa.gemm(op.m, op.n, op.k, op.count)
        else:
            c = self.sa.vector(op.vector_kind, op.elements)
        return sys_core, c.latency_ps, c.energy_pj

    def _layer_static_fwd(self, g: OpGraph, layer: int) -> list[Op]:
        return [op for op in g if op.layer == layer and op.phase == "fwd" and op.kind == "static_mm"]

    def _replicate(self, sc: Scenario, g: OpGraph, placements, spare: int):
        """Give the bottleneck ReRAM stage more copies of its weights while spare crossbars last."""
        if spare <= 0 or sc.model.layers < 1:
            return placements
        ops = self._layer_static_fwd(g, 0)
        if not ops or not all(placements[o.weight].resident for o in ops):
            return placements
        names = [o.weight.split(".", 1)[1] for o in ops]
        reps = {n: 1 for n in names}
        while True:
            lat = [self.rc.mvm(placements[o.weight].block, math.ceil(o.m * o.count / reps[nm])).latency_ps
                   for o, nm in zip(ops, names)]
            stages = _partition(lat, self.arch.reram_stages_per_layer)
            worst = max(stages, key=lambda s: sum(lat[i] for i in s))
            cost = sc.model.layers * sum(placements[ops[i].weight].block.crossbars for i in worst)
            if cost > spare or any(ops[i].m * ops[i].count <= reps[names[i]] for i in worst):
                break
            spare -= cost
            for i in worst:
                reps[names[i]] += 1
        out = dict(placements)
        for w, p in placements.items():
            name = w.split(".", 1)[1] if "." in w else w
            if p.resident and name in reps and reps[name] > 1:
                out[w] = Placement(w, p.block, p.first_xbar, True, reps[name])
        return out

    def _stages(self, sc: Scenario, m: Mapping) -> list[dict]:
        out = []
        by_layer: dict[int, list[int]] = {}
        for i, op in enumerate(m.graph):
            if op.phase == "fwd" and 0 <= op.layer < sc.model.layers:
                by_layer.setdefault(op.layer, []).append(i)
        for layer, ids in sorted(by_layer.items()):
            static = [i for i in ids if m.graph.ops[i].kind == "static_mm"]
            sys_ids = [i for i in ids if m.graph.ops[i].tier == "systolic"]
            lat = [m.latency_ps[i] for i in static]
            groups = _partition(lat, self.arch.reram_stages_per_layer) if static else []
            reram = [sum(lat[j] for j in grp) for grp in groups]
            systolic = sum(m.latency_ps[i] for i in sys_ids)
            stage_lat = reram + [systolic]
            out.append({"layer": layer,
                        "reram_stages": [[m.graph.ops[static[j]].name.split(".", 1)[1] for j in grp] for grp in groups],
                        "reram_stage_ps": reram, "systolic_stage_ps": systolic,
                        "interval_ps": max(stage_lat),
                        "balance": max(stage_lat) / (sum(stage_lat) / len(stage_lat))})
        return out

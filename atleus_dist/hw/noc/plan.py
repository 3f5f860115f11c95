"""``--partition auto``: pick the partition of the NoC (single, by-tier, blocks:AxB or a balanced
split of tiers) predicted fastest, never one predicted slower than one LP.

The cost model, per plan of ``k`` LPs (one per worker, so they run compiled rounds):

    t_single = W                              W = a * router_cycles + b * flit_hops
    t_plan   = max_part(W_part) + rounds * t_round,   rounds = span_cycles / window_cycles

``flit_hops`` per router come from the traffic, known before the run: the synthetic rate times
the mean DOR path, or every transfer of the chip's step (``ChipProgram.dests``, routed by DOR);
``router_cycles`` from the mesh and the span; while neighbours are busy a window lasts the
shortest cut lookahead (``min_{j != i} D[j, i]``; idle skipping only widens it, so rounds are
over-estimated). ``a``, ``b`` and ``t_round`` were measured on this machine class (2 vCPU,
bench/parallel.py, bench/RESULTS.md). A plan must beat single by ``MARGIN``; a one-worker run or
the ``inline`` backend (one thread) always gets ``single``. Knows the topology and the traffic,
nothing of backends' internals, processes or files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from atleus_dist.hw.compute import lower_bound_ps
from atleus_dist.hw.noc.partition import channels, partition_map
from atleus_dist.hw.noc.topology import build_topology
from atleus_dist.hw.noc.traffic import destinations
from atleus_dist.kernel.channels import ChannelMap

ROUTER_CYCLE_S = 4.0e-9   # a router's share of a simulated cycle with nothing to move (8x8x4, rate 0.005)
FLIT_HOP_S = 1.9e-7       # one flit through one router (8x8x4 uniform 0.05: 1.2 s / 6.3 M flit-hops)
# a chip step's flits travel in long back-to-back transfers, cheaper per hop: the 8x8 chip at
# seq 32 took 10.95 s (loop, one LP) where FLIT_HOP_S predicted 26.6 s (bench/RESULTS.md)
CHIP_FLIT_HOP_S = 0.78e-7
ROUND_S = 3.0e-6          # a compiled round of two threads with little work (chip seq 8: 4.38 s / 1.65 M)
MARGIN = 1.15             # a plan must be predicted this much faster than single
PARALLEL_BACKENDS = ("local", "ray")


@dataclass
class Plan:
    partition: str
    reason: str
    predicted_speedup: float = 1.0
    candidates: dict = field(default_factory=dict)  # partition -> predicted speed-up over single

    def to_meta(self) -> dict:
        return {"partition": self.partition, "reason": self.reason,
                "predicted_speedup": round(self.predicted_speedup, 3),
                "candidates": {k: round(v, 3) for k, v in self.candidates.items()}}


def dor_paths(topo, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pair index, router) of every router on the dimension-order path of each pair, the source
    and the destination included (the flits' visits)."""
    coords = np.asarray(topo.coords, dtype=np.int64)
    dims = np.asarray(topo.dims, dtype=np.int64)
    stride = np.concatenate([[1], np.cumprod(dims)[:-1]])
    cur = coords[src].copy()
    goal = coords[dst]
    pairs, routers = [np.arange(len(src))], [src]
    for d in range(coords.shape[1]):
        delta = goal[:, d] - cur[:, d]
        steps = np.abs(delta)
        for k in range(1, int(steps.max(initial=0)) + 1):
            m = steps >= k
            pos = cur[m].copy()
            pos[:, d] += np.sign(delta[m]) * k
            pairs.append(np.flatnonzero(m))
            routers.append(pos @ stride)
        cur[:, d] = goal[:, d]
    return np.concatenate(pairs), np.concatenate(routers)


SAMPLE_DESTS = 64  # destinations per source the synthetic estimate routes (the rest scale)


def noc_hops(topo, cfg) -> np.ndarray:
    """Expected flit visits per router of a synthetic run: rate * flits * generation cycles per
    node, spread over the DOR paths of the pattern's destinations (drawn as the run draws them,
    ``SAMPLE_DESTS`` per source)."""
    n = topo.n_routers
    src = np.repeat(np.arange(n, dtype=np.int64), SAMPLE_DESTS)
    idx = np.tile(np.arange(SAMPLE_DESTS, dtype=np.int64), n)
    dst = np.asarray(destinations(cfg.traffic, topo, cfg.seed, src, idx), dtype=np.int64)
    pair, router = dor_paths(topo, src, dst)
    visits = np.bincount(router, minlength=n).astype(float)
    ph = cfg.phases
    gen_cycles = ph.warmup_cycles + ph.measure_cycles
    return visits * cfg.traffic.rate * cfg.interface.packet_flits * gen_cycles / SAMPLE_DESTS


def chip_hops(topo, program, cfg) -> np.ndarray:
    """Flit visits per router of a chip step: every transfer (producer's router to each consumer
    router) in flits, along its DOR path."""
    src, dst, flits = [], [], []
    ic = cfg.interface
    for op, routers in program.dests.items():
        for r in routers:
            src.append(program.router[op])
            dst.append(r % topo.n_routers)  # a memory controller's node sits at its router
            flits.append(max(1, -(-program.bytes_to(op, r) * 8 // ic.flit_bits)))
    if not src:
        return np.zeros(topo.n_routers)
    pair, router = dor_paths(topo, np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64))
    return np.bincount(router, weights=np.asarray(flits, dtype=float)[pair], minlength=topo.n_routers)


def candidates(topo, workers: int) -> list[str]:
    """Plans of exactly ``workers`` LPs (one per worker: compiled rounds need it)."""
    X, Y, Z = topo.dims[0], topo.dims[1], (topo.dims[2] if len(topo.dims) > 2 else 1)
    out = []
    for a in range(1, workers + 1):
        if workers % a == 0 and a <= X and workers // a <= Y:
            out.append(f"blocks:{a}x{workers // a}")
    if Z == workers:
        out.append("by-tier")
    elif 1 < workers < Z:
        out.extend(_tier_splits(Z, workers))
    return out


def _tier_splits(Z: int, k: int) -> list[str]:
    """Every split of tiers 0..Z-1 into k contiguous groups (the balanced one is among them)."""
    from itertools import combinations

    out = []
    for cuts in combinations(range(1, Z), k - 1):
        group = np.searchsorted(np.asarray(cuts), np.arange(Z), side="right")
        out.append("tiers:" + ",".join(str(int(g)) for g in group))
    return out


def choose(topo, cfg, hops: np.ndarray, span_cycles: int, workers: int, backend: str,
           round_s: float = ROUND_S, flit_hop_s: float = FLIT_HOP_S) -> Plan:
    """The plan for ``workers`` on ``backend`` given the flit visits per router and the span."""
    if backend not in PARALLEL_BACKENDS or workers < 2:
        return Plan("single", f"backend {backend} with {workers} worker(s): one LP is fastest")
    clk = cfg.router.clock_period_ps
    work_r = ROUTER_CYCLE_S * span_cycles + flit_hop_s * hops  # seconds per router
    total = float(work_r.sum())
    best = Plan("single", "no plan predicted faster than one LP by the margin")
    for cand in candidates(topo, workers):
        lp = partition_map(cand, topo)
        k = int(lp.max()) + 1
        dist = ChannelMap(k, channels(topo, lp, clk, cfg.router)).distance_ps
        off = dist[~np.eye(k, dtype=bool)]
        window = max(1, int(off.min()) // clk)  # busy neighbours: the shortest cut lookahead
        parts = np.bincount(lp, weights=work_r, minlength=k)
        t = float(parts.max()) + span_cycles / window * round_s
        speedup = total / t if t > 0 else 0.0
        best.candidates[cand] = speedup
        if speedup >= MARGIN and speedup > best.predicted_speedup:
            share = float(parts.max() / total) if total else 1.0
            best.partition, best.predicted_speedup = cand, speedup
            best.reason = (f"predicted {speedup:.2f}x over one LP: largest part {share:.0%} of "
                           f"{total:.2f} s of work, {span_cycles / window:,.0f} rounds of >= {window} cycles")
    return best


def noc_plan(cfg, workers: int, backend: str) -> Plan:
    """The plan of a synthetic-traffic run (span: warm-up and measurement; the drain is short)."""
    topo = build_topology(cfg)
    ph = cfg.phases
    return choose(topo, cfg, noc_hops(topo, cfg), ph.warmup_cycles + ph.measure_cycles, workers, backend)


def chip_plan(cfg, program, workers: int, backend: str) -> Plan:
    """The plan of a chip step (span: the step's lower-bound estimate, critical path vs busiest
    unit - the run is longer, so rounds and router cycles are under-estimated alike)."""
    topo = build_topology(cfg)
    span = max(1, lower_bound_ps(program.ops) // cfg.router.clock_period_ps)
    return choose(topo, cfg, chip_hops(topo, program, cfg), span, workers, backend, flit_hop_s=CHIP_FLIT_HOP_S)

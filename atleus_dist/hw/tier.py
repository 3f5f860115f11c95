"""A tier of the chip as one logical process: it executes its ops in dependency order on its cores
and tells other tiers when an op they wait for has finished.

Each op has a tier, a core, a latency and an energy (from the mapper; this module does not know
how they were computed); :class:`~atleus_dist.hw.compute.CoreScheduler` runs them (one op per
core, canonical order). HBM ops sit on the tier that holds the memory controller, as one more
"core".

**Transfer stub.** Until the NoC is coupled (the end-to-end issue), a finished op's result reaches
another tier after ``FixedLatencyTransferStub.latency_ps`` - a constant, independent of size and
distance. It is the lookahead of every tier-to-tier channel. It is a stand-in, not a model.

Knows nothing of processes, Ray or files (results go to the sink it is given).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from atleus_dist.hw.compute import CoreScheduler
from atleus_dist.hw.params import param, validate_fields
from atleus_dist.hw.units import weight_block_unit
from atleus_dist.kernel import Block, LogicalProcess, LPFactory, RunSpec, message_dtype
from atleus_dist.kernel.errors import ConfigError

DEP_DTYPE = message_dtype([("op", "<i8")])
KIND_CODES = {"static_mm": 0, "dynamic_mm": 1, "vector": 2, "hbm_read": 3, "hbm_write": 4, "program": 5,
              "link_send": 6, "link_wait": 7, "link_recv": 8}
PHASE_CODES = {"fwd": 0, "bwd": 1, "update": 2, "prefill": 3, "decode": 4}  # existing codes never change


@dataclass(frozen=True)
class FixedLatencyTransferStub:
    """Stand-in for the NoC between tiers: every inter-tier transfer takes the same time."""

    latency_ps: int = param(10_000, 1, 10**12, "placeholder: ~10 hops x 1 ns (a stand-in, not a model)")

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class OpTable:
    """The chip's op table: per op (by id) its tier, core, serial unit, latency, energy, deps,
    layer, kind, phase, MACs and bytes, as plain picklable lists - what the tier LPs run and what
    :class:`~atleus_dist.hw.chip_program.ChipProgram` extends with routers for the NoC.
    (Formerly ``TierProgram``; that name stays as an alias.)"""

    n_tiers: int
    tier: list[int]
    core: list[int]
    latency_ps: list[int]
    energy_pj: list[float]
    deps: list[tuple[int, ...]]
    layer: list[int]
    kind: list[int]
    phase: list[int]
    macs: list[int]
    nbytes: list[int]
    stub: FixedLatencyTransferStub = field(default_factory=FixedLatencyTransferStub)
    # the serial resource an op occupies (hw.units): its core, except that a ReRAM weight block
    # (ISAAC: independent tiles/IMAs) serves one op at a time on its own, so blocks of one core overlap
    unit: list[int] = field(default_factory=list)
    # mode generate only: per op its decode step (-1: not a decode op), an ops-table column then;
    # empty for every other run, whose table has no such column
    step: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.unit:
            object.__setattr__(self, "unit", list(self.core))
        n = len(self.tier)
        for name in ("core", "unit", "latency_ps", "energy_pj", "deps", "layer", "kind", "phase", "macs", "nbytes",
                     *(("step",) if self.step else ())):
            if len(getattr(self, name)) != n:
                raise ConfigError(name, f"has {len(getattr(self, name))} entries for {n} ops")
        for i, t in enumerate(self.tier):
            if not 0 <= t < self.n_tiers:
                raise ConfigError("tier", f"op {i} on tier {t}, outside 0..{self.n_tiers - 1}")
            if any(d >= i for d in self.deps[i]):
                raise ConfigError("deps", f"op {i} depends on a later op (graph not topological)")

    @classmethod
    def from_mapping(cls, mapping, stub: FixedLatencyTransferStub | None = None) -> "OpTable":
        g = mapping.graph
        unit = [weight_block_unit(mapping.placements[op.weight].first_xbar) if op.kind in ("static_mm", "program")
                else mapping.core[i] for i, op in enumerate(g)]
        return cls(mapping.arch.tiers, [mapping.tier_of_op(i) for i in range(len(g))], list(mapping.core),
                   [int(x) for x in mapping.latency_ps], [float(x) for x in mapping.energy_pj],
                   [op.deps for op in g], [op.layer for op in g], [KIND_CODES[op.kind] for op in g],
                   [PHASE_CODES[op.phase] for op in g], [op.macs for op in g], [op.nbytes for op in g],
                   stub or FixedLatencyTransferStub(), unit, decode_steps(g))

    def channels(self) -> list[tuple[int, int, int]]:
        """(src tier, dst tier, lookahead) for every pair with a dependency crossing it. Tiers run
        their own events one by one, so they need no self-channel; chains through idle tiers are
        covered by the kernel's shortest-path horizons."""
        pairs = {(self.tier[d], self.tier[i]) for i in range(len(self.tier)) for d in self.deps[i]}
        return sorted((a, b, self.stub.latency_ps) for a, b in pairs if a != b)


TierProgram = OpTable  # the old name


def decode_steps(graph) -> list[int]:
    """Per op its decode step when the graph has decode ops (mode generate), else []."""
    steps = [op.step for op in graph]
    return steps if any(s >= 0 for s in steps) else []


class TierLP(LogicalProcess):
    """One tier: a :class:`CoreScheduler` for its ops, the transfer stub towards other tiers."""

    def __init__(self, lp_id: int, program: OpTable, sink=None) -> None:
        super().__init__(lp_id)
        self.p = program
        self.sink = sink
        p = program
        self.remote_tiers: dict[int, list[int]] = {}  # producer (mine) -> tiers that wait for it
        for i in range(len(p.tier)):
            for d in p.deps[i]:
                if p.tier[d] == lp_id and p.tier[i] != lp_id and p.tier[i] not in self.remote_tiers.get(d, []):
                    self.remote_tiers.setdefault(d, []).append(p.tier[i])
        wait = KIND_CODES["link_wait"]  # stands for another chip's send: a link message releases it
        self.sched = CoreScheduler(p, (i for i, t in enumerate(p.tier) if t == lp_id and p.kind[i] != wait),
                                   self._on_done)
        self._out: dict[int, list[tuple[int, int]]] = {}
        self.seq = 0

    def work_done(self) -> int:
        return self.sched.ops_done

    def next_time(self) -> int:
        return self.sched.next_time()

    def _on_done(self, t: int, op: int) -> None:
        for tier in self.remote_tiers.get(op, ()):
            self._out.setdefault(tier, []).append((t + self.p.stub.latency_ps, op))
        self.sched.satisfy(t, op)

    def receive(self, blocks: list[Block]) -> None:
        for b in blocks:
            for t, op in zip(b.rows["time_ps"].tolist(), b.rows["op"].tolist()):
                self.sched.arrive(t, op)

    def process(self, horizon_ps: int) -> dict[int, list[Block]]:
        self.events_committed += self.sched.run(horizon_ps)
        out: dict[int, list[Block]] = {}
        for tier, items in sorted(self._out.items()):
            rows = np.zeros(len(items), dtype=DEP_DTYPE)
            rows["time_ps"] = [t for t, _ in items]
            rows["op"] = [op for _, op in items]
            rows["src"] = self.lp_id
            rows["src_seq"] = np.arange(self.seq, self.seq + len(items))
            rows["dst"] = tier
            self.seq += len(items)
            out[tier] = [Block("dep", rows)]
        self._out.clear()
        return out

    def close(self) -> None:
        if self.sink is None or not self.sched.rows:
            return
        self.sink.write("ops", self.sched.ops_columns(self.p.tier.__getitem__),
                        meta={"kind_codes": KIND_CODES, "phase_codes": PHASE_CODES})


def tier_run_spec(program: OpTable, groups: list[list[int]], sink_factory=None, meta: dict | None = None):
    """A :class:`~atleus_dist.kernel.RunSpec` with one LP per tier; ``end_ps`` bounds every schedule
    (all ops one after another, each followed by a transfer)."""
    end = sum(program.latency_ps) + (len(program.tier) + 1) * program.stub.latency_ps + 1
    return RunSpec(n_lps=program.n_tiers, channels=program.channels(), end_ps=end,
                   lp_factory=LPFactory(TierLP, (program,)), groups=groups, sink_factory=sink_factory,
                   meta=dict(meta or {}))

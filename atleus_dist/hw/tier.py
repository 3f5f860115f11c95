"""A tier of the chip as one logical process: it executes its ops in dependency order on its cores
and tells other tiers when an op they wait for has finished.

Each op has a tier, a core, a latency and an energy (from the mapper; this module does not know
how they were computed). A core runs one op at a time; among ready ops it picks the lowest op id,
and it only picks after every event of the same instant was seen (a lower-priority "start" event),
so the schedule does not depend on the order in which messages arrived. HBM ops sit on the tier that
holds the memory controller, as one more "core".

**Transfer stub.** Until the NoC is coupled (the end-to-end issue), a finished op's result reaches
another tier after ``FixedLatencyTransferStub.latency_ps`` - a constant, independent of size and
distance. It is the lookahead of every tier-to-tier channel. It is a stand-in, not a model.

Knows nothing of processes, Ray or files (results go to the sink it is given).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from atleus_dist.kernel import EventLP, RunSpec, check_time_ps, message_dtype
from atleus_dist.kernel.errors import ConfigError

DEP_DTYPE = message_dtype([("op", "<i8")])
KIND_CODES = {"static_mm": 0, "dynamic_mm": 1, "vector": 2, "hbm_read": 3, "hbm_write": 4, "program": 5}
PHASE_CODES = {"fwd": 0, "bwd": 1, "update": 2}
PRIO_EVENT, PRIO_START = 0, 1


@dataclass(frozen=True)
class FixedLatencyTransferStub:
    """Stand-in for the NoC between tiers: every inter-tier transfer takes the same time."""

    latency_ps: int = 10_000  # placeholder: ~10 hops x 1 ns until the NoC is coupled (not a model)

    def __post_init__(self) -> None:
        check_time_ps("transfer_stub.latency_ps", self.latency_ps, positive=True)


@dataclass(frozen=True)
class TierProgram:
    """Everything tier LPs need, as plain picklable lists indexed by op id."""

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

    def __post_init__(self) -> None:
        n = len(self.tier)
        for name in ("core", "latency_ps", "energy_pj", "deps", "layer", "kind", "phase", "macs", "nbytes"):
            if len(getattr(self, name)) != n:
                raise ConfigError(name, f"has {len(getattr(self, name))} entries for {n} ops")
        for i, t in enumerate(self.tier):
            if not 0 <= t < self.n_tiers:
                raise ConfigError("tier", f"op {i} on tier {t}, outside 0..{self.n_tiers - 1}")
            if any(d >= i for d in self.deps[i]):
                raise ConfigError("deps", f"op {i} depends on a later op (graph not topological)")

    @classmethod
    def from_mapping(cls, mapping, stub: FixedLatencyTransferStub | None = None) -> "TierProgram":
        g = mapping.graph
        return cls(mapping.arch.tiers, [mapping.tier_of_op(i) for i in range(len(g))], list(mapping.core),
                   [int(x) for x in mapping.latency_ps], [float(x) for x in mapping.energy_pj],
                   [op.deps for op in g], [op.layer for op in g], [KIND_CODES[op.kind] for op in g],
                   [PHASE_CODES[op.phase] for op in g], [op.macs for op in g], [op.nbytes for op in g],
                   stub or FixedLatencyTransferStub())

    def channels(self) -> list[tuple[int, int, int]]:
        """(src tier, dst tier, lookahead) for every pair with a dependency crossing it, plus a
        self-channel on every sending tier: the kernel's horizon only looks at direct senders, so a
        tier that is idle now but may answer a message must not let the asker run past
        ``own next event + stub`` (the earliest an answer to anything it sends could come back)."""
        pairs = {(self.tier[d], self.tier[i]) for i in range(len(self.tier)) for d in self.deps[i]}
        cross = {(a, b) for a, b in pairs if a != b}
        selfs = {(a, a) for a, _ in cross}
        return sorted((a, b, self.stub.latency_ps) for a, b in cross | selfs)


class TierLPFactory:
    """Picklable ``lp_factory`` for :class:`~atleus_dist.kernel.RunSpec`: LP i is tier i."""

    def __init__(self, program: TierProgram) -> None:
        self.program = program

    def __call__(self, lp_id: int, sink) -> "TierLP":
        return TierLP(lp_id, self.program, sink)


class TierLP(EventLP):
    def __init__(self, lp_id: int, program: TierProgram, sink=None) -> None:
        super().__init__(lp_id, {"dep": DEP_DTYPE})
        self.p = program
        self.sink = sink
        p = program
        self.mine = [i for i, t in enumerate(p.tier) if t == lp_id]
        self.waiting = {i: len(p.deps[i]) for i in self.mine}
        self.local_consumers: dict[int, list[int]] = {}
        self.remote_tiers: dict[int, list[int]] = {}  # producer (mine) -> tiers that wait for it
        for i in range(len(p.tier)):
            for d in p.deps[i]:
                if p.tier[i] == lp_id:
                    self.local_consumers.setdefault(d, []).append(i)
                elif p.tier[d] == lp_id and p.tier[i] not in self.remote_tiers.get(d, []):
                    self.remote_tiers.setdefault(d, []).append(p.tier[i])
        self.queues: dict[int, list[int]] = {}
        self.busy: dict[int, bool] = {}
        self.started: dict[int, int] = {}
        self.seq = 0
        self.rows: list[tuple] = []
        self.handlers = {"dep": self._on_dep, "done": self._on_done, "start": self._on_start}
        for i in self.mine:
            if self.waiting[i] == 0:
                self._ready(0, i)

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _ready(self, t: int, op: int) -> None:
        core = self.p.core[op]
        heapq.heappush(self.queues.setdefault(core, []), op)
        if not self.busy.get(core):
            self.schedule(t, PRIO_START, self.lp_id, self._next_seq(), "start", None, core)

    def _satisfy(self, t: int, producer: int) -> None:
        for c in self.local_consumers.get(producer, ()):
            self.waiting[c] -= 1
            if self.waiting[c] == 0:
                self._ready(t, c)

    def _on_start(self, t: int, _row, core: int) -> None:
        q = self.queues.get(core)
        if self.busy.get(core) or not q:
            return
        op = heapq.heappop(q)
        self.busy[core] = True
        self.started[op] = t
        self.schedule(t + self.p.latency_ps[op], PRIO_EVENT, self.lp_id, self._next_seq(), "done", None, op)

    def _on_done(self, t: int, _row, op: int) -> None:
        p = self.p
        core = p.core[op]
        self.busy[core] = False
        self.rows.append((op, core, self.started[op], t))
        for tier in self.remote_tiers.get(op, ()):
            self.send(tier, "dep", (t + p.stub.latency_ps, PRIO_EVENT, self.lp_id, self._next_seq(), tier, 0, op))
        self._satisfy(t, op)
        if self.queues.get(core):
            self.schedule(t, PRIO_START, self.lp_id, self._next_seq(), "start", None, core)

    def _on_dep(self, t: int, row, _payload) -> None:
        self._satisfy(t, int(row[-1]))

    def close(self) -> None:
        if self.sink is None or not self.rows:
            return
        p = self.p
        ops = np.array([r[0] for r in self.rows], dtype=np.int64)
        self.sink.write("ops", {
            "op": ops,
            "tier": np.full(len(ops), self.lp_id, dtype=np.int32),
            "core": np.array([r[1] for r in self.rows], dtype=np.int32),
            "layer": np.array([p.layer[i] for i in ops], dtype=np.int32),
            "kind": np.array([p.kind[i] for i in ops], dtype=np.int8),
            "phase": np.array([p.phase[i] for i in ops], dtype=np.int8),
            "start_ps": np.array([r[2] for r in self.rows], dtype=np.int64),
            "end_ps": np.array([r[3] for r in self.rows], dtype=np.int64),
            "macs": np.array([p.macs[i] for i in ops], dtype=np.int64),
            "bytes": np.array([p.nbytes[i] for i in ops], dtype=np.int64),
            "energy_pj": np.array([p.energy_pj[i] for i in ops], dtype=np.float64),
        }, meta={"kind_codes": KIND_CODES, "phase_codes": PHASE_CODES})
        self.rows.clear()


def tier_run_spec(program: TierProgram, groups: list[list[int]], sink_factory=None, meta: dict | None = None):
    """A :class:`~atleus_dist.kernel.RunSpec` with one LP per tier; ``end_ps`` bounds every schedule
    (all ops one after another, each followed by a transfer)."""
    end = sum(program.latency_ps) + (len(program.tier) + 1) * program.stub.latency_ps + 1
    return RunSpec(n_lps=program.n_tiers, channels=program.channels(), end_ps=end,
                   lp_factory=TierLPFactory(program), groups=groups, sink_factory=sink_factory,
                   meta=dict(meta or {}))

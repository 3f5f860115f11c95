"""The compute side of an LP: ops of the cores it owns, run one at a time per *unit* (a core, or
a ReRAM weight block: ``program.unit``) in dependency order. Shared by the tier LPs (with a fixed-latency transfer stub between tiers) and
the chip LPs (where results travel over the flit-level NoC).

Order is canonical, so a schedule never depends on how cores were grouped into LPs: events are
keyed ``(time_ps, priority, kind, id)`` - completions and arrivals (priority 0) before starts
(priority 1) at the same instant, ops by op id, starts by unit id - and a unit always starts the
ready op with the lowest id. There are no sequence numbers that depend on what else an LP holds.

The scheduler knows nothing of tiers, NoCs or messages: the owner is told, through
``on_done(time_ps, op)``, when an op finishes, and tells the scheduler when a result arrived
(:meth:`arrive`). Knows nothing of processes, Ray or files.
"""

from __future__ import annotations

import heapq
from typing import Callable, Iterable

import numpy as np

from atleus_dist.kernel.errors import CausalityError

_DONE, _ARRIVE, _START = 0, 1, 2
PRIO_EVENT, PRIO_START = 0, 1


class CoreScheduler:
    # built by __init__ from the program and only read after (a checkpoint need not hold them:
    # at s1024 ``consumers`` was 64% of a chip LP's state)
    snapshot_skip = ("mine", "consumers")

    def __init__(self, program, owned_ops: Iterable[int], on_done: Callable[[int, int], None],
                 site: Callable[[int], int] | None = None) -> None:
        """``site(op)`` says where an op's inputs are delivered (a router for the chip; None: the
        whole LP is one site); :meth:`satisfy` and :meth:`arrive` release consumers per site."""
        p = program
        self.p = p
        self.on_done = on_done
        self.mine = sorted(owned_ops)
        site = site or (lambda _op: 0)
        self.waiting = {i: len(p.deps[i]) for i in self.mine}
        self.consumers: dict[tuple[int, int], list[int]] = {}  # (producer, site) -> my consumers
        for i in self.mine:
            for d in p.deps[i]:
                self.consumers.setdefault((d, site(i)), []).append(i)
        self.heap: list[tuple] = []
        self.queues: dict[int, list[int]] = {}
        self.busy: set[int] = set()
        self.started: dict[int, int] = {}
        self.rows: list[tuple[int, int, int]] = []  # (op, start_ps, end_ps)
        self.now_ps = 0
        self.ops_done = 0
        for i in self.mine:
            if self.waiting[i] == 0:
                self._ready(0, i)

    def next_time(self) -> int:
        return self.heap[0][0] if self.heap else np.iinfo(np.int64).max

    def arrive(self, time_ps: int, producer: int, site: int = 0) -> None:
        """The result of ``producer`` is available to consumers at ``site`` from ``time_ps`` on."""
        if time_ps < self.now_ps:
            raise CausalityError(f"result of op {producer} arrived at {time_ps} ps < {self.now_ps} ps")
        heapq.heappush(self.heap, (time_ps, PRIO_EVENT, _ARRIVE, (producer, site)))

    def run(self, horizon_ps: int) -> int:
        """Process every event earlier than ``horizon_ps``; returns how many."""
        heap = self.heap
        n = 0
        while heap and heap[0][0] < horizon_ps:
            t, _prio, kind, ident = heapq.heappop(heap)
            self.now_ps = t
            n += 1
            if kind == _DONE:
                self._done(t, ident)
            elif kind == _ARRIVE:
                self.satisfy(t, *ident)
            else:
                self._start(t, ident)
        return n

    def satisfy(self, t: int, producer: int, site: int = 0) -> None:
        for c in self.consumers.get((producer, site), ()):
            self.waiting[c] -= 1
            if self.waiting[c] == 0:
                self._ready(t, c)

    def _ready(self, t: int, op: int) -> None:
        unit = self.p.unit[op]
        heapq.heappush(self.queues.setdefault(unit, []), op)
        if unit not in self.busy:
            heapq.heappush(self.heap, (t, PRIO_START, _START, unit))

    def _start(self, t: int, unit: int) -> None:
        q = self.queues.get(unit)
        if unit in self.busy or not q:
            return
        op = heapq.heappop(q)
        self.busy.add(unit)
        self.started[op] = t
        heapq.heappush(self.heap, (t + self.p.latency_ps[op], PRIO_EVENT, _DONE, op))

    def _done(self, t: int, op: int) -> None:
        unit = self.p.unit[op]
        self.busy.discard(unit)
        self.rows.append((op, self.started.pop(op), t))
        self.ops_done += 1
        self.on_done(t, op)
        if self.queues.get(unit):
            heapq.heappush(self.heap, (t, PRIO_START, _START, unit))

    def ops_columns(self, tier_of_op) -> dict[str, np.ndarray]:
        """The ``ops`` table rows this scheduler executed (then forgets them)."""
        p = self.p
        ops = np.array([r[0] for r in self.rows], dtype=np.int64)
        cols = {
            "op": ops,
            "tier": np.array([tier_of_op(i) for i in ops], dtype=np.int32),
            "core": np.array([p.core[i] for i in ops], dtype=np.int32),
            "layer": np.array([p.layer[i] for i in ops], dtype=np.int32),
            "kind": np.array([p.kind[i] for i in ops], dtype=np.int8),
            "phase": np.array([p.phase[i] for i in ops], dtype=np.int8),
            "start_ps": np.array([r[1] for r in self.rows], dtype=np.int64),
            "end_ps": np.array([r[2] for r in self.rows], dtype=np.int64),
            "macs": np.array([p.macs[i] for i in ops], dtype=np.int64),
            "bytes": np.array([p.nbytes[i] for i in ops], dtype=np.int64),
            "energy_pj": np.array([p.energy_pj[i] for i in ops], dtype=np.float64),
        }
        if getattr(p, "step", None):  # mode generate: the decode step of each op (-1: prefill)
            cols["step"] = np.array([p.step[i] for i in ops], dtype=np.int32)
        self.rows.clear()
        return cols


def lower_bound_ps(program) -> int:
    """A lower bound on when a program can finish with free transfers: the longer of its critical
    path and its busiest unit's total latency. Runs use it to estimate progress."""
    lat = program.latency_ps
    finish = [0] * len(lat)
    busy: dict[int, int] = {}
    for i, deps in enumerate(program.deps):
        finish[i] = max((finish[d] for d in deps), default=0) + lat[i]
        u = program.unit[i]
        busy[u] = busy.get(u, 0) + lat[i]
    return max(max(finish, default=0), max(busy.values(), default=0))

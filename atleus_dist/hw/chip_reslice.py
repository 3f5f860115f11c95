"""Re-slicing chip LPs: the state of the chip LPs of one partition, restored from a checkpoint,
moved into the chip LPs of another partition so the run resumes on it.

The NoC regions move with :mod:`atleus_dist.hw.noc.reslice` (a transfer's destination node is
``tag % n_sites``: the chip tags a transfer ``op * n_sites + node``). The cores' schedulers
(:class:`~atleus_dist.hw.compute.CoreScheduler`) move by owner: an op is owned by the LP of its
router, a serial unit by the LP of its ops (one LP: ``chip_run_spec`` refuses a partition that
splits one), so per op the inputs still awaited, its start if running and its row if done go to
the owner of the op; per unit its ready queue and whether it is busy to the owner of the unit;
pending events to the owner of what they touch - a finish to the op's, a start to the unit's, a
result's arrival to the LP of the router of the site it arrives at. The scheduler's time is the
latest any old one reached (every event before the checkpoint was processed). Knows the chip
LP and the scheduler; nothing of files, backends or the kernel's rounds.
"""

from __future__ import annotations

import heapq

from atleus_dist.hw.compute import _ARRIVE, _DONE, _START
from atleus_dist.hw.noc.reslice import reslice_lps
from atleus_dist.kernel.snapshot import SnapshotError


def reslice_schedulers(old: dict, new: dict, lp_of_site) -> None:
    """``old``/``new``: LP id -> CoreScheduler (new ones fresh from their constructor);
    ``lp_of_site(site)``: the new LP owning the router of a site."""
    owner_op, owner_unit = {}, {}
    for j, s in new.items():
        for op in s.mine:
            owner_op[op] = j
            owner_unit[s.p.unit[op]] = j
    for s in new.values():
        s.waiting, s.heap, s.queues, s.busy, s.started, s.rows = {}, [], {}, set(), {}, []
    for i in sorted(old):
        s = old[i]
        for op, n in s.waiting.items():
            new[owner_op[op]].waiting[op] = n
        for ev in s.heap:
            _t, _prio, kind, ident = ev
            if kind == _DONE:
                j = owner_op[ident]
            elif kind == _START:
                j = owner_unit[ident]
            elif kind == _ARRIVE:
                j = lp_of_site(ident[1])
            else:
                raise SnapshotError(f"scheduler event of unknown kind {kind!r}")
            new[j].heap.append(ev)
        for unit, q in s.queues.items():
            new[owner_unit[unit]].queues[unit] = list(q)  # a heap stays one
        for unit in s.busy:
            new[owner_unit[unit]].busy.add(unit)
        for op, t in s.started.items():
            new[owner_op[op]].started[op] = t
        for row in s.rows:
            new[owner_op[row[0]]].rows.append(row)
    now = max(s.now_ps for s in old.values())
    for s in new.values():
        missing = [op for op in s.mine if op not in s.waiting]
        if missing:
            raise SnapshotError(f"op {missing[0]}: no LP of the checkpoint held its state")
        heapq.heapify(s.heap)
        s.rows.sort(key=lambda r: (r[2], r[0]))
        s.ops_done = len(s.rows)
        s.now_ps = now


def reslice_chip_lps(old: dict, new: dict, t_ps: int) -> None:
    """Every chip LP of one partition (``old``, restored) into every chip LP of another
    (``new``, fresh): the NoC regions, then the schedulers, then the compute events counted so far
    (to the first new LP, so the sum stays)."""
    first = new[min(new)]
    n_sites, n_routers = first.n_sites, first.topo.n_routers
    reslice_lps(old, new, t_ps, node_of_tag=lambda tag: tag % n_sites)
    lp_of_router = first.lp_of_router
    reslice_schedulers({i: lp.sched for i, lp in old.items()}, {j: lp.sched for j, lp in new.items()},
                       lambda site: int(lp_of_router[site % n_routers]))
    for lp in new.values():
        lp.compute_events = 0
        lp._windows = 0
    first.compute_events = sum(lp.compute_events for lp in old.values())

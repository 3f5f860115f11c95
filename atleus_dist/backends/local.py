"""Local multiprocess backend: one worker process per LP group, exchanging through shared memory.

No coordinator hop: after advancing, each worker writes one buffer per destination worker, its
LPs' next-event times and the earliest time it sent to every LP, then bumps its round counter.
When every counter has reached the round, every worker computes the same horizons from the same
shared numbers, reads its inbound buffers and advances again. That is one barrier per round;
buffers alternate between two parities, so a fast worker never overwrites data a slow one is
still reading (it would first have to pass the next barrier, which needs the slow one).
The parent only starts the workers, watches them, reports progress and raises the abort flag if
one dies; the workers stop on their own if the parent disappears. The workers' code is
:mod:`atleus_dist.backends.local_worker`: a spawned worker imports that module, not this one, so it
never loads what only the parent needs (the compiled-rounds backend and numba: ~0.2 s a worker).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from multiprocessing.connection import wait as wait_sentinels

import numpy as np

from atleus_dist.backends import hygiene, inline, shm, threads
from atleus_dist.backends.base import Progress, ProgressTicker, RunStats, frontier_ps
from atleus_dist.backends.local_worker import worker_main
from atleus_dist.kernel import ConfigError, RunSpec, SimulationAborted, global_next

def run(spec: RunSpec, progress: Progress | None = None, start_method: str = "spawn",
        compiled: bool | None = None, checkpoint=None) -> RunStats:
    """``compiled``: None runs compiled rounds when the LPs offer them (one LP per group), True
    insists, False forces the generic worker processes. A one-group plan runs in this process.
    ``checkpoint``: a :class:`~atleus_dist.run.checkpoint.CheckpointPlan` (None: none)."""
    if len(spec.groups) == 1:
        stats = inline.run(spec, progress, checkpoint=checkpoint)
        stats.backend = "local"
        return stats
    if compiled is not False and threads.eligible(spec):
        return threads.run(spec, progress, checkpoint=checkpoint)
    if compiled:
        raise ConfigError("compiled", "this run's LPs have no compiled rounds (or a group holds several LPs)")
    t_start = time.perf_counter()
    n = len(spec.groups)
    dir_ = shm.make_dir()
    ctrl = shm.Control(os.path.join(dir_, "control"), n, spec.n_lps, create=True)
    ctx = mp.get_context(start_method)
    procs = [ctx.Process(target=worker_main, args=(spec, w, dir_, os.getpid(), checkpoint), name=f"atleus-lp-group{w}")
             for w in range(n)]
    stats = RunStats(backend="local", groups=n)
    ticker = ProgressTicker(progress)
    work = _WorkCount()
    try:
        with hygiene.signals_deferred():  # a child must never see its parent stop mid-handshake
            for proc in procs:
                proc.start()
        alive = {proc.sentinel: proc for proc in procs}
        while alive:
            for s in wait_sentinels(list(alive), timeout=0.25):
                proc = alive.pop(s)
                proc.join()
                if proc.exitcode != 0:
                    ctrl.abort[0] = 1
            if ctrl.abort[0]:
                _stop(procs)
                raise SimulationAborted(_errors(dir_, n) or "a worker process died")
            if checkpoint is not None:
                checkpoint.poll()  # commit checkpoints whose parts every worker wrote
            _note_frontier(ctrl, spec, ticker, work)
        if checkpoint is not None:
            checkpoint.poll()
        st = ctrl.stats
        stats.rounds = int(st[:, 0].max())
        stats.events = int(st[:, 1].sum())
        stats.messages = int(st[:, 2].sum())
        stats.work_s = float(st[:, 3].sum())
        stats.sync_s = float(st[:, 4].sum())
        stats.end_time_ps = int(st[:, 5].min())
        # the last round's parity holds every worker's final count (each published it, then stopped)
        ticker.tick(stats.rounds, stats.end_time_ps, stats.events, force=True,
                    work=lambda: work.read(ctrl.work[stats.rounds % 2]))
    except BaseException:
        _note_frontier(ctrl, spec, ticker, work)  # a stop signal: the time reached, read before the workers stop
        raise
    finally:
        _stop(procs)
        ctrl.close()
        shm.remove_dir(dir_)
    stats.wall_s = time.perf_counter() - t_start
    stats.run_s = (stats.work_s + stats.sync_s) / n
    stats.setup_s = max(stats.wall_s - stats.run_s, 0.0)
    return stats


class _WorkCount:
    """The workers' ops done as the progress line counts them (:func:`total_work`): the sum of
    the counts workers publish (-1: a group whose LPs count nothing; None if none counts). Read
    while workers run, a parity may hold a fast worker's count of a later round next to the
    others' (as for ``events``), so the sum may run ahead by a round; it is kept from going back."""

    def __init__(self) -> None:
        self.last: int | None = None

    def read(self, counts: np.ndarray) -> int | None:
        known = counts[counts >= 0]
        if not known.size:
            return self.last
        self.last = max(int(known.sum()), self.last or 0)
        return self.last


def _note_frontier(ctrl, spec: RunSpec, ticker: ProgressTicker, work: "_WorkCount") -> None:
    r = int(ctrl.arrive.min())
    if r > 0:
        p = r % 2  # the frontier counts messages in flight (sent_min), as the workers do
        reached = frontier_ps(global_next(ctrl.local_next[p], ctrl.sent_min[p]), spec.end_ps)
        ticker.tick(r, reached, int(ctrl.events[p].sum()), work=lambda: work.read(ctrl.work[p]))


def _stop(procs: list) -> None:
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        if proc.pid is not None:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _errors(dir_: str, n: int) -> str:
    msgs = []
    for w in range(n):
        path = os.path.join(dir_, f"error{w}.txt")
        if os.path.exists(path):
            with open(path) as fh:
                msgs.append(f"worker {w}: {fh.read().strip()}")
    return "\n".join(msgs)

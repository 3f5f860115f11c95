"""Local multiprocess backend: one worker process per LP group, exchanging through shared memory.

No coordinator hop: after advancing, each worker writes one buffer per destination worker, its
LPs' next-event times and the earliest time it sent to every LP, then bumps its round counter.
When every counter has reached the round, every worker computes the same horizons from the same
shared numbers, reads its inbound buffers and advances again. That is one barrier per round;
buffers alternate between two parities, so a fast worker never overwrites data a slow one is
still reading (it would first have to pass the next barrier, which needs the slow one).
The parent only starts the workers, watches them, reports progress and raises the abort flag if
one dies; the workers stop on their own if the parent disappears.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from multiprocessing.connection import wait as wait_sentinels

import numpy as np

from atleus_dist.backends import hygiene, shm, threads
from atleus_dist.backends.base import Progress, ProgressTicker, RunStats, frontier_ps
from atleus_dist.kernel import NEVER_PS, ConfigError, LPGroup, RunSpec, SimulationAborted, global_next

PURE_SPINS = 200
YIELD_SPINS = 20000


class _Worker:
    def __init__(self, spec: RunSpec, w: int, dir_: str, parent_pid: int, checkpoint=None) -> None:
        self.spec = spec
        self.checkpoint = checkpoint
        self.w = w
        self.n = len(spec.groups)
        self.parent_pid = parent_pid
        self.ctrl = shm.Control(os.path.join(dir_, "control"), self.n, spec.n_lps)
        self.out = {(v, p): shm.Mapped(os.path.join(dir_, f"d{w}_{v}_{p}"), shm.INITIAL_BYTES, create=True)
                    for v in range(self.n) if v != w for p in (0, 1)}
        self.dir = dir_
        self.inp: dict[tuple[int, int], shm.Mapped] = {}
        self.group = LPGroup(spec, w)
        self.cmap = spec.channel_map()
        self.sync_s = 0.0
        self.work_s = 0.0

    def _wait(self, r: int) -> None:
        arrive, abort = self.ctrl.arrive, self.ctrl.abort
        spins = 0
        while arrive.min() < r:
            if abort[0]:
                raise SimulationAborted("another worker failed")
            spins += 1
            if spins > PURE_SPINS:
                if spins > YIELD_SPINS:
                    time.sleep(50e-6)
                else:
                    os.sched_yield()
                if spins % 1000 == 0 and os.getppid() != self.parent_pid:
                    raise SimulationAborted("the coordinating process is gone")

    def _inbound(self, p: int, own: bytes) -> list:
        bufs = [own] if own else []
        for v in range(self.n):
            if v == self.w:
                continue
            nbytes = int(self.ctrl.datalen[p, v, self.w])
            if nbytes:
                key = (v, p)
                if key not in self.inp:
                    self.inp[key] = shm.Mapped(os.path.join(self.dir, f"d{v}_{self.w}_{p}"))
                bufs.append(self.inp[key].read(nbytes))
        return bufs

    def run(self) -> None:
        ctrl, w, lp_ids = self.ctrl, self.w, self.group.lp_ids
        end = self.spec.end_ps
        ctrl.local_next[0, lp_ids] = self.group.local_next()
        ctrl.sent_min[0, w, :] = NEVER_PS
        ctrl.datalen[0, w, :] = 0
        own = b""
        r = 0
        ctrl.arrive[w] = 0
        ckpt = self.checkpoint
        until = None if ckpt is not None else end  # set from the first round's times, which every worker shares
        while True:
            t0 = time.perf_counter()
            self._wait(r)
            p = r % 2
            nxt = global_next(ctrl.local_next[p], ctrl.sent_min[p])
            t1 = time.perf_counter()
            self.sync_s += t1 - t0
            self.group.add_sync_time(t1 - t0)
            if nxt.min() >= end:
                break
            self.group.deliver(self._inbound(p, own))
            if until is None:
                until = ckpt.next_until(int(nxt.min()))
            if ckpt is not None and ckpt.due(int(nxt.min()), until, end):  # every worker sees the same
                ckpt.write_group(until, self.group, {"round": r, "events": self.group.events})
                until = ckpt.next_until(int(nxt.min()))
            horizons = self.cmap.horizons(nxt, min(end, until))
            res = self.group.advance(horizons)
            r += 1
            q = r % 2
            for v, data in enumerate(res.outbound):
                if v == w:
                    own = data
                elif data:
                    self.out[(v, q)].write(data)
            ctrl.datalen[q, w, :] = [len(d) if v != w else 0 for v, d in enumerate(res.outbound)]
            ctrl.local_next[q, lp_ids] = res.local_next
            ctrl.sent_min[q, w, :] = res.sent_min
            ctrl.events[q, w] = self.group.events
            done = self.group.work_done()
            ctrl.work[q, w] = -1 if done is None else done
            self.work_s += time.perf_counter() - t1
            ctrl.arrive[w] = r  # publish last: readers that see r see everything above
        ctrl.stats[w, :] = (r, self.group.events, self.group.messages, self.work_s, self.sync_s,
                            frontier_ps(nxt, end))

    def close(self) -> None:
        self.group.close()
        for m in list(self.out.values()) + list(self.inp.values()):
            m.close()


def _worker_main(spec: RunSpec, w: int, dir_: str, parent_pid: int, checkpoint=None) -> None:
    hygiene.worker_started(parent_pid)  # dies with the parent (SIGKILL), leaves SIGINT/SIGHUP to it
    worker = None
    try:
        worker = _Worker(spec, w, dir_, parent_pid, checkpoint)
        worker.run()
        worker.close()
    except BaseException as exc:  # report, raise the abort flag, exit non-zero
        try:
            ctrl = worker.ctrl if worker else shm.Control(os.path.join(dir_, "control"), len(spec.groups), spec.n_lps)
            ctrl.abort[0] = 1
        except Exception:
            pass
        if not isinstance(exc, SimulationAborted):
            with open(os.path.join(dir_, f"error{w}.txt"), "w") as fh:
                fh.write("".join(traceback.format_exception(exc)))
        if worker is not None:
            try:
                worker.group.close()  # flush what is complete; the manifest will not say complete
            except Exception:
                pass
        os._exit(1)


def run(spec: RunSpec, progress: Progress | None = None, start_method: str = "spawn",
        compiled: bool | None = None, checkpoint=None) -> RunStats:
    """``compiled``: None runs compiled rounds when the LPs offer them (one LP per group), True
    insists, False forces the generic worker processes. A one-group plan runs in this process.
    ``checkpoint``: a :class:`~atleus_dist.run.checkpoint.CheckpointPlan` (None: none)."""
    if len(spec.groups) == 1:
        from atleus_dist.backends import inline

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
    procs = [ctx.Process(target=_worker_main, args=(spec, w, dir_, os.getpid(), checkpoint), name=f"atleus-lp-group{w}")
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

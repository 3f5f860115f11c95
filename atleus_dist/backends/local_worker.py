"""A worker process of the local backend (see :mod:`atleus_dist.backends.local`): advances its LP
group in rounds, exchanging with the other workers through shared memory, one barrier per round.

Apart from ``local.py`` on purpose: a spawned worker imports the module of its target function, so
this one imports only what a worker runs (the kernel, shared memory, process hygiene) - never the
compiled-rounds backend or numba, which the parent may need and a worker never does.
"""

from __future__ import annotations

import os
import time
import traceback

from atleus_dist.backends import hygiene, shm
from atleus_dist.backends.base import frontier_ps
from atleus_dist.kernel import NEVER_PS, LPGroup, RunSpec, SimulationAborted, global_next

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
        ctrl.local_out[0, lp_ids] = self.group.local_out()
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
            horizons = self.cmap.horizons(nxt, min(end, until), global_next(ctrl.local_out[p], ctrl.sent_min[p]))
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
            ctrl.local_out[q, lp_ids] = res.local_out
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


def worker_main(spec: RunSpec, w: int, dir_: str, parent_pid: int, checkpoint=None) -> None:
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

"""The compiled round path of NoC-region LPs (and of the chip LPs built on them): what the LPs of
one run share (:class:`CompiledPlane`: mailboxes, distances, the end) and the per-LP driver of
:func:`engine_rounds.rounds` (:class:`CompiledRounds`), which does in Python only what the compiled
loop hands back.

Knows the kernel's shared-memory board layout (``kernel.compiled_sync``) and the region; knows
nothing of backends, processes or Ray.
"""

from __future__ import annotations

import os
import time
from typing import Protocol

import numpy as np

from atleus_dist.hw.noc import engine as E
from atleus_dist.hw.noc.partition import partition_map
from atleus_dist.hw.noc.router import FlitPool
from atleus_dist.hw.noc.topology import build_topology
from atleus_dist.kernel import NEVER_PS, CausalityError, RunSpec, SimulationAborted


class CompiledLP(Protocol):
    """What compiled rounds need of an LP (:class:`~atleus_dist.hw.noc.lp.NocRegionLP` and the
    chip LP provide it): its region, clock and id, and Python's part of a window."""

    region: object  # hw.noc.region.Region
    clk: int  # router clock period, ps
    lp_id: int

    def next_time(self) -> int: ...
    def python_next(self) -> tuple[int, int]: ...  # (first Python-held NoC cycle, next compute event ps)
    def python_window(self, horizon_ps: int) -> None: ...
    def react_cycles(self) -> int: ...
    def total_events(self) -> int: ...
    def finish_compiled(self) -> None: ...


class CompiledPlane:
    """What the region LPs of one run share for compiled rounds: the mailboxes (sized for the
    widest window: a cut link carries at most one flit and one credit a cycle, and a window is
    never longer than the shortest lookahead cycle through its LP), the distance matrix, the end."""

    def __init__(self, spec: RunSpec, cfg) -> None:
        topo = build_topology(cfg)
        self.lp_of_router = np.ascontiguousarray(partition_map(cfg.partition, topo), dtype=np.int64)
        clk = cfg.router.clock_period_ps
        n = spec.n_lps
        cmap = spec.channel_map()
        self.dist = np.ascontiguousarray(cmap.distance_ps, dtype=np.int64)
        self.la = np.ascontiguousarray(cmap.lookahead_ps, dtype=np.int64)
        # with forecasts a window of LP i ends by e[i, j] + D[j, i] (its first message to j, and
        # back), so its messages to j span at most D[j, i] + the longest lookahead
        finite = self.dist[self.dist != NEVER_PS]
        longest = self.la[self.la != NEVER_PS]
        window = ((int(finite.max()) if len(finite) else clk) + (int(longest.max()) if len(longest) else 0)) // clk + 2
        if spec.max_window_ps is not None:
            window = min(window, spec.max_window_ps // clk + 2)
        r, p = np.nonzero(topo.out_router >= 0)
        a, b = self.lp_of_router[r], self.lp_of_router[topo.out_router[r, p]]
        links = int(max(np.bincount(a[a != b], minlength=n).max(), np.bincount(b[a != b], minlength=n).max()))
        cap = 2 * links * window + 64
        self.mbf = np.zeros((2, n, n, cap, 4 + len(FlitPool.FIELDS)), dtype=np.int64)
        self.mbc = np.zeros((2, n, n, cap, 4), dtype=np.int64)
        self.end_ps = spec.end_ps
        self.max_window_ps = NEVER_PS if spec.max_window_ps is None else int(spec.max_window_ps)


class CompiledRounds:
    """Drives one region LP through :func:`engine_rounds.rounds` from its own thread, doing in
    Python only what the compiled loop hands back (see its ``RET_*`` codes). ``ticks_per_s``
    converts the loop's time-stamp counts to seconds for the ``windows`` rows. Its state is ``rs``
    (the loop's, kept across calls), the LP's region and the board; ``gains`` and ``_paused`` only
    steer whether forecasts run (speed, never results)."""

    def __init__(self, lp: CompiledLP, board, plane: CompiledPlane, rows_every: int, ticks_per_s: float) -> None:
        from atleus_dist.hw.noc import engine_rounds as ER

        self.ER, self.lp, self.board, self.plane = ER, lp, board, plane
        self.rs = np.zeros(ER.N_RS, dtype=np.int64)
        self.rs[ER.R_ROWS_EVERY] = rows_every
        self.rs[ER.R_FORECAST] = int(self.forecast)
        self.rs[ER.R_REACT] = lp.react_cycles()
        from atleus_dist.hw.noc import forecast

        fc = forecast.build(lp.topo, plane.lp_of_router, lp.region.rids, lp.lp_id, lp.cfg.router)
        self.fc = ER.Forecast(fc.path, fc.to_lp, fc.cred_lp, fc.cred_cycles, fc.min_path)
        self.call = np.zeros(ER.N_CALL, dtype=np.int64)  # the scalars of a call of rounds (ER.C_*)
        for k, v in ((ER.C_END_PS, plane.end_ps), (ER.C_MAX_WINDOW_PS, plane.max_window_ps), (ER.C_CLK, lp.clk),
                     (ER.C_END_CYCLE, lp.region.end_cycle), (ER.C_CREDIT_DELAY, lp.region.routers.cd)):
            self.call[k] = v
        self.gains: list[float] = []  # mean cycles the forecast widened the others' windows, per row period
        self._paused = 0
        self.ticks_per_s = ticks_per_s
        self.rows: list[tuple] = []
        self.messages = 0
        # the inboxes, absorbed into in place (room for every cut flit of a few windows in flight)
        cap = plane.mbf.shape[3] * plane.mbf.shape[1] + 64
        reg = lp.region
        self.infbox = np.zeros((5, max(cap, reg.inf.shape[1] * 2)), dtype=np.int64)
        self.incbox = np.zeros((4, max(cap, reg.inc.shape[1] * 2)), dtype=np.int64)
        self.lens = np.array([reg.inf.shape[1], reg.inc.shape[1]], dtype=np.int64)
        self.infbox[:, :self.lens[0]] = reg.inf
        self.incbox[:, :self.lens[1]] = reg.inc
        self._mark = (0, 0, 0, 0, time.perf_counter())  # round, events, messages, wait ticks, wall
        self._last_h_ps = 0

    # publish earliest-output forecasts (ATLEUS_DIST_FORECAST=1; same results, wider windows). Off
    # by default: measured alone they cut rounds by 15-35% on chip plans but cost more per round
    # than that saves (8x8 chip tiers:0,0,0,1,1 28.67 s vs 25.59 s loop; bench/RESULTS.md)
    forecast = os.environ.get("ATLEUS_DIST_FORECAST", "0") == "1"

    rounds = property(lambda self: int(self.rs[self.ER.R_ROUND]))
    messages_sent = property(lambda self: int(self.rs[self.ER.R_MSGS]))
    frontier_ps = property(lambda self: int(self.rs[self.ER.R_FRONTIER]))

    @property
    def mean_window_cycles(self) -> float:
        """Simulated cycles per round, up to the last horizon (the end time is far beyond it)."""
        return self._last_h_ps / self.lp.clk / max(self.rounds, 1)

    def publish_initial(self) -> None:
        from atleus_dist.kernel.compiled_sync import H_NEXT, STRIDE

        i = self.lp.lp_id
        self.board.head[0, i, H_NEXT] = self.lp.next_time()
        self.board.epoch[i * STRIDE] = 0

    def _call(self, py_cycle: int, tc_ps: int) -> int:
        lp, reg, pl, ER = self.lp, self.lp.region, self.plane, self.ER
        call = self.call
        call[ER.C_PY_CYCLE], call[ER.C_TC_PS] = py_cycle, tc_ps
        ctl, rt, nis, fl, cal, _inbox, rec = reg.groups()
        board = ER.Board(self.board.epoch, self.board.head, pl.mbf, pl.mbc, pl.la, pl.dist, pl.lp_of_router)
        mail = ER.Mail(self.infbox, self.incbox, self.lens, reg.g2l)
        code = ER.rounds(lp.lp_id, self.rs, board, call, ctl, rt, nis, fl, cal, mail, rec, self.fc)
        reg.inf, reg.inc = self.infbox[:, :self.lens[0]], self.incbox[:, :self.lens[1]]
        return code

    def run(self) -> None:
        ER, lp, reg, rs = self.ER, self.lp, self.lp.region, self.rs
        reg.sc[E.S_STOP] = int(lp.stop_on_completion)
        while True:
            py_cycle, tc_ps = lp.python_next()
            code = self._call(py_cycle, tc_ps)
            if code == ER.RET_DONE:
                break
            if code == ER.RET_STATS:
                self._row()
            elif code == ER.RET_POOL:
                reg.pool.grow(int(rs[ER.R_NEED]))
            elif code == ER.RET_PYWIN:
                self._python_window()
            elif code == ER.RET_FLAG:
                flag = int(rs[ER.R_FLAG])
                reg._drain()
                reg.serve(flag)
                if lp.stop_on_completion and reg.completed:
                    self._python_window()
            elif code == ER.RET_ABORT:
                raise SimulationAborted("another LP failed")
            elif code == ER.RET_OVERFLOW:
                raise RuntimeError(f"NoC region {lp.lp_id}: a compiled-round mailbox overflowed (a bug)")
            else:
                raise CausalityError(f"NoC region {lp.lp_id}: a message arrived for a cycle before "
                                     f"{reg.cycle}, which was already simulated")
        reg._drain()  # the generic path drains after every kernel call: tails and packets left over
        lp.now_ps = int(rs[ER.R_FRONTIER])
        lp.finish_compiled()
        lp.events_committed = lp.total_events()
        self._row()

    def absorb_pending(self) -> None:
        """After a run that ended at a checkpoint boundary: the flits and credits the other LPs
        posted in their last round (this round's parity) join this region's inboxes, as the
        generic path delivers what is in flight before it takes a checkpoint."""
        from atleus_dist.kernel.compiled_sync import H_SENT

        n, i, p = self.board.n, self.lp.lp_id, self.rounds & 1
        head, reg = self.board.head, self.lp.region
        for k in range(n):
            if k == i:
                continue
            nf, nc = int(head[p, k, H_SENT + n + i]), int(head[p, k, H_SENT + 2 * n + i])
            if nf:
                rows = np.ascontiguousarray(self.plane.mbf[p, k, i, :nf])
                reg.add_remote_flits(np.ascontiguousarray(rows[:, 0]), np.ascontiguousarray(rows[:, 1:]))
            if nc:
                rows = np.ascontiguousarray(self.plane.mbc[p, k, i, :nc])
                reg.add_remote_credits(np.ascontiguousarray(rows[:, 0]), np.ascontiguousarray(rows[:, 1:]))

    def _python_window(self) -> None:
        """The rest of this round's window in Python (the generic code), its outbox posted."""
        from atleus_dist.kernel.compiled_sync import H_SENT

        ER, lp, rs, pl = self.ER, self.lp, self.rs, self.plane
        lp.region._drain()  # as after every kernel call of the generic path
        lp.python_window(int(rs[ER.R_HPS]))
        n, q = self.board.n, 1 - (int(rs[ER.R_ROUND]) & 1)
        for kinds in lp.region.take_outbox().values():
            for kind, box, col in (("flit", pl.mbf, H_SENT + n), ("credit", pl.mbc, H_SENT + 2 * n)):
                rows = kinds.get(kind)
                if rows is None:
                    continue
                rows = np.ascontiguousarray(rows, dtype=np.int64)
                rs[ER.R_MSGS] += len(rows)
                if not ER.post_rows(box, self.board.head, q, lp.lp_id, n, pl.lp_of_router, rows, len(rows),
                                    lp.clk, col):
                    raise RuntimeError(f"NoC region {lp.lp_id}: a compiled-round mailbox overflowed (a bug)")
        rs[ER.R_PHASE] = ER.PH_PUBLISH

    def _row(self) -> None:
        ER, rs = self.ER, self.rs
        r0, ev0, m0, w0, t0 = self._mark
        now = time.perf_counter()
        r, ev, m, w = int(rs[ER.R_ROUND]), self.lp.total_events(), int(rs[ER.R_MSGS]), int(rs[ER.R_WAIT])
        self._last_h_ps = max(self._last_h_ps, min(int(rs[ER.R_HPS]), self.plane.end_ps))
        if r > r0:
            sync_s = min((w - w0) / self.ticks_per_s, now - t0)
            self.rows.append((r, int(rs[ER.R_HPS]), ev - ev0, m - m0, now - t0 - sync_s, sync_s, r - r0))
        self._mark = (r, ev, m, w, now)
        rs[ER.R_SINCE] = 0
        self._adapt()

    FORECAST_MIN_GAIN = 0.5  # cycles a forecast must widen the others' windows by, on average
    FORECAST_PAUSE = 16      # row periods without forecasts before it is tried again

    def _adapt(self) -> None:
        """Forecasts cost a scan of the region's flits every round; where they do not widen the
        others' windows (traffic crossing the cut all the time: a uniform synthetic load) they
        pause, and are tried again later. Horizons stay exact either way (eot 0 = no forecast)."""
        ER, rs = self.ER, self.rs
        if not self.forecast:
            return
        if rs[ER.R_FORECAST]:
            if rs[ER.R_GAIN_N] >= 256:
                self.gains.append(int(rs[ER.R_GAIN]) / int(rs[ER.R_GAIN_N]))
                if self.gains[-1] < self.FORECAST_MIN_GAIN:
                    rs[ER.R_FORECAST] = 0
                    self._paused = self.FORECAST_PAUSE
                rs[ER.R_GAIN] = rs[ER.R_GAIN_N] = 0
        else:
            self._paused -= 1
            if self._paused <= 0:
                rs[ER.R_FORECAST] = 1

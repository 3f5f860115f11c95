"""Compiled rounds on threads: every LP in this process, each on its own thread, meeting at the
kernel's epoch barrier (:mod:`atleus_dist.kernel.compiled_sync`) with no Python per round.

Used by the ``local`` backend when the LPs offer compiled rounds (their factory has
``compiled_plane(spec)``, each LP ``compiled_driver(...)``) and every group holds one LP. Threads
rather than worker processes: the compiled loop releases the GIL, so two LPs use two cores; the
LPs' mailboxes are plain numpy arrays; and there is no worker start-up (spawning, importing and
loading the JIT cache cost ~0.7 s per worker here - on a run of a few seconds, more than the
parallel part saves). Python runs only what the loops hand back (a compute event, a completion,
a refill); two LPs needing it at once take turns on the GIL. Knows nothing of hardware.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from atleus_dist.backends.base import Progress, ProgressTicker, RunStats
from atleus_dist.kernel import RunSpec, SimulationAborted
from atleus_dist.kernel.compiled_sync import H_NEXT, STRIDE, Board
from atleus_dist.kernel.lp import total_work

ROWS_EVERY = 1024  # rounds per ``windows`` row (per-round rows would be millions)


def eligible(spec: RunSpec) -> bool:
    return (spec.n_lps > 1 and len(spec.groups) == spec.n_lps
            and callable(getattr(spec.lp_factory, "compiled_plane", None)))


def _ticks_per_s() -> float:
    return 1e9  # the loops count nanoseconds (compiled_sync.cycle_counter)


def run(spec: RunSpec, progress: Progress | None = None, checkpoint=None) -> RunStats:
    """``checkpoint`` (a :class:`~atleus_dist.run.checkpoint.CheckpointPlan`): the run goes in
    segments that end at its boundaries - each a compiled run with the boundary as its end, after
    which the flits and credits still in the mailboxes join their receivers (``absorb_pending``)
    and every LP's state is written - so compiled rounds keep their speed between checkpoints."""
    t_start = time.perf_counter()
    n = spec.n_lps
    stats = RunStats(backend="local", groups=n)
    plane = spec.lp_factory.compiled_plane(spec)
    sinks = [spec.sink_factory(i) if spec.sink_factory else None for i in range(n)]
    lps = [spec.lp_factory(i, sinks[i]) for i in range(n)]
    events0 = sum(lp.events_committed for lp in lps)  # a resumed run's LPs hold their counts so far
    rate = _ticks_per_s()
    ticker = ProgressTicker(progress)
    end = spec.end_ps
    until = checkpoint.next_until(min(lp.next_time() for lp in lps)) if checkpoint is not None else end
    stats.setup_s = time.perf_counter() - t_start
    t_run = time.perf_counter()

    def work() -> int | None:  # plain int reads of the other threads' schedulers (under the GIL)
        return total_work(lp.work_done() for lp in lps)

    def events() -> int:  # the LPs' live counts (their committed ones are set when a segment ends)
        return sum(lp.total_events() for lp in lps) - events0

    try:
        while True:
            plane.end_ps = min(end, until)
            drivers = _segment(lps, plane, rate, ticker, work, events, spec.first_round + stats.rounds)
            for lp, d in zip(lps, drivers):
                stats.messages += int(d.messages_sent)
                stats.work_s += sum(row[4] for row in d.rows)
                stats.sync_s += sum(row[5] for row in d.rows)
                _write_windows(lp.lp_id, sinks[lp.lp_id], d.rows, spec.first_round + stats.rounds)
            stats.rounds += max(d.rounds for d in drivers)
            stats.end_time_ps = min(d.frontier_ps for d in drivers)
            if plane.end_ps >= end:
                break
            for d in drivers:  # at the boundary: what is in flight joins its receiver
                d.absorb_pending()
            nxt = min(lp.next_time() for lp in lps)
            if nxt >= end:
                stats.end_time_ps = end  # nothing left: as far as the unsegmented run reaches
                break
            for lp in lps:
                checkpoint.write_group(until, _OneLP(lp, sinks[lp.lp_id]),
                                       {"round": stats.rounds, "events": lp.events_committed})
            checkpoint.poll()
            until = checkpoint.next_until(nxt)
        stats.run_s = time.perf_counter() - t_run
        stats.events = sum(lp.events_committed for lp in lps) - events0  # this run's, as on every path
        stats.extra["compiled_rounds"] = True
        stats.extra["mean_cycles_per_window"] = float(np.mean([d.mean_window_cycles for d in drivers]))
        gains = [g for d in drivers for g in getattr(d, "gains", ())]
        if gains:  # how much the LPs' earliest-output forecasts widened windows (cycles, mean per period)
            stats.extra["forecast_gain_cycles"] = float(np.mean(gains))
        ticker.tick(stats.rounds, stats.end_time_ps, stats.events, force=True, work=work)
    finally:
        for lp in lps:
            lp.close()
        for s in sinks:
            if s is not None:
                s.close()
    stats.wall_s = time.perf_counter() - t_start
    return stats


def _segment(lps: list, plane, rate: float, ticker: ProgressTicker, work, events, round0: int) -> list:
    """One compiled run of every LP on its own thread, up to ``plane.end_ps``; its drivers.
    ``round0``: the rounds before it (its drivers count from 0, progress from the run's start)."""
    n = len(lps)
    board = Board(n)
    drivers = [lp.compiled_driver(board, plane, ROWS_EVERY, rate) for lp in lps]
    for d in drivers:
        d.publish_initial()
    errors: list[BaseException] = []

    def body(d) -> None:
        try:
            d.run()
        except BaseException as exc:  # the others see the abort word and stop
            errors.append(exc)
            board.abort()

    old_switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)  # a thread back from its loop gets the GIL soon
    threads = [threading.Thread(target=body, args=(d,), name=f"atleus-lp{i}", daemon=True)
               for i, d in enumerate(drivers)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.25)
                r = int(board.epoch[0:n * STRIDE:STRIDE].min())
                ticker.tick(round0 + max(r, 0), int(board.head[max(r, 0) & 1, :, H_NEXT].min()), events(), work=work)
    except BaseException:
        board.abort()
        for t in threads:
            t.join()
        raise
    finally:
        sys.setswitchinterval(old_switch)
    if errors:
        real = [e for e in errors if not isinstance(e, SimulationAborted)]
        raise (real or errors)[0]
    return drivers


class _OneLP:
    """One LP with its sink, as :meth:`CheckpointPlan.write_group` takes a group."""

    def __init__(self, lp, sink) -> None:
        self.lp, self.sink = lp, sink
        self.group = lp.lp_id
        self.lp_ids = [lp.lp_id]

    def checkpoint_state(self) -> dict[int, tuple]:
        positions = self.sink.positions() if self.sink is not None and hasattr(self.sink, "positions") else {}
        tree, arrays = self.lp.snapshot_state()
        return {self.lp.lp_id: (tree, arrays, positions)}


def _write_windows(lp: int, sink, rows: list[tuple], first_round: int) -> None:
    """A segment's rows; its drivers count rounds from 0, the table from the run's start."""
    if sink is None or not rows:
        return
    cols = list(zip(*rows))
    sink.write("windows", {
        "round": np.array(cols[0], dtype=np.int64) + first_round, "lp": np.full(len(rows), lp, dtype=np.int32),
        "horizon_ps": np.array(cols[1], dtype=np.int64), "events": np.array(cols[2], dtype=np.int64),
        "messages": np.array(cols[3], dtype=np.int64), "work_s": np.array(cols[4], dtype=np.float64),
        "sync_s": np.array(cols[5], dtype=np.float64), "rounds": np.array(cols[6], dtype=np.int64),
    }, kind="execution", wallclock=("work_s", "sync_s"))

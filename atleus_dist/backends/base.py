"""What every backend returns, and the loop shared by the coordinator-driven backends."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from atleus_dist.kernel import NEVER_PS, RunSpec, global_next

# progress(round, sim_time_ps, events_so_far); called at most a few times per second
Progress = Callable[[int, int, int], None]


@dataclass
class RunStats:
    backend: str
    groups: int
    rounds: int = 0
    events: int = 0
    messages: int = 0
    wall_s: float = 0.0  # whole run, including starting workers
    run_s: float = 0.0  # the round loop only (what events/s is measured over)
    work_s: float = 0.0  # summed over groups: time inside deliver+advance
    sync_s: float = 0.0  # summed over groups: time waiting for or doing the exchange
    end_time_ps: int = 0  # the last horizon reached (simulated time)
    setup_s: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def sync_share(self) -> float:
        total = self.work_s + self.sync_s
        return self.sync_s / total if total > 0 else 0.0

    @property
    def round_overhead_s(self) -> float:
        """Mean time per round not spent on model work, per group (the cost of a round)."""
        return self.sync_s / self.groups / self.rounds if self.rounds else 0.0

    def figures(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        d.update(self.extra)
        d["sync_share"] = self.sync_share
        d["round_overhead_s"] = self.round_overhead_s
        d["events_per_s"] = self.events / self.run_s if self.run_s > 0 else 0.0
        d["rounds_per_s"] = self.rounds / self.run_s if self.run_s > 0 else 0.0
        return d


class ProgressTicker:
    """Rate-limits progress callbacks to one per ``every_s`` seconds."""

    def __init__(self, progress: Progress | None, every_s: float = 1.0) -> None:
        self.progress = progress
        self.every_s = every_s
        self._last = time.monotonic()

    def tick(self, rounds: int, sim_ps: int, events: int, force: bool = False,
             work: Callable[[], int | None] | None = None) -> None:
        """``work()``, if given, counts the model's work done (e.g. ops); it is passed as a 4th
        argument when it counts anything."""
        if self.progress is None:
            return
        note = getattr(self.progress, "note", None)  # unthrottled: the run's frontier, for a stop signal
        if note is not None:
            note(rounds, sim_ps, events)
        now = time.monotonic()
        if force or now - self._last >= self.every_s:
            self._last = now
            done = work() if work is not None else None
            if done is None:
                self.progress(rounds, sim_ps, events)
            else:
                self.progress(rounds, sim_ps, events, done)


def frontier_ps(next_ps: np.ndarray, end_ps: int) -> int:
    """Simulated time reached: every event before it has been processed."""
    m = int(next_ps.min()) if next_ps.size else NEVER_PS
    return min(m, end_ps)


def coordinator_loop(spec: RunSpec, n_groups: int, step: Callable, initial_next: np.ndarray,
                     stats: RunStats, progress: Progress | None,
                     work: Callable[[], int | None] | None = None,
                     checkpoint=None, at_boundary: Callable[[int], None] | None = None) -> None:
    """Drive rounds from one place: ``step(horizons) -> (local_next_all, sent_min_stack[, local_out_all])``
    (without the LPs' output bounds their next event times stand for them).

    Used by the inline and Ray backends; the local backend runs the same arithmetic in every
    worker instead, to save the coordinator hop. With ``checkpoint`` (a
    :class:`~atleus_dist.run.checkpoint.CheckpointPlan`) horizons stop at its boundaries and
    ``at_boundary(t_ps)`` runs once every LP has reached one (it delivers what is in flight and
    writes the checkpoint).
    """
    cmap = spec.channel_map()
    ticker = ProgressTicker(progress)
    local_next = local_out = initial_next  # a step may return the LPs' output bounds too
    sent_min = np.full((n_groups, spec.n_lps), NEVER_PS, dtype=np.int64)
    end = spec.end_ps
    until = checkpoint.next_until(int(initial_next.min())) if checkpoint is not None else end
    while True:
        nxt = global_next(local_next, sent_min)
        stats.end_time_ps = frontier_ps(nxt, spec.end_ps)
        if nxt.min() >= spec.end_ps:
            break
        if checkpoint is not None and checkpoint.due(int(nxt.min()), until, end):
            at_boundary(until)
            until = checkpoint.next_until(int(nxt.min()))
        horizons = cmap.horizons(nxt, min(end, until), global_next(local_out, sent_min))
        stats.extra["last_horizon_ps"] = int(horizons.min())
        res = step(horizons)
        local_next, sent_min = res[0], res[1]
        local_out = res[2] if len(res) > 2 else local_next
        stats.rounds += 1
        ticker.tick(stats.rounds, stats.end_time_ps, stats.events, work=work)
    ticker.tick(stats.rounds, stats.end_time_ps, stats.events, force=True, work=work)

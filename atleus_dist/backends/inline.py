"""The reference backend: every LP group in this process, same rounds and the same serialised
messages as the parallel backends, so it is the yardstick for determinism tests."""

from __future__ import annotations

import time

import numpy as np

from atleus_dist.backends.base import Progress, RunStats, coordinator_loop
from atleus_dist.kernel import LPGroup, RunSpec
from atleus_dist.kernel.lp import total_work


def run(spec: RunSpec, progress: Progress | None = None, checkpoint=None) -> RunStats:
    """``checkpoint``: a :class:`~atleus_dist.run.checkpoint.CheckpointPlan` (None: none)."""
    t_start = time.perf_counter()
    groups = [LPGroup(spec, g) for g in range(len(spec.groups))]
    stats = RunStats(backend="inline", groups=len(groups))
    order = np.concatenate([np.asarray(g.lp_ids) for g in groups])
    local_next = np.empty(spec.n_lps, dtype=np.int64)
    local_next[order] = np.concatenate([g.local_next() for g in groups])
    local_out = np.empty(spec.n_lps, dtype=np.int64)
    inbound: list[list[bytes]] = [[] for _ in groups]
    stats.setup_s = time.perf_counter() - t_start
    t_run = time.perf_counter()

    def step(horizons: np.ndarray):
        t0 = time.perf_counter()
        results = []
        for g, group in enumerate(groups):
            group.deliver(inbound[g])
            results.append(group.advance(horizons))
        stats.work_s += time.perf_counter() - t0
        sent_min = np.stack([r.sent_min for r in results])
        for v in range(len(groups)):
            inbound[v] = [r.outbound[v] for r in results if r.outbound[v]]
        for group, r in zip(groups, results):
            local_next[group.lp_ids] = r.local_next
            local_out[group.lp_ids] = r.local_out
            stats.events += r.events
            stats.messages += r.messages
        return local_next, sent_min, local_out

    def at_boundary(until_ps: int) -> None:  # messages in flight join their receivers' state
        for g, group in enumerate(groups):
            group.deliver(inbound[g])
            inbound[g] = []
            checkpoint.write_group(until_ps, group, {"round": stats.rounds, "events": group.events})
        checkpoint.poll()

    try:
        coordinator_loop(spec, len(groups), step, local_next.copy(), stats, progress,
                         work=lambda: total_work(g.work_done() for g in groups),
                         checkpoint=checkpoint, at_boundary=at_boundary)
    finally:
        for group in groups:
            group.close()
    stats.run_s = time.perf_counter() - t_run
    stats.wall_s = time.perf_counter() - t_start
    stats.sync_s = max(stats.run_s - stats.work_s, 0.0)
    return stats

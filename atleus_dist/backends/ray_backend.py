"""Ray backend: one actor per LP group; the driver computes horizons and routes object refs.

Ray is imported here and nowhere else in the package. The actor logic is the plain
:class:`GroupActor` wrapped with ``ray.remote`` at the edge, so it can be tested without Ray.
Each round is one task per actor returning ``1 + n_groups`` objects: a small summary the driver
fetches (next-event times, earliest send times, counts) and one buffer per destination group,
which stays in the object store and is passed by reference to the destination actor's next task,
so bulk data moves between actors (and nodes) without passing through the driver.
"""

from __future__ import annotations

import time

import numpy as np

from atleus_dist.backends.base import Progress, RunStats, coordinator_loop
from atleus_dist.kernel import ConfigError, LPGroup, RunSpec
from atleus_dist.kernel.lp import total_work

PLACEMENTS = ("spread", "pack")


class GroupActor:
    def __init__(self, spec: RunSpec, g: int) -> None:
        self.group = LPGroup(spec, g)

    def init(self) -> tuple:
        import socket

        return self.group.local_next(), socket.gethostname(), _node_id()

    def step(self, horizons: np.ndarray, *inbound: bytes) -> tuple:
        t0 = time.perf_counter()
        self.group.deliver([b for b in inbound if b])
        res = self.group.advance(horizons)
        work = time.perf_counter() - t0
        nonempty = [bool(b) for b in res.outbound]
        # ops done so far (None: the LPs count nothing), for the progress line's share of ops
        summary = (res.local_next, res.sent_min, res.events, res.messages, work, nonempty, self.group.work_done())
        return (summary, *res.outbound)

    def close(self) -> None:
        self.group.close()


def _strategies(n: int, placement: str) -> list:
    """``spread``: actor g on the g-th alive node (sorted by id, round robin). Ray's own SPREAD
    strategy, and soft node affinity, put zero-CPU actors on one node when a node that has just
    joined is not yet offered for scheduling (seen in CI), so the affinity is hard: a node that
    dies before its actor starts fails the run with Ray's error. ``pack``: Ray's default."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if placement == "pack":
        return ["DEFAULT"] * n
    nodes = sorted(node["NodeID"] for node in ray.nodes() if node.get("Alive"))
    return [NodeAffinitySchedulingStrategy(nodes[g % len(nodes)], soft=False) for g in range(n)]


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def run(spec: RunSpec, progress: Progress | None = None, address: str | None = None,
        placement: str = "spread", num_cpus_per_actor: float = 0.0) -> RunStats:
    if placement not in PLACEMENTS:
        raise ConfigError("placement", f"unknown placement {placement!r}", allowed=", ".join(PLACEMENTS))
    if len(spec.groups) == 1:  # one group: an actor adds a round trip per round and nothing else
        from atleus_dist.backends import inline

        stats = inline.run(spec, progress)
        stats.backend = "ray"
        return stats
    import ray

    t_start = time.perf_counter()
    started_here = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=True)
        else:  # a private local instance bound to 127.0.0.1, never whatever cluster runs here
            from atleus_dist.backends.ray_local import start_private

            start_private(num_cpus=max(2, len(spec.groups)))
        started_here = True
    n = len(spec.groups)
    remote_cls = ray.remote(num_cpus=num_cpus_per_actor)(GroupActor)
    actors = [remote_cls.options(scheduling_strategy=s).remote(spec, g)
              for g, s in enumerate(_strategies(n, placement))]
    stats = RunStats(backend="ray", groups=n)
    try:
        inits = ray.get([a.init.remote() for a in actors])
        local_next = np.empty(spec.n_lps, dtype=np.int64)
        for g, (ln, _host, _node) in enumerate(inits):
            local_next[spec.groups[g]] = ln
        stats.extra["nodes"] = sorted({node for _ln, _h, node in inits})
        stats.extra["actor_nodes"] = [node for _ln, _h, node in inits]
        inbound: list[list] = [[] for _ in range(n)]
        done: list[int | None] = [None] * n  # each actor's ops done after its last round
        stats.setup_s = time.perf_counter() - t_start
        t_run = time.perf_counter()

        def step(horizons: np.ndarray):
            outs = [a.step.options(num_returns=n + 1).remote(horizons, *inbound[g])
                    for g, a in enumerate(actors)]
            summaries = ray.get([o[0] for o in outs])
            sent_min = np.stack([s[1] for s in summaries])
            for v in range(n):
                inbound[v] = [outs[g][1 + v] for g in range(n) if summaries[g][5][v]]
            for g, s in enumerate(summaries):
                local_next[spec.groups[g]] = s[0]
                stats.events += s[2]
                stats.messages += s[3]
                stats.work_s += s[4]
                done[g] = s[6]
            return local_next, sent_min

        coordinator_loop(spec, n, step, local_next.copy(), stats, progress, work=lambda: total_work(done))
        ray.get([a.close.remote() for a in actors])
        stats.run_s = time.perf_counter() - t_run
        stats.sync_s = max(stats.run_s * n - stats.work_s, 0.0)
    finally:
        for a in actors:
            ray.kill(a)
        if started_here:
            ray.shutdown()
    stats.wall_s = time.perf_counter() - t_start
    return stats

"""The peer rounds of :mod:`atleus_dist.backends.ray_rounds` carried by a Ray Compiled Graph.

Measured against the direct TCP connections in ``bench/ray_rounds.py`` (issue 20 item 5); not a
round path of the backend, which keeps the faster (``bench/RESULTS.md``, "Issue 20: cross-node
rounds"). One compiled graph holds ``k`` rounds: every actor's round reads the frames every actor
wrote in the round before through Ray's compiled-graph channels (shared memory on a node, Ray's
transfer between nodes), so the driver takes part once per ``k`` rounds, and the per-round cost is
that of the channels. Ray is imported here, in the backends' ``ray*`` modules only.
"""

from __future__ import annotations

import time

from atleus_dist.backends.base import RunStats
from atleus_dist.backends.ray_rounds import PeerRounds
from atleus_dist.kernel import RunSpec


class GraphActor:
    """A group driven by the compiled graph: ``first`` opens a batch of rounds, ``step`` is one
    exchange and the next window, ``last`` takes the batch's last exchange."""

    def __init__(self, spec: RunSpec, g: int) -> None:
        self.rounds = PeerRounds(spec, g)
        self.t_sync = 0.0

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def first(self, _start) -> list | None:
        r = self.rounds
        out = r.start() if not r.started else (None if r.finished else r.advance())
        self.t_sync = time.perf_counter()
        return out

    def step(self, *frames) -> list | None:
        self._take(frames)
        return None if self.rounds.finished else self.rounds.advance()

    def last(self, *frames) -> dict:
        self._take(frames)
        return self.rounds.summary()

    def _take(self, frames) -> None:
        r = self.rounds
        if any(f is None for f in frames):  # every group finished in the same round
            r.finished = True
            return
        dt = time.perf_counter() - self.t_sync
        r.sync_s += dt
        r.group.add_sync_time(dt)
        r.receive([f[r.g] if f is not None else None for f in frames])
        self.t_sync = time.perf_counter()

    def close(self) -> None:
        self.rounds.close()


def run(spec: RunSpec, rounds_per_execute: int = 16, placement_nodes: list | None = None) -> RunStats:
    """Run ``spec`` on an initialised Ray (one actor per group, actor g on
    ``placement_nodes[g % len]`` if given) through a compiled graph of ``rounds_per_execute``
    rounds."""
    import ray
    from ray.dag import InputNode, MultiOutputNode
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    t_start = time.perf_counter()
    n = len(spec.groups)
    cls = ray.remote(num_cpus=0)(GraphActor)
    opts = [{} if not placement_nodes else
            {"scheduling_strategy": NodeAffinitySchedulingStrategy(placement_nodes[g % len(placement_nodes)], soft=False)}
            for g in range(n)]
    actors = [cls.options(**opts[g]).remote(spec, g) for g in range(n)]
    stats = RunStats(backend="ray-cgraph", groups=n)
    dag = None
    try:
        stats.extra["actor_nodes"] = ray.get([a.node.remote() for a in actors])
        with InputNode() as inp:
            xs = [a.first.bind(inp) for a in actors]
            for _ in range(rounds_per_execute - 1):
                xs = [a.step.bind(*xs) for a in actors]
            dag = MultiOutputNode([a.last.bind(*xs) for a in actors])
        dag = dag.experimental_compile()
        stats.setup_s = time.perf_counter() - t_start
        t_run = time.perf_counter()
        while True:
            sums = ray.get(dag.execute(0))
            if sums[0]["finished"]:
                break
        stats.run_s = time.perf_counter() - t_run
        stats.rounds = sums[0]["rounds"]
        stats.events = sum(s["events"] for s in sums)
        stats.messages = sum(s["messages"] for s in sums)
        stats.work_s = sum(s["work_s"] for s in sums)
        stats.sync_s = sum(s["sync_s"] for s in sums)
        stats.end_time_ps = sums[0]["frontier_ps"]
    finally:
        if dag is not None:
            dag.teardown()
        for a in actors:
            ray.kill(a)
    stats.wall_s = time.perf_counter() - t_start
    return stats

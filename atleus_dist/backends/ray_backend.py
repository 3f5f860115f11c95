"""Ray backend: one actor per LP group, placed by Ray over the nodes; two round paths.

``rounds="peer"`` (the default): Ray places the actors and introduces them; the actors then run
their rounds among themselves over direct TCP connections (:mod:`atleus_dist.backends.ray_rounds`)
and the driver hears from them once per chunk of ~``CHUNK_S`` (progress, the end). A round costs
one exchange between the actors, not a Ray call.

``rounds="actor"``: the driver computes horizons and each round is one task per actor returning
``1 + n_groups`` objects: a small summary the driver fetches (next-event times, earliest send
times, counts) and one buffer per destination group, which stays in the object store and is passed
by reference to the destination actor's next task. A Ray actor round trip per round (~0.7-3 ms,
``bench/ray_rounds.py``); kept as the measured reference.

Ray is imported here and in the other ``ray*`` modules only. The actor logic is the plain
:class:`GroupActor` / :class:`PeerActor`, wrapped with ``ray.remote`` at the edge, so it can be
tested without Ray. Both paths give the same results as every other backend.
"""

from __future__ import annotations

import time

import numpy as np

from atleus_dist.backends.base import Progress, ProgressTicker, RunStats, coordinator_loop
from atleus_dist.backends.ray_rounds import Mesh, PeerRounds
from atleus_dist.kernel import ConfigError, LPGroup, RunSpec
from atleus_dist.kernel.lp import total_work

PLACEMENTS = ("spread", "pack")
ROUND_PATHS = ("peer", "actor")
CHUNK_S = 0.25  # the driver hears from the peer actors this often (progress lines, stop signals)


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


class PeerActor:
    """A group that runs its rounds with the other groups' actors directly (see ray_rounds)."""

    def __init__(self, spec: RunSpec, g: int) -> None:
        self.rounds = PeerRounds(spec, g)
        self.mesh: Mesh | None = None

    def listen(self) -> tuple:
        """Listen on this node's address; (address, host name, node id)."""
        import socket

        import ray

        self.mesh = Mesh(self.rounds.g, self.rounds.n, ray.util.get_node_ip_address())
        return self.mesh.address, socket.gethostname(), _node_id()

    def connect(self, addresses: list, token: bytes) -> None:
        self.mesh.connect(addresses, token)

    def run(self, chunk_s: float) -> dict:
        return self.rounds.run_chunk(self.mesh, chunk_s)

    def close(self) -> None:
        self.rounds.close()
        if self.mesh is not None:
            self.mesh.close()


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
        placement: str = "spread", num_cpus_per_actor: float = 0.0, rounds: str = "peer") -> RunStats:
    """``rounds``: ``peer`` (actors exchange directly; the default) or ``actor`` (a Ray call per
    round, the driver in every round); see the module docstring."""
    if placement not in PLACEMENTS:
        raise ConfigError("placement", f"unknown placement {placement!r}", allowed=", ".join(PLACEMENTS))
    if rounds not in ROUND_PATHS:
        raise ConfigError("rounds", f"unknown round path {rounds!r}", allowed=", ".join(ROUND_PATHS))
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
    remote_cls = ray.remote(num_cpus=num_cpus_per_actor)(PeerActor if rounds == "peer" else GroupActor)
    actors = [remote_cls.options(scheduling_strategy=s).remote(spec, g)
              for g, s in enumerate(_strategies(n, placement))]
    stats = RunStats(backend="ray", groups=n)
    stats.extra["ray_rounds"] = rounds
    try:
        if rounds == "peer":
            _run_peer(ray, actors, stats, progress, t_start)
        else:
            _run_actor(ray, spec, actors, stats, progress, t_start)
    finally:
        for a in actors:
            ray.kill(a)
        if started_here:
            ray.shutdown()
    stats.wall_s = time.perf_counter() - t_start
    return stats


def _run_peer(ray, actors: list, stats: RunStats, progress: Progress | None, t_start: float) -> None:
    import secrets

    infos = ray.get([a.listen.remote() for a in actors])
    stats.extra["nodes"] = sorted({node for _addr, _h, node in infos})
    stats.extra["actor_nodes"] = [node for _addr, _h, node in infos]
    token = secrets.token_bytes(32)
    ray.get([a.connect.remote([addr for addr, _h, _node in infos], token) for a in actors])
    stats.setup_s = time.perf_counter() - t_start
    t_run = time.perf_counter()
    ticker = ProgressTicker(progress)
    while True:
        sums = _gather(ray, [a.run.remote(CHUNK_S) for a in actors])
        lead = sums[0]
        stats.rounds = lead["rounds"]
        stats.end_time_ps = lead["frontier_ps"]
        stats.events = lead["all_events"]
        ticker.tick(stats.rounds, stats.end_time_ps, stats.events, work=lambda: lead["work_done"])
        if lead["finished"]:
            break
    ray.get([a.close.remote() for a in actors])
    stats.run_s = time.perf_counter() - t_run
    stats.events = sum(s["events"] for s in sums)
    stats.messages = sum(s["messages"] for s in sums)
    stats.work_s = sum(s["work_s"] for s in sums)
    stats.sync_s = sum(s["sync_s"] for s in sums)
    stats.extra["last_horizon_ps"] = lead["last_horizon_ps"]
    ticker.tick(stats.rounds, stats.end_time_ps, stats.events, force=True, work=lambda: lead["work_done"])


def _gather(ray, refs: list) -> list:
    """``ray.get(refs)``, but an actor's failure is raised as soon as it is known (its peers stop
    on their own: it closes its connections), and rather than a peer's :class:`SimulationAborted`."""
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        try:
            ray.get(ready[0])
        except Exception as exc:
            errors = [exc]
            for ref in pending:
                try:
                    ray.get(ref, timeout=10)
                except Exception as other:
                    errors.append(other)
            first = next((e for e in errors if "SimulationAborted" not in str(e)), errors[0])
            raise first from None
    return ray.get(refs)


def _run_actor(ray, spec: RunSpec, actors: list, stats: RunStats, progress: Progress | None,
               t_start: float) -> None:
    n = len(actors)
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

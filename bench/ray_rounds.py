"""Cost of a round across two Ray nodes, for each way the actors can exchange (issue 20 item 5).

    python bench/ray_rounds.py [--reps 5] [--empty-rounds 3000] [--paths actor,cgraph,peer]
    python bench/ray_rounds.py --one-node [--reps 5]     # the system case, ray vs local

Starts a two-node ``ray.cluster_utils.Cluster`` on this machine (each node ``num_cpus=1``), puts
group g's actor on node g, and times, side by side (min / median / max over ``--reps`` runs of the
mean wall time per round):

- ``actor``: today's path, one Ray actor call per group per round, the driver in every round;
- ``cgraph``: a Ray Compiled Graph of ``--k`` rounds, the actors reading each other's frames
  through compiled-graph channels (``atleus_dist.backends.ray_cgraph``);
- ``peer``: direct TCP connections between the actors Ray placed (``backends.ray_rounds``);
- ``local`` (if asked for): no Ray, the local backend's two worker processes on shared memory.

Two cases: ``empty`` - two LPs (one per group) with one event every 1000 ps and a 1000 ps
lookahead, nothing sent: the bare exchange and barrier; ``system`` - the 2-chip stub system
(``--set system.chips=2 --set scenario.batch=2 --set scenario.micro_batches=2
--set scenario.seq=32 --transport stub``), a chip per group: its real outboxes. Every path must
agree on rounds, events and messages. Run it under ``flock /work/measure.lock``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atleus_dist.kernel import LogicalProcess, RunSpec  # noqa: E402

SYSTEM_SETS = ["system.chips=2", "scenario.batch=2", "scenario.micro_batches=2", "scenario.seq=32"]


class NullLP(LogicalProcess):
    """One event every 1000 ps, nothing sent (pickled by value: defined in __main__)."""

    def __init__(self, lp_id: int, sink=None) -> None:
        super().__init__(lp_id)
        self.t = 0

    def next_time(self) -> int:
        return self.t

    def receive(self, blocks) -> None:
        pass

    def process(self, horizon_ps: int):
        while self.t < horizon_ps:
            self.t += 1000
            self.events_committed += 1
        return {}


def empty_spec(rounds: int) -> RunSpec:
    return RunSpec(n_lps=2, channels=[(0, 1, 1000), (1, 0, 1000)], end_ps=rounds * 1000,
                   lp_factory=NullLP, groups=[[0], [1]])


def system_spec() -> RunSpec:
    from atleus_dist import api
    from atleus_dist.run.scenario_run import build

    cfg = api.load_config(sets=SYSTEM_SETS, transport="stub", partition="chips")
    return build(cfg, sink_factory=None).spec


def run_path(path: str, spec: RunSpec, nodes: list, k: int):
    from atleus_dist.backends import ray_backend, ray_cgraph

    if path == "cgraph":
        return ray_cgraph.run(spec, rounds_per_execute=k, placement_nodes=nodes)
    if path == "local":  # the reference without Ray: worker processes on shared memory
        from atleus_dist import backends

        st = backends.run(spec, "local")
        st.extra["actor_nodes"] = ["this machine", "both workers"]
        return st
    return ray_backend.run(spec, rounds=path, placement="spread")


def one_node(reps: int) -> None:
    """The system case's round loop (run_s) on ``local`` and on ``ray`` (a private instance on
    this machine, started once: Ray's start-up, seconds, is not a round cost), alternating."""
    from atleus_dist import backends
    from atleus_dist.backends.ray_local import start_private

    start_private(num_cpus=2, log_to_driver=False)
    try:
        runs: dict[str, list] = {"local": [], "ray": []}
        for _rep in range(reps):
            for b in runs:
                st = backends.run(system_spec(), b)
                runs[b].append(st)
        print(f"{'backend':8} {'rounds':>7} {'run_s min':>10} {'median':>8} {'max':>8}  {'us/round':>9}  wall_s median")
        for b, sts in runs.items():
            rs = [s.run_s for s in sts]
            print(f"{b:8} {sts[0].rounds:7,} {min(rs):10.3f} {statistics.median(rs):8.3f} {max(rs):8.3f}  "
                  f"{statistics.median(rs) / sts[0].rounds * 1e6:9.1f}  {statistics.median(s.wall_s for s in sts):.3f}")
        ratio = statistics.median(s.run_s for s in runs["ray"]) / statistics.median(s.run_s for s in runs["local"])
        print(f"ray / local (median run_s): {ratio:.3f}")
    finally:
        import ray

        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--empty-rounds", type=int, default=3000)
    ap.add_argument("--k", type=int, default=16, help="rounds per compiled-graph execution")
    ap.add_argument("--paths", default="actor,cgraph,peer")
    ap.add_argument("--cases", default="empty,system")
    ap.add_argument("--one-node", action="store_true",
                    help="instead: the system case on --backend local and ray on this one node")
    args = ap.parse_args()
    if args.one_node:
        return one_node(args.reps)
    import ray
    from ray.cluster_utils import Cluster

    paths = args.paths.split(",")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    try:
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        nodes = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
        print(f"two-node cluster: {len(nodes)} nodes, ray {ray.__version__}")
        print(f"{'case':7} {'path':7} {'rounds':>7} {'us/round min':>13} {'median':>9} {'max':>9}"
              f"  {'work us/round/group':>20}  events messages")
        for case in args.cases.split(","):
            seen = set()
            for path in paths:
                per_round, work = [], []
                for _rep in range(args.reps):
                    if case == "empty":  # the actor path is ~100x slower: fewer rounds
                        spec = empty_spec(args.empty_rounds if path != "actor" else max(args.empty_rounds // 10, 100))
                    else:
                        spec = system_spec()
                    st = run_path(path, spec, nodes, args.k)
                    if len(set(st.extra.get("actor_nodes", []))) != 2:
                        raise SystemExit(f"{path}: actors not on both nodes: {st.extra.get('actor_nodes')}")
                    per_round.append(st.run_s / st.rounds * 1e6)
                    work.append(st.work_s / st.groups / st.rounds * 1e6)
                    seen.add((case, st.rounds, st.events, st.messages) if case == "system" else (case,))
                print(f"{case:7} {path:7} {st.rounds:7,} {min(per_round):13.1f} {statistics.median(per_round):9.1f} "
                      f"{max(per_round):9.1f}  {statistics.median(work):20.1f}  {st.events} {st.messages}", flush=True)
            if len(seen) != 1:
                raise SystemExit(f"paths disagree: {seen}")
    finally:
        ray.shutdown()
        cluster.shutdown()
        time.sleep(0.5)


if __name__ == "__main__":
    main()

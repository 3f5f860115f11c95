"""Sweep points as Ray tasks on a two-node cluster: points run on both nodes, and the sweep table is
the local backend's, row for row (wall times aside). Small on purpose: 4 stub points."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from atleus_dist.results import read_manifest
from atleus_dist.run.sweep import run_sweep

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]
SWEEP = dict(scenario="gpt2-medium-lora32-s1024", grid=["scenario.seq=32,64", "reram_tiers=4,5"], transport="stub",
             progress=False)


def _rows(table) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in table.to_pylist()]


def test_ray_sweep_on_two_nodes_gives_the_local_table(tmp_path, digest_of):
    from ray.cluster_utils import Cluster

    local = run_sweep(tmp_path / "local", backend="local", workers=2, **SWEEP)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    try:
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        # results through the driver: the general path (the nodes of this cluster share a disk, so
        # `auto` would let the tasks write themselves)
        table = run_sweep(tmp_path / "ray", backend="ray", ray_results="driver", **SWEEP)
        # auto: every node finds the driver's token in DIR, so the tasks write their points themselves
        shared = run_sweep(tmp_path / "auto", backend="ray", grid=["scenario.seq=32", "reram_tiers=4,5"],
                           **{k: v for k, v in SWEEP.items() if k != "grid"})
        alive = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
    finally:
        ray.shutdown()
        cluster.shutdown()
    man = read_manifest(tmp_path / "ray")
    nodes = {p["node"] for p in man["points"]}
    assert len(nodes) == 2 and nodes <= set(alive), f"points not on both nodes: {nodes} of {alive}"
    assert {p["results_via"] for p in man["points"]} == {"driver"}
    assert _rows(table) == _rows(local)
    assert _rows(pq.read_table(tmp_path / "ray" / "sweep.parquet")) == _rows(local)
    assert {p["results_via"] for p in read_manifest(tmp_path / "auto")["points"]} == {"shared"}
    assert _rows(shared) == [r for r in _rows(local) if r["scenario.seq"] == 32]
    assert not (tmp_path / "auto" / ".sweep-token").exists()
    for r in local.to_pylist():  # the files the driver wrote are complete runs
        assert digest_of(tmp_path / "ray" / "points" / r["point"]) == digest_of(tmp_path / "local" / "points" / r["point"])

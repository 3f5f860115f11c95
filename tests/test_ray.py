"""The Ray backend: same digest as inline on two nodes (PHOLD; a 2-chip system with a chip on
each node), and `ray job submit`.

Few and small on purpose: one two-node cluster for the backend checks, one head for the job.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SMALL_PHOLD

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def inline_digest(tmp_path_factory):
    from atleus_dist.cli import main
    from atleus_dist.results import digest

    out = tmp_path_factory.mktemp("ray-ref") / "inline"
    assert main(["phold", *SMALL_PHOLD, "--backend", "inline", "--out", str(out)]) == 0
    return digest(out)[0]


@pytest.fixture(scope="class")
def two_nodes():
    """A two-node ``ray.cluster_utils.Cluster`` on this machine (one CPU each), this process its
    driver; shut down after the class that uses it, before the job test starts its own head."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


SYSTEM = ["run", "--transport", "stub", "--set", "system.chips=2", "--set", "scenario.batch=2",
          "--set", "scenario.micro_batches=2", "--set", "scenario.seq=32", "--quiet"]


class TestTwoNodes:
    def test_phold_gives_the_inline_digest(self, two_nodes, tmp_path, cli, digest_of, inline_digest):
        out = tmp_path / "ray2"
        code, data, err = cli("phold", *SMALL_PHOLD, "--backend", "ray", "--workers", "2",
                              "--out", str(out), "--json")
        assert code == 0, err
        assert data["groups"] == 2 and data["ray_rounds"] == "peer"
        alive = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
        assert len(set(data["actor_nodes"])) == 2, f"actors not spread: {data['actor_nodes']} over {alive}"
        assert digest_of(out) == inline_digest
        # three actors on two nodes: still the same result
        out3 = tmp_path / "ray3"
        code, data, err = cli("phold", *SMALL_PHOLD, "--backend", "ray", "--workers", "3",
                              "--out", str(out3), "--json")
        assert code == 0, err
        assert digest_of(out3) == inline_digest

    def test_actor_call_rounds_give_the_inline_digest(self, two_nodes, tmp_path, inline_digest):
        """The path the peer rounds replaced (a Ray call per round), kept as bench/ray_rounds.py's
        reference: still the same result."""
        from atleus_dist import backends
        from atleus_dist.cli import build_parser
        from atleus_dist.commands import phold
        from atleus_dist.results import digest
        from atleus_dist.run import prepare_out_dir

        out = tmp_path / "actor"
        args = build_parser().parse_args(["phold", *SMALL_PHOLD, "--workers", "2", "--out", str(out)])
        spec = phold.build(args)[1]
        prepare_out_dir(args.out)
        stats = backends.run(spec, "ray", rounds="actor")
        assert stats.extra["ray_rounds"] == "actor" and len(set(stats.extra["actor_nodes"])) == 2
        assert digest(out)[0] == inline_digest

    def test_system_with_a_chip_on_each_node_gives_the_inline_digest(self, two_nodes, tmp_path, cli, digest_of):
        ref = tmp_path / "inline"
        code, _, err = cli(*SYSTEM, "--backend", "inline", "--out", str(ref))
        assert code == 0, err
        out = tmp_path / "ray"
        code, _, err = cli(*SYSTEM, "--backend", "ray", "--partition", "chips", "--out", str(out))
        assert code == 0, err
        fig = json.loads((out / "manifest.json").read_text())["figures"]
        assert fig["groups"] == 2 and fig["ray_rounds"] == "peer"  # a chip per actor, rounds between them
        assert len(set(fig["actor_nodes"])) == 2, fig["actor_nodes"]
        assert digest_of(out) == digest_of(ref)


def test_ray_job_submit_against_a_local_head(tmp_path, inline_digest, digest_of):
    ray_cli = str(BIN / "ray")
    # Ray >= 2.59 protects local clusters with a token; give head and client the same one, and
    # put this interpreter first on PATH so the job's `python` is the one with atleus-dist
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    start = [ray_cli, "start", "--head", "--num-cpus", "2", "--dashboard-host", "127.0.0.1",
             "--port", "6389", "--disable-usage-stats"]
    subprocess.run(start, check=True, capture_output=True, timeout=120, env=env)
    try:
        out = tmp_path / "job"
        cmd = [ray_cli, "job", "submit", "--address", "http://127.0.0.1:8265", "--working-dir", ".",
               "--", "python", "cluster/job.py", "phold", *SMALL_PHOLD, "--workers", "2",
               "--out", str(out)]
        res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert "succeeded" in (res.stdout + res.stderr)
        assert digest_of(out) == inline_digest
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120, env=env)

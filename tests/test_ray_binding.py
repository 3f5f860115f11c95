"""The Ray backend without an address starts a private instance bound to this machine only.

While a PHOLD run is on (its progress callback, called at the end of the rounds while the actors
are alive), every listening socket of the processes the run started - this process, the GCS, the
raylet, its agents and the actors - is listed: each must be on the loopback address, the node's
IP is 127.0.0.1 and there is no dashboard. Ray's default would be the machine's network address
and listeners on every interface (issue 12).
"""

from __future__ import annotations

import pytest

from tests.conftest import SMALL_PHOLD

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]


def loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip.startswith("::ffff:127.") or ip == "::1"


def test_ray_backend_without_address_listens_on_loopback_only(tmp_path):
    import psutil

    from atleus_dist import backends
    from atleus_dist.cli import build_parser, main
    from atleus_dist.commands import phold
    from atleus_dist.results import digest
    from atleus_dist.run import prepare_out_dir

    assert not ray.is_initialized()
    out = tmp_path / "ray"
    args = build_parser().parse_args(["phold", *SMALL_PHOLD, "--workers", "2", "--out", str(out)])
    spec = phold.build(args)[1]  # (config, spec, ...): the spec the `phold` command would run
    prepare_out_dir(args.out)
    seen: dict[tuple, str] = {}
    nodes, dashboards = [], []

    def progress(_rounds, _sim_ps, _events):
        me = psutil.Process()
        procs = {p.pid: p for p in (me, *me.children(recursive=True))}
        for c in psutil.net_connections(kind="inet"):
            if c.status == psutil.CONN_LISTEN and c.pid in procs:
                try:
                    seen[(c.pid, c.laddr.ip, c.laddr.port)] = procs[c.pid].name()
                except psutil.Error:
                    pass
        nodes.extend(n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive"))
        dashboards.append(ray._private.worker.get_dashboard_url())  # noqa: SLF001  (no public getter)

    stats = backends.run(spec, "ray", progress=progress)
    assert not ray.is_initialized()  # the backend shut its instance down
    assert stats.groups == 2 and nodes and set(nodes) == {"127.0.0.1"}
    assert set(dashboards) <= {"", None}, dashboards
    names = set(seen.values())
    # the listing saw the servers that matter (a listing that found nothing would prove nothing)
    assert {"gcs_server", "raylet"} <= names, names
    assert any(n.startswith("ray::") for n in names), names  # agents and actors
    assert sorted(k for k in seen if not loopback(k[1])) == [], seen

    # and the run is the run: its result tables (no manifest: the backend alone ran) are inline's
    ref = tmp_path / "inline"
    assert main(["phold", *SMALL_PHOLD, "--backend", "inline", "--out", str(ref)]) == 0
    assert digest(out)[0] == digest(ref)[0]

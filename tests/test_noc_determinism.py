"""Flit-for-flit identical results (same digest) for every partition and backend."""

import pytest

SMALL = ["noc", "--mesh", "4x4x4", "--traffic", "uniform", "--rate", "0.06", "--warmup", "100",
         "--measure", "300", "--drain", "150", "--seed", "3", "--json", "--quiet"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return tmp_path_factory.mktemp("noc-ref") / "single"


def _run(cli, out, *extra):
    code, data, err = cli(*SMALL, "--out", str(out), *extra)
    assert code == 0, err
    return data


def test_partitions_and_local_backend_give_one_digest(tmp_path, cli, digest_of):
    ref = _run(cli, tmp_path / "single", "--partition", "single", "--backend", "inline")
    assert ref["packets_delivered"] > 100 and not ref["saturated"]
    want = digest_of(tmp_path / "single")
    for part, backend, workers in (("by-tier", "inline", "2"), ("blocks:2x2", "inline", "3"),
                                   ("blocks:2x2", "local", "2"), ("by-tier", "local", "2"),
                                   # one LP per worker: compiled rounds on threads; auto: the planner's
                                   ("blocks:2x1", "local", "2"), ("tiers:0,0,1,1", "local", "2"), ("auto", "local", "2"),
                                   ("map:" + ",".join(str(i % 3) for i in range(64)), "inline", "2")):
        out = tmp_path / f"{part[:16]}-{backend}-{workers}".replace(":", "_").replace(",", "")
        data = _run(cli, out, "--partition", part, "--backend", backend, "--workers", workers)
        assert digest_of(out) == want, (part, backend)
        for key in ("packet_latency_mean", "network_latency_mean", "flit_latency_mean", "accepted_flit_rate",
                    "hops_mean"):
            assert data[key] == ref[key]
        assert data["lps"] > 1 or part == "auto"


def test_other_patterns_are_partition_independent(tmp_path, cli, digest_of):
    for pattern in ("transpose", "hotspot", "neighbor"):
        a = tmp_path / f"{pattern}-a"
        b = tmp_path / f"{pattern}-b"
        _run(cli, a, "--traffic", pattern, "--partition", "single", "--backend", "inline")
        _run(cli, b, "--traffic", pattern, "--partition", "by-tier", "--backend", "inline", "--workers", "2")
        assert digest_of(a) == digest_of(b)


@pytest.mark.ray
@pytest.mark.slow
def test_ray_backend_gives_the_inline_digest(tmp_path, cli, digest_of):
    pytest.importorskip("ray")
    _run(cli, tmp_path / "inline", "--partition", "blocks:2x2", "--backend", "inline")
    _run(cli, tmp_path / "ray", "--partition", "blocks:2x2", "--backend", "ray", "--workers", "2")
    assert digest_of(tmp_path / "ray") == digest_of(tmp_path / "inline")


def test_wide_nis_are_partition_and_backend_independent(tmp_path, cli, digest_of):
    """Three ports per NI (``interface.ni_ports=3``): packets spread over the ports' queues and over
    the ejection ports by router state only, so every partition and backend - including compiled
    rounds (one LP per worker) - gives the single-LP digest; and a width changes the result."""
    wide = ("--set", "interface.ni_ports=3", "--rate", "0.12")
    ref = _run(cli, tmp_path / "single", *wide, "--partition", "single", "--backend", "inline")
    assert ref["packets_delivered"] > 100
    want = digest_of(tmp_path / "single")
    for part, backend, workers in (("blocks:2x2", "inline", "2"), ("by-tier", "local", "2"),
                                   ("blocks:2x1", "local", "2")):
        out = tmp_path / f"{part}-{backend}".replace(":", "_")
        _run(cli, out, *wide, "--partition", part, "--backend", backend, "--workers", workers)
        assert digest_of(out) == want, (part, backend)
    _run(cli, tmp_path / "narrow", "--rate", "0.12", "--partition", "single", "--backend", "inline")
    assert digest_of(tmp_path / "narrow") != want


@pytest.mark.parametrize("noc", [{"interface": {"ni_ports": 2}}, {"interface": {"ni_ports": 2, "mc_ports": 3}}],
                         ids=["ni2-mc-derived", "ni2-mc3"])
def test_chip_with_wide_nis_and_controller_ports_is_partition_independent(mapping, tmp_path, noc):
    """The chip with 2-port core NIs and memory controllers on their own NIs (node n_routers +
    router): the same digest on one LP, cut by tier, in blocks on local workers (compiled rounds)."""
    from atleus_dist import backends
    from atleus_dist.hw.chip import chip_run_spec
    from atleus_dist.results import SinkFactory, digest

    digests = []
    for name, partition, backend, workers in (("single", "single", "inline", 1), ("tier", "by-tier", "inline", 2),
                                              ("blocks", "blocks:2x1", "local", 2)):
        spec, cfg = chip_run_spec(mapping, noc, partition, workers, SinkFactory(str(tmp_path / name)))
        assert cfg["interface"]["mc_ports"] == noc["interface"].get("mc_ports", 2)
        backends.run(spec, backend)
        digests.append(digest(str(tmp_path / name))[0])
    assert len(set(digests)) == 1, digests

"""Compiled rounds (threads, no Python per round) and the planner: the same digest as one LP on
the inline backend for every plan kind and worker count, the plan recorded, one-group plans in
process, and a planner that never picks a plan on one worker or the inline backend."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

from atleus_dist import backends, results
from atleus_dist.backends import threads
from atleus_dist.hw.chip import chip_run_spec
from atleus_dist.hw.noc.config import NocConfig
from atleus_dist.hw.noc.lp import build_spec
from atleus_dist.hw.noc.plan import PARALLEL_BACKENDS, choose, dor_paths, noc_plan
from atleus_dist.hw.noc.topology import build_topology
from atleus_dist.results import SinkFactory
from atleus_dist.results.digest import digest

SMALL = ["noc", "--mesh", "4x4x4", "--traffic", "uniform", "--rate", "0.06", "--warmup", "100",
         "--measure", "300", "--drain", "150", "--seed", "3", "--json", "--quiet"]


def _noc(cli, out, *extra):
    code, data, err = cli(*SMALL, "--out", str(out), *extra)
    assert code == 0, err
    return data


def _figures(run_dir) -> dict:
    with open(os.path.join(run_dir, "manifest.json")) as fh:
        return json.load(fh)["figures"]


def test_noc_compiled_rounds_give_the_single_digest(tmp_path, cli, digest_of):
    _noc(cli, tmp_path / "single", "--partition", "single", "--backend", "inline")
    want = digest_of(tmp_path / "single")
    for part, workers in (("blocks:2x1", "2"), ("blocks:1x2", "2"), ("tiers:0,0,1,1", "2"), ("by-tier", "4"),
                          ("blocks:3x1", "3")):
        out = tmp_path / part.replace(":", "_").replace(",", "")
        data = _noc(cli, out, "--partition", part, "--backend", "local", "--workers", workers)
        assert digest_of(out) == want, part
        fig = _figures(out)
        assert fig["compiled_rounds"] is True and fig["rounds"] > 100, part
        assert fig["mean_cycles_per_window"] > 2.9  # the exact lookahead: 3 cycles, not the link's 2
        assert data["lps"] == int(workers)
        windows = results.read_table(str(out), "windows")
        # rows aggregate rounds: they account for every round of every LP
        assert sum(windows.column("rounds").to_pylist()) == fig["rounds"] * int(workers)


def test_compiled_rounds_handle_scripted_transfers_loopbacks_and_later_cycles(tmp_path):
    from atleus_dist.api import noc

    cfg = NocConfig.from_dict({"topology": "mesh:4x4x2", "traffic": {"rate": 0.03}, "seed": 4,
                               "phases": {"warmup_cycles": 50, "measure_cycles": 900, "drain_cycles": 0}})
    # same-node (loopback), created later than cycle 0 (queued in Python), crossing the cut
    transfers = [(0, 0, 31, 700, 1), (5, 3, 3, 64, 2), (40, 17, 2, 2000, 3), (41, 2, 30, 16, 4),
                 (120, 12, 1, 5000, 5)]
    digests = []
    for name, part, backend, workers in (("a", "single", "inline", 1), ("b", "blocks:2x1", "local", 2),
                                         ("c", "by-tier", "local", 2)):
        noc(dataclasses.replace(cfg, partition=part), backend=backend, workers=workers, out=tmp_path / name,
            transfers=transfers)
        done = results.read_table(str(tmp_path / name), "transfers").to_pydict()
        assert sorted(done["tag"]) == [1, 2, 3, 4, 5]
        digests.append(digest(str(tmp_path / name))[0])
    assert _figures(tmp_path / "b")["compiled_rounds"] is True
    assert len(set(digests)) == 1


def test_groups_with_several_lps_keep_the_generic_worker_processes(tmp_path):
    cfg = NocConfig.from_dict({"topology": "mesh:4x4x4", "partition": "by-tier",
                               "phases": {"warmup_cycles": 20, "measure_cycles": 60, "drain_cycles": 40}})
    spec = build_spec(cfg, 2)
    assert not threads.eligible(spec) and len(spec.groups) == 2
    assert threads.eligible(build_spec(cfg, 4))
    stats = backends.run(spec, "local")
    assert "compiled_rounds" not in stats.extra and stats.rounds > 1


def test_one_group_plans_run_in_this_process(tmp_path):
    cfg = NocConfig.from_dict({"topology": "mesh:4x4x2", "partition": "single",
                               "phases": {"warmup_cycles": 20, "measure_cycles": 60, "drain_cycles": 40}})
    spec = build_spec(cfg, 2, SinkFactory(str(tmp_path / "one")))
    assert len(spec.groups) == 1
    seen = []

    class Probe:
        def __init__(self, inner):
            self.inner = inner

        def __call__(self, lp_id, sink):
            seen.append(os.getpid())
            return self.inner(lp_id, sink)

    stats = backends.run(dataclasses.replace(spec, lp_factory=Probe(spec.lp_factory)), "local")
    assert seen == [os.getpid()] and stats.backend == "local"


def test_the_planner_never_partitions_for_one_worker_or_one_thread():
    cfg = NocConfig.from_dict({"topology": "mesh:8x8x4", "traffic": {"rate": 0.05}})
    for backend, workers in (("inline", 2), ("local", 1), ("ray", 1)):
        assert noc_plan(cfg, workers, backend).partition == "single"
    plan = noc_plan(cfg, 2, "local")
    assert plan.partition != "single" and plan.predicted_speedup >= 1.15
    assert set(plan.candidates) >= {"blocks:2x1", "blocks:1x2", "tiers:0,0,1,1"}
    assert plan.to_meta()["reason"].startswith("predicted")
    # an idle network: rounds cost more than halving nothing saves
    idle = NocConfig.from_dict({"topology": "mesh:2x2x2", "traffic": {"rate": 0.001}})
    assert noc_plan(idle, 2, "local").partition == "single"
    assert "local" in PARALLEL_BACKENDS


def test_dor_paths_visit_manhattan_distance_plus_one_routers():
    topo = build_topology(NocConfig.from_dict({"topology": "mesh:4x3x2"}))
    n = topo.n_routers
    src, dst = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    pair, router = dor_paths(topo, src.ravel(), dst.ravel())
    c = np.asarray(topo.coords)
    manhattan = np.abs(c[src.ravel()] - c[dst.ravel()]).sum(axis=1)
    assert np.array_equal(np.bincount(pair, minlength=n * n), manhattan + 1)
    # each pair's visits run from its source to its destination, one link at a time
    first = np.unique(pair, return_index=True)[1]
    assert np.array_equal(router[first], src.ravel())


def test_balanced_tier_split_wins_when_traffic_sits_in_some_tiers():
    cfg = NocConfig.from_dict({"topology": "mesh:4x4x4"})
    topo = build_topology(cfg)
    c = np.asarray(topo.coords)
    hops = np.zeros(topo.n_routers)
    corner = (c[:, 0] == 0) & (c[:, 1] == 0)  # every block split leaves all the work in one part
    hops[corner] = np.array([3e6, 1e6, 1e6, 1e6])[c[corner, 2]]
    plan = choose(topo, cfg, hops, 1000, 2, "local")
    assert plan.candidates["blocks:2x1"] < 1.01 and plan.candidates["tiers:0,0,1,1"] < 1.51
    assert plan.partition == "tiers:0,1,1,1", plan.candidates


def test_chip_compiled_rounds_give_the_single_digest(mapping, tmp_path):
    spec, _ = chip_run_spec(mapping, {}, "single", 1, SinkFactory(str(tmp_path / "single")))
    backends.run(spec, "inline")
    want = digest(str(tmp_path / "single"))[0]
    for part, workers in (("blocks:2x1", 2), ("tiers:0,0,0,1,1", 2), ("blocks:2x2", 4), ("auto", 2)):
        name = part.replace(":", "_").replace(",", "")
        spec, _ = chip_run_spec(mapping, {}, part, workers, SinkFactory(str(tmp_path / name)), backend="local")
        stats = backends.run(spec, "local")
        assert digest(str(tmp_path / name))[0] == want, part
        if part == "auto":
            assert spec.meta["plan"]["partition"] == spec.meta["partition"]
        else:
            assert stats.extra["compiled_rounds"] is True and stats.rounds > 100, part


def test_cut_lookahead_is_the_router_pipeline_for_flits_and_the_credit_delay_for_credits():
    from atleus_dist.hw.noc.partition import channels, partition_map

    for router, planar, want in (({}, 1, 3), ({"credit_delay_cycles": 0}, 1, 2), ({"sw_alloc_delay_cycles": 2}, 1, 4),
                                 ({"crossbar_delay_cycles": 3}, 2, 5)):
        cfg = NocConfig.from_dict({"topology": "mesh:4x4x2", "router": router, "planar": {"latency_cycles": planar},
                                   "tsv": {"latency_cycles": planar}})
        topo = build_topology(cfg)
        rc = cfg.router
        flit = rc.sw_alloc_delay_cycles + rc.crossbar_delay_cycles + 1 + planar - 1
        credit = rc.sw_alloc_delay_cycles + planar + rc.credit_delay_cycles
        assert min(flit, credit) == want
        chans = channels(topo, partition_map("blocks:2x1", topo), 1000, rc)
        assert {la for _s, _d, la in chans} == {want * 1000}
        assert {la for _s, _d, la in channels(topo, partition_map("blocks:2x1", topo), 1000)} == {(planar + 1) * 1000}


def test_wider_lookahead_keeps_digests_under_other_pipelines(tmp_path, cli, digest_of):
    extra = ["--credit-delay", "0", "--sw-alloc-delay", "2", "--planar-latency", "2"]
    _noc(cli, tmp_path / "a", "--partition", "single", "--backend", "inline", *extra)
    for part, backend, workers in (("blocks:2x1", "local", "2"), ("by-tier", "inline", "2"), ("by-tier", "local", "2")):
        out = tmp_path / f"{part}-{backend}".replace(":", "_")
        _noc(cli, out, "--partition", part, "--backend", backend, "--workers", workers, *extra)
        assert digest_of(out) == digest_of(tmp_path / "a"), (part, backend)


def test_an_lp_failing_in_its_thread_stops_the_others(tmp_path, monkeypatch):
    from atleus_dist.hw.noc.lp import NocRegionLP

    cfg = NocConfig.from_dict({"topology": "mesh:4x4x2", "partition": "blocks:2x1", "traffic": {"rate": 0.05},
                               "phases": {"warmup_cycles": 50, "measure_cycles": 3000, "drain_cycles": 0}})
    spec = build_spec(cfg, 2, transfers=((200, 3, 12, 64, 1),))  # router 3 is in LP 1: a Python window there
    real = NocRegionLP.python_window

    def fail(self, horizon_ps):
        if self.lp_id == 1:
            raise RuntimeError("boom in LP 1")
        return real(self, horizon_ps)

    monkeypatch.setattr(NocRegionLP, "python_window", fail)
    with pytest.raises(RuntimeError, match="boom in LP 1"):
        backends.run(spec, "local")

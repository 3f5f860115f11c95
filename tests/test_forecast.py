"""Earliest-output forecasts of the compiled rounds (hw/noc/forecast.py, engine_rounds.forecast,
compiled_sync.horizon_forecast): the route tables against closed forms of dimension-order routes,
and runs whose windows the forecasts widen (fewer rounds) with the digest of one LP."""

from __future__ import annotations

import dataclasses

import numpy as np

from atleus_dist import backends, results
from atleus_dist.hw.chip import chip_run_spec
from atleus_dist.hw.noc import forecast
from atleus_dist.hw.noc.config import NocConfig
from atleus_dist.hw.noc.lp import CompiledRounds, build_spec
from atleus_dist.hw.noc.partition import partition_map
from atleus_dist.hw.noc.topology import build_topology
from atleus_dist.results import SinkFactory
from atleus_dist.results.digest import digest

NEVER = np.iinfo(np.int64).max


def _tables(cfg, part, lp_id):
    topo = build_topology(cfg)
    lp = partition_map(part, topo)
    rids = np.flatnonzero(lp == lp_id)
    return topo, rids, forecast.build(topo, lp, rids, lp_id, cfg.router)


def test_a_route_reaches_a_block_cut_after_its_x_hops_to_the_boundary():
    # blocks:2x1 of a 4x4x2 mesh: LP 0 holds x = 0, 1; X is routed first, every hop is
    # SAD + CB + BUSY + LAT - 1 = 1 + 1 + 1 + 1 - 1 = 3 cycles from grant to the next read
    cfg = NocConfig.from_dict({"topology": "mesh:4x4x2"})
    topo, rids, t = _tables(cfg, "blocks:2x1", 0)
    c = np.asarray(topo.coords)
    for li, r in enumerate(rids):
        for d in range(topo.n_routers):
            if c[d, 0] >= 2:
                assert t.path[li, d] == 3 * (2 - c[r, 0]) and t.to_lp[li, d] == 1, (r, d)
            else:
                assert t.path[li, d] == NEVER and t.to_lp[li, d] == -1, (r, d)
        assert t.min_path[li] == 3 * (2 - c[r, 0])
    # credits leave only from the input ports fed across the cut: x = 1, port +x (0); SAD + LAT + CD = 4
    P = topo.n_ports
    cut_ports = [(li, ip) for li in range(len(rids)) for ip in range(P) if t.cred_lp[li * P + ip] >= 0]
    assert cut_ports == [(li, 0) for li, r in enumerate(rids) if c[r, 0] == 1]
    assert all(t.cred_cycles[li * P + 0] == 4 for li, _ in cut_ports)


def test_a_route_to_another_tier_counts_its_planar_hops_then_the_tsv():
    # tiers:0,1: Z is routed last, so a flit crosses after |dx| + |dy| planar hops and one TSV hop
    cfg = NocConfig.from_dict({"topology": "mesh:4x4x2", "tsv": {"latency_cycles": 3}})
    topo, rids, t = _tables(cfg, "tiers:0,1", 0)
    c = np.asarray(topo.coords)
    tsv = 1 + 1 + int(topo.busy_cycles[rids[0], 4]) + 3 - 1
    for li, r in enumerate(rids):
        for d in np.flatnonzero(c[:, 2] == 1):
            planar = np.abs(c[r, :2] - c[d, :2]).sum()
            assert t.path[li, d] == 3 * planar + tsv, (r, d)


def _noc_rounds(cfg, tmp_path, name, transfers, forecast_on, monkeypatch):
    monkeypatch.setattr(CompiledRounds, "forecast", forecast_on)
    out = tmp_path / name
    spec = build_spec(cfg, 2, SinkFactory(str(out)), transfers=transfers)
    stats = backends.run(spec, "local")
    assert stats.extra["compiled_rounds"] is True
    return stats.rounds, digest(str(out))[0]


def test_forecasts_widen_windows_when_traffic_is_far_from_the_cut(tmp_path, monkeypatch):
    # long transfers inside LP 0 and one that crosses late: the cut sees nothing most of the time
    cfg = NocConfig.from_dict({"topology": "mesh:8x4x1", "traffic": {"rate": 0.0}, "partition": "blocks:2x1",
                               "phases": {"warmup_cycles": 0, "measure_cycles": 3000, "drain_cycles": 0}})
    transfers = ((0, 0, 3, 20000, 1), (0, 8, 11, 20000, 2), (900, 1, 7, 4000, 3), (10, 28, 31, 8000, 4))
    backends.run(dataclasses.replace(build_spec(dataclasses.replace(cfg, partition="single"), 1,
                                                SinkFactory(str(tmp_path / "one")), transfers=transfers)), "inline")
    want = digest(str(tmp_path / "one"))[0]
    plain, d_plain = _noc_rounds(cfg, tmp_path, "plain", transfers, False, monkeypatch)
    wide, d_wide = _noc_rounds(cfg, tmp_path, "wide", transfers, True, monkeypatch)
    assert d_plain == want and d_wide == want
    assert wide < plain / 2, (wide, plain)
    done = results.read_table(str(tmp_path / "wide"), "transfers").to_pydict()
    assert sorted(done["tag"]) == [1, 2, 3, 4]


def test_chip_forecasts_keep_the_single_digest_with_fewer_rounds(mapping, tmp_path, monkeypatch):
    spec, _ = chip_run_spec(mapping, {}, "single", 1, SinkFactory(str(tmp_path / "single")))
    backends.run(spec, "inline")
    want = digest(str(tmp_path / "single"))[0]
    for part in ("tiers:0,0,0,0,1", "blocks:2x1"):
        rounds = []
        for on in (False, True):
            monkeypatch.setattr(CompiledRounds, "forecast", on)
            name = f"{part}-{on}".replace(":", "_").replace(",", "")
            spec, _ = chip_run_spec(mapping, {}, part, 2, SinkFactory(str(tmp_path / name)), backend="local")
            stats = backends.run(spec, "local")
            assert digest(str(tmp_path / name))[0] == want, (part, on)
            rounds.append(stats.rounds)
        assert rounds[1] < rounds[0], (part, rounds)


def test_without_forecasts_the_horizon_is_the_generic_one():
    from atleus_dist.kernel.channels import shortest_paths
    from atleus_dist.kernel.compiled_sync import H_SENT, head_words, horizon_forecast, horizon_of

    rng = np.random.default_rng(5)
    for n in (2, 3, 4):
        for _ in range(50):
            la = np.where(rng.random((n, n)) < 0.7, rng.integers(1, 9, (n, n)) * 1000, NEVER).astype(np.int64)
            dist = shortest_paths(la)
            nextv = np.where(rng.random(n) < 0.8, rng.integers(0, 50, n) * 1000, NEVER).astype(np.int64)
            insent = np.where(rng.random(n) < 0.5, rng.integers(0, 50, n) * 1000, NEVER).astype(np.int64)
            nxt = np.minimum(nextv, insent)
            head = np.zeros((2, n, head_words(n)), dtype=np.int64)
            for i in range(n):
                want = horizon_of(i, nxt, dist, 10**9, NEVER)
                assert horizon_forecast(i, head, 0, nextv, insent, la, dist, 10**9, NEVER, nxt) == want
                # a forecast never narrows a window
                head[0, :, H_SENT + 3 * n:H_SENT + 4 * n] = rng.integers(0, 80, (n, n)) * 1000
                assert horizon_forecast(i, head, 0, nextv, insent, la, dist, 10**9, NEVER, nxt) >= want
                head[0] = 0


def test_forecasts_hold_on_scattered_regions_whose_routes_leave_and_come_back(tmp_path, monkeypatch):
    # a random map: routes leave a region, cross others and re-enter it - the forecast names only
    # the first LP a route enters; what that LP sends back is the horizon's lookahead paths
    rng = np.random.default_rng(11)
    lp = rng.integers(0, 3, 32)
    lp[:3] = [0, 1, 2]
    part = "map:" + ",".join(str(int(x)) for x in lp)
    cfg = NocConfig.from_dict({"topology": "mesh:4x4x2", "traffic": {"rate": 0.005}, "seed": 9,
                               "phases": {"warmup_cycles": 50, "measure_cycles": 400, "drain_cycles": 200}})
    transfers = ((0, 0, 31, 3000, 1), (30, 17, 2, 900, 2), (60, 5, 26, 2000, 3))
    digests, rounds = [], []
    for name, p, workers, backend, on in (("one", "single", 1, "inline", True), ("off", part, 3, "local", False),
                                          ("on", part, 3, "local", True)):
        monkeypatch.setattr(CompiledRounds, "forecast", on)
        spec = build_spec(dataclasses.replace(cfg, partition=p), workers, SinkFactory(str(tmp_path / name)),
                          transfers=transfers)
        stats = backends.run(spec, backend)
        digests.append(digest(str(tmp_path / name))[0])
        rounds.append(stats.rounds)
    assert stats.extra["forecast_gain_cycles"] > 1  # they ran, and widened the others' windows
    assert rounds[2] < rounds[1], rounds
    assert len(set(digests)) == 1

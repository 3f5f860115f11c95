"""The transfer API the compute tiers use: Region.transfer / take_completed / next_cycle, across
regions (LPs), partitions and backends."""

import numpy as np
import pytest

from atleus_dist.api import noc
from atleus_dist.hw.noc.config import NocConfig, PhaseConfig, TrafficConfig
from atleus_dist.hw.noc.region import Region
from atleus_dist.hw.noc.topology import build_topology
from atleus_dist.results import read_table

from tests.test_noc_zero_load import closed_form

IDLE = dict(traffic=TrafficConfig(rate=0.0), phases=PhaseConfig(warmup_cycles=0, measure_cycles=600, drain_cycles=0))


def expected_done(cfg, topo, cycle, src, dest, nbytes):
    """Idle network, 1-cycle switch allocation: the packets leave back to back, one flit per cycle,
    so the last packet's head is injected (flits - its size) cycles after ``cycle``."""
    ic = cfg.interface
    flits = max(1, -(-nbytes * 8 // ic.flit_bits))
    last = flits % ic.packet_flits or ic.packet_flits
    return cycle + (flits - last) + closed_form(cfg, topo, src, dest, last)


def completions(out):
    t = read_table(out, "transfers")
    return dict(zip(t.column("tag").to_pylist(), t.column("done_cycle").to_pylist()))


@pytest.mark.parametrize("nbytes", [16, 16 * 4, 16 * 10, 1000])
def test_single_transfer_across_regions_matches_closed_form(tmp_path, nbytes):
    cfg = NocConfig(**IDLE)
    topo = build_topology(cfg)
    src, dest, cycle, tag = 1, 62, 7, 1 << 40  # tier 0 -> tier 3: crosses every by-tier cut
    want = expected_done(cfg, topo, cycle, src, dest, nbytes)
    for part, backend, workers in (("single", "inline", 1), ("by-tier", "inline", 2), ("blocks:2x2", "inline", 2),
                                   ("by-tier", "local", 2)):
        cfg_p = NocConfig(partition=part, **IDLE)
        out = tmp_path / f"{part}-{backend}".replace(":", "_")
        noc(cfg_p, out=out, backend=backend, workers=workers, transfers=((cycle, src, dest, nbytes, tag),))
        assert completions(out) == {tag: want}, (part, backend)


def test_concurrent_transfers_same_cycles_on_every_backend(tmp_path):
    rng = np.random.default_rng(5)
    transfers = []
    for tag in range(40):
        src, dest = (int(x) for x in rng.integers(0, 64, 2))
        transfers.append((int(rng.integers(0, 120)), src, dest, int(rng.integers(1, 3000)), 1000 + tag))
    transfers.append((30, 9, 9, 512, 7))  # loopback: never enters the network
    base = dict(traffic=TrafficConfig(rate=0.03), phases=PhaseConfig(warmup_cycles=50, measure_cycles=900, drain_cycles=0),
                seed=4)
    ref = None
    for part, backend, workers in (("single", "inline", 1), ("by-tier", "inline", 2), ("blocks:2x2", "local", 2)):
        out = tmp_path / f"{part}-{backend}".replace(":", "_")
        noc(NocConfig(partition=part, **base), out=out, backend=backend, workers=workers, transfers=tuple(transfers))
        got = completions(out)
        if ref is None:
            ref = got
            assert sorted(got) == sorted(t[4] for t in transfers)  # every transfer completed
            assert got[7] == 30 + NocConfig().interface.local_latency_cycles
            cfg = NocConfig(**base)
            topo = build_topology(cfg)
            for c, s, d, n, tag in transfers:
                if s != d:  # never earlier than alone on an idle network
                    assert got[tag] >= expected_done(cfg, topo, c, s, d, n)
        assert got == ref, (part, backend)


def test_region_transfer_bookkeeping():
    cfg = NocConfig(**IDLE)
    topo = build_topology(cfg)
    reg = Region(cfg, topo, np.arange(64), np.zeros(64, dtype=np.int64), 0)
    assert reg.next_cycle() >= cfg.end_cycle  # no traffic
    reg.transfer(50, 3, 40, 16 * 9, tag=11)  # due later: held until cycle 50
    reg.transfer(20, 5, 5, 64, tag=12)  # loopback
    done = 20 + cfg.interface.local_latency_cycles
    assert reg.next_cycle() == done  # the loopback's completion is the next event
    reg.run(done)
    assert reg.take_completed()[0].size == 0
    reg.run(done + 1)
    tags, cycles = reg.take_completed()
    assert tags.tolist() == [12] and cycles.tolist() == [done]
    assert reg.next_cycle() == 50
    reg.run(cfg.end_cycle)
    tags, cycles = reg.take_completed()
    assert tags.tolist() == [11] and cycles.tolist() == [expected_done(cfg, topo, 50, 3, 40, 16 * 9)]
    assert reg.take_completed()[0].size == 0  # reported once
    with pytest.raises(ValueError):
        reg.transfer(10, 3, 40, 16, tag=13)  # before the region's time
    with pytest.raises(ValueError):
        reg.transfer(reg.cycle, 3, 64, 16, tag=14)  # no such node


def test_stop_on_completion_returns_after_each_completing_cycle():
    cfg = NocConfig(traffic=TrafficConfig(rate=0.02), phases=PhaseConfig(warmup_cycles=0, measure_cycles=600,
                                                                          drain_cycles=0))
    topo = build_topology(cfg)
    plan = [(10, 0, 63, 640, 1), (12, 5, 20, 64, 2), (40, 7, 7, 16, 3), (41, 60, 1, 200, 4)]

    def region():
        reg = Region(cfg, topo, np.arange(64), np.zeros(64, dtype=np.int64), 0)
        for c, s, d, n, tag in plan:
            reg.transfer(c, s, d, n, tag=tag)
        return reg

    ref = region()
    ref.run(cfg.end_cycle)
    want = dict(zip(*(a.tolist() for a in ref.take_completed())))
    assert sorted(want) == [1, 2, 3, 4]
    reg, got = region(), {}
    while reg.cycle < cfg.end_cycle:
        reg.run(cfg.end_cycle, stop_on_completion=True)
        tags, cycles = reg.take_completed()
        if reg.cycle < cfg.end_cycle:
            assert len(tags) and int(cycles.max()) == reg.cycle - 1  # stopped right after the cycle
        got.update(zip(tags.tolist(), cycles.tolist()))
    assert got == want
    assert reg.nis.packets and sum(len(p["pkt"]) for p in reg.nis.packets) == sum(len(p["pkt"]) for p in ref.nis.packets)

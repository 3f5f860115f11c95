"""Zero-load latency of single packets equals the closed form of the configured pipeline."""

import numpy as np
import pytest

from atleus_dist.hw.noc.config import (InterfaceConfig, NocConfig, PhaseConfig, PlanarLink, RouterConfig,
                                       TrafficConfig, TsvLink)
from atleus_dist.hw.noc.region import Region
from atleus_dist.hw.noc.topology import build_topology


def closed_form(cfg, topo, src, dst, flits):
    """Tail ejection minus head injection: inject + per-router pipeline + links + serialisation."""
    r, ic = cfg.router, cfg.interface
    d = np.abs(topo.coords[src] - topo.coords[dst])
    routers = int(d.sum()) + 1
    pipeline = r.routing_delay_cycles + r.vc_alloc_delay_cycles + r.sw_alloc_delay_cycles + r.crossbar_delay_cycles
    links = int(d[0] + d[1]) * cfg.planar.latency_cycles + int(d[2]) * cfg.tsv.latency_cycles
    return (ic.local_latency_cycles + 1) + routers * pipeline + links + ic.local_latency_cycles \
        + (flits - 1) * r.sw_alloc_delay_cycles


def one_packet(cfg, src, dst, flits):
    topo = build_topology(cfg)
    n = topo.n_routers
    reg = Region(cfg, topo, np.arange(n), np.zeros(n, dtype=np.int64), 0)
    reg.nis.enqueue(5, src, dst, flits)
    reg.run(cfg.end_cycle)
    (p,) = reg.nis.packets
    assert len(p["pkt"]) == 1
    return int(p["atime_cycle"][0] - p["itime_cycle"][0]), int(p["hops"][0]), topo


PIPELINES = [(0, 1, 1, 1), (1, 1, 1, 1), (2, 2, 1, 1), (0, 1, 2, 2), (3, 1, 1, 2)]
PAIRS = [(0, 0), (0, 1), (0, 3), (0, 63), (5, 42), (63, 16), (21, 22)]


@pytest.mark.parametrize("rd,va,sa,cb", PIPELINES)
@pytest.mark.parametrize("src,dst", PAIRS)
def test_zero_load_matches_closed_form(rd, va, sa, cb, src, dst):
    cfg = NocConfig(
        router=RouterConfig(routing_delay_cycles=rd, vc_alloc_delay_cycles=va, sw_alloc_delay_cycles=sa,
                            crossbar_delay_cycles=cb),
        planar=PlanarLink(latency_cycles=2), tsv=TsvLink(latency_cycles=3),
        traffic=TrafficConfig(rate=0.0), phases=PhaseConfig(warmup_cycles=0, measure_cycles=400, drain_cycles=0))
    for flits in (1, 4):
        lat, hops, topo = one_packet(cfg, src, dst, flits)
        assert lat == closed_form(cfg, topo, src, dst, flits)
        assert hops == int(np.abs(topo.coords[src] - topo.coords[dst]).sum()) + 1


def test_narrow_tsv_serialises():
    base = dict(traffic=TrafficConfig(rate=0.0), phases=PhaseConfig(warmup_cycles=0, measure_cycles=400, drain_cycles=0),
                interface=InterfaceConfig(flit_bits=128))
    wide, _, _ = one_packet(NocConfig(tsv=TsvLink(width_bits=128), **base), 0, 48, 4)
    narrow, _, _ = one_packet(NocConfig(tsv=TsvLink(width_bits=32), **base), 0, 48, 4)
    assert narrow > wide  # a 4x narrower TSV bundle slows packets crossing tiers


def test_transfer_packetises():
    cfg = NocConfig(traffic=TrafficConfig(rate=0.0), phases=PhaseConfig(warmup_cycles=0, measure_cycles=400, drain_cycles=0))
    topo = build_topology(cfg)
    reg = Region(cfg, topo, np.arange(64), np.zeros(64, dtype=np.int64), 0)
    keys = reg.transfer(0, 3, 40, nbytes=16 * 9)  # 9 flits of 128 bits -> packets 4, 4, 1
    reg.run(cfg.end_cycle)
    flits = np.concatenate([p["flits"] for p in reg.nis.packets])
    assert len(keys) == 3 and sorted(flits.tolist()) == [1, 4, 4]

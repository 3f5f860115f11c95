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


# --- the NI's width: interface.ni_ports injection/ejection channels of one flit a cycle each --------

def _region(ni_ports, mc_ports=None, **router):
    cfg = NocConfig(interface=InterfaceConfig(ni_ports=ni_ports, mc_ports=mc_ports),
                    router=RouterConfig(**router), traffic=TrafficConfig(rate=0.0),
                    phases=PhaseConfig(warmup_cycles=0, measure_cycles=20000, drain_cycles=0))
    topo = build_topology(cfg)
    return cfg, topo, Region(cfg, topo, np.arange(topo.n_routers), np.zeros(topo.n_routers, dtype=np.int64), 0)


def _flits_per_cycle(reg):
    p = {k: np.concatenate([c[k] for c in reg.nis.packets]) for k in reg.nis.packets[0]}
    return int(p["flits"].sum()), int(p["atime_cycle"].max() - p["itime_cycle"].min())


NEIGHBOURS = (22, 20, 25, 17)  # of router 21 = (1, 1, 1): +x, -x, +y, -y, one link each


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_one_node_injects_width_flits_a_cycle(width):
    """Node 21 streams 4-flit packets round-robin to ``width`` neighbours, each behind its own
    link (1 flit a cycle): the NI's ports are the only limit, so F flits take F / width cycles
    plus one packet's zero-load latency (closed form above) - within one cycle per 400 packets."""
    cfg, topo, reg = _region(width)
    n = 400
    for _ in range(n):
        for d in NEIGHBOURS[:width]:
            reg.transfer(0, 21, d, 64)  # one 4-flit packet
    reg.run(cfg.end_cycle)
    flits, span = _flits_per_cycle(reg)
    assert flits == 4 * n * width
    zero_load = closed_form(cfg, topo, 21, 22, 4)
    assert flits / width <= span <= flits / width + zero_load


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_one_node_ejects_width_flits_a_cycle(width):
    """The mirror: ``width`` neighbours stream to node 21, which ejects ``width`` flits a cycle.
    Without wait_for_tail_credit (BookSim2's default): with it, 4 VCs per ejection port are
    released a credit round trip late and 3-4 ports reach ~75% (their VCs, not the NI, limit).
    Three streams over three ports reach ~2.5: the separable input-first allocator picks one VC
    per input port before the outputs choose, so an ejection port idles when its only requesters
    lost at their inputs (measured: 1604/1592/1604 flits per port, all busy ~83% of the span)."""
    cfg, topo, reg = _region(width, wait_for_tail_credit=False)
    n = 400
    for s in NEIGHBOURS[:width]:
        reg.transfer(0, s, 21, 64 * n)
    reg.run(cfg.end_cycle)
    flits, span = _flits_per_cycle(reg)
    assert flits == 4 * n * width
    slack = closed_form(cfg, topo, 22, 21, 4) if width != 3 else flits / width / 4
    assert flits / width <= span <= flits / width + slack


def test_width_one_is_one_flit_a_cycle_whatever_the_destinations():
    cfg, topo, reg = _region(1)
    for _ in range(100):
        for d in NEIGHBOURS:
            reg.transfer(0, 21, d, 64)
    reg.run(cfg.end_cycle)
    flits, span = _flits_per_cycle(reg)
    assert span >= flits  # one port: never more than one flit a cycle


@pytest.mark.parametrize("ni_ports,mc_ports", [(2, None), (1, 2), (3, 1)])
def test_zero_load_does_not_depend_on_the_ports(ni_ports, mc_ports):
    """More local ports add channels, not pipeline stages: one packet's latency is the closed form,
    to a core's NI and to a memory controller's (node n_routers + router)."""
    cfg, topo, reg = _region(ni_ports, mc_ports)
    for src, dst in ((0, 63), (5, 42), (21, 22)):
        cfg, topo, reg = _region(ni_ports, mc_ports)
        reg.transfer(5, src, dst, 64)
        if mc_ports:
            reg.transfer(5, src + 1, topo.n_routers + dst, 64)  # to the memory controller
        reg.run(cfg.end_cycle)
        p = {k: np.concatenate([c[k] for c in reg.nis.packets]) for k in reg.nis.packets[0]}
        for s, lat in zip(p["src"].tolist(), (p["atime_cycle"] - p["itime_cycle"]).tolist()):
            assert lat == closed_form(cfg, topo, s, dst, 4)
        # the table names the node: the router for its core's NI, n_routers + router for its controller's
        sent = [(src, dst)] + ([(src + 1, topo.n_routers + dst)] if mc_ports else [])
        assert sorted(zip(p["src"].tolist(), p["dest"].tolist())) == sorted(sent)
        # per-node statistics: each NI counts the 4 flits (64 bytes / 128-bit flits) it ejected, the
        # controller's never added to its router's core's
        acc = np.zeros(topo.n_routers * reg.nis.nn, dtype=np.int64)
        acc[[dst * reg.nis.nn + (n >= topo.n_routers) for _s, n in sent]] = 4
        assert reg.nis.acc_flits.tolist() == acc.tolist()


def test_memory_controller_and_core_of_one_router_do_not_share_a_port():
    """Router 21's core and its memory controller each stream 100 packets to a neighbour at once:
    with their own NIs (mc_ports=1) both finish in ~400 cycles, sharing one (mc_ports=0: the
    controller is the core's NI, node 21) the two streams take ~800."""
    spans = {}
    for mc in (0, 1):
        cfg, topo, reg = _region(1, mc)
        mc_node = topo.n_routers + 21 if mc else 21
        for _ in range(100):
            reg.transfer(0, 21, 22, 64)
            reg.transfer(0, mc_node, 20, 64)
        reg.run(cfg.end_cycle)
        spans[mc] = _flits_per_cycle(reg)
    assert spans[0][0] == spans[1][0] == 800
    assert spans[0][1] >= 800 and spans[1][1] <= 400 + closed_form(cfg, topo, 21, 22, 4)


def test_a_core_and_its_routers_memory_controller_exchange_through_the_router():
    """Core NI -> memory-controller NI at one router is a transfer (one router), not a loopback."""
    cfg, topo, reg = _region(1, 1)
    reg.transfer(0, 21, topo.n_routers + 21, 64, tag=7)
    reg.run(cfg.end_cycle)
    (p,) = reg.nis.packets
    assert p["hops"].tolist() == [1]
    assert int(p["atime_cycle"][0] - p["itime_cycle"][0]) == closed_form(cfg, topo, 21, 21, 4)

"""The HBM microbenchmark (``atleus-dist hbm-bench``): stream bytes between the HBM's memory ports
and cores over the flit-level NoC and compare what arrives with what the path allows.

Reads: ``nbytes`` from address 0, interleaved over the channels (:meth:`Hbm2.port_stripes` gives
each port its bytes and bus time); each port's share leaves in ``request_bytes`` requests, all
issued at time 0, request j ready when the channel model has streamed it (access latency + its
share of the port's bus time: the channels are pipelined servers, accesses overlap), and goes as
a scripted NoC transfer to its partner reader (:func:`partner`), so each channel feeds its own
cores and no reader's ejection is shared by more ports than it must be.
Writes, the mirror: each writer's ``nbytes / K`` leave at time 0 in requests dealt round the
ports whose partner it is (:func:`partner`; with K = P each writer owns one channel's blocks - a
cyclic layout that matches the interleave - rather than every writer crossing the mesh to every
port, which XY routing turns into link conflicts: 51% of the bound measured, against 99.7%); a
port writes what arrives, in arrival order, back to back on its bus.

Readers / writers are the routers nearest each port in turn (tier hops count as hops), never a
port's own router. Each port's data enter and leave the NoC at its memory controller's own NI
(``interface.mc_ports`` local ports; 0: the router's core NI). ``achieved_bytes_per_s`` = bytes /
(time the last byte is delivered: at the reader for reads, on the channel's bus for writes);
``bound_bytes_per_s`` (:func:`path_bound`) = the bytes over the longest time any resource needs for
its share: the memory at its peak, each controller's NI (injection for reads, ejection for
writes) and each core's NI at one ``interface.flit_bits`` flit per cycle per port
(``interface.mc_ports`` ports for a controller, ``ni_ports`` for a core), each link on the X-Y-Z
paths at one flit a cycle; ``bound_by`` names which. With the default (one port per core, two per
controller) that is min(memory peak, ports x 2 x 16 GB/s, cores x 16 GB/s) unless paths share
links.
Knows nothing of argument parsing or terminal output.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import types
from fractions import Fraction

from atleus_dist import backends
from atleus_dist.hw.chip import chip_noc_config
from atleus_dist.hw.hbm import Hbm2
from atleus_dist.hw.noc.config import ChipPhases, TrafficConfig
from atleus_dist.hw.noc.lp import build_spec
from atleus_dist.hw.noc.topology import build_topology
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.results import SinkFactory, read_table


def _dor_links(xyz, a: int, b: int) -> set[tuple[tuple[int, ...], int]]:
    """The links (router coordinates, dimension * 2 + direction) of the X-Y-Z path a -> b."""
    cur, end, links = list(xyz(a)), xyz(b), set()
    for d in range(3):
        while cur[d] != end[d]:
            step = 1 if end[d] > cur[d] else -1
            links.add((tuple(cur), 2 * d + (step < 0)))
            cur[d] += step
    return links


def nearest_cores(lay, ports: list[int], k: int, port_width: int = 1) -> list[int]:
    """``k`` routers, never a port's. k >= ports: for port 0, then port 1, ... round the ports
    again until k are chosen, the free router whose pair with the port is least loaded at its
    busiest resource (pairs on each link of the paths to and from the port, one flit a cycle
    each, and on the port's NI, ``port_width`` flits a cycle), then the nearest, then the lowest
    id - so a port's second core is not behind the TSV of its first when the port's NI could
    feed both. k < ports: the nearest to ports 0, P/k, 2P/k, ... (core i then serves the block of
    ports next to it, see :func:`partner`)."""
    dims = lay.dims

    def xyz(r):
        return r % dims[0], (r // dims[0]) % dims[1], r // (dims[0] * dims[1])

    taken = set(ports)
    free = [r for r in range(lay.n_routers) if r not in taken]
    if k > len(free):
        raise ConfigError("readers", f"{k} cores, but only {len(free)} routers hold no HBM port",
                          allowed=f"1..{len(free)}")
    out: list[int] = []
    pairs: dict = {}  # link or port -> pairs using it
    i = 0
    anchors = ports if k >= len(ports) else [ports[(j * len(ports)) // k] for j in range(k)]
    while len(out) < k:
        a = anchors[i % len(anchors)]
        px = xyz(a)
        mine = Fraction(pairs.get(("port", a), 0) + 1, port_width)

        def links(r):
            return _dor_links(xyz, a, r) | _dor_links(xyz, r, a)

        def cost(r):
            busiest = max([mine] + [Fraction(pairs.get(lk, 0) + 1) for lk in links(r)])
            return busiest, sum(abs(u - v) for u, v in zip(xyz(r), px)), r

        best = min(free, key=cost)
        for key in links(best) | {("port", a)}:
            pairs[key] = pairs.get(key, 0) + 1
        free.remove(best)
        out.append(best)
        i += 1
    return out


def partner(p: int, j: int, n_ports: int, k: int) -> int:
    """The core that port ``p``'s ``j``-th request goes to (or comes from): k >= ports, cores p,
    p+P, ... in turn (the ones chosen nearest to port p); k < ports, core p*k // P, whose block
    of neighbouring ports p belongs to - so every channel feeds its own cores and paths stay short."""
    return (p + j * n_ports) % k if k >= n_ports else (p * k) // n_ports


def _requests(nbytes: int, size: int) -> list[int]:
    return [min(size, nbytes - a) for a in range(0, nbytes, size)]


def plan(arch, direction: str, nbytes: int, cores: int | None, request_bytes: int):
    """The NoC config, scripted transfers and what the bench needs to time it."""
    chip = types.SimpleNamespace(arch=arch)
    cfg, lay, routers = chip_noc_config(chip, None, "single")
    hbm = Hbm2(arch.hbm)
    n_ports = len(routers)
    k = n_ports if cores is None else cores
    targets = nearest_cores(lay, routers, k, cfg.interface.mc_ports or cfg.interface.ni_ports)
    # the memory side of a transfer: the controller's own NI (node n_routers + router), or with
    # interface.mc_ports = 0 the router's core NI
    ports = [r + lay.n_routers for r in routers] if cfg.interface.mc_ports else list(routers)
    clk = cfg.router.clock_period_ps
    stripes = hbm.port_stripes(nbytes, n_ports)
    access = arch.hbm.access_latency_ps
    transfers, arrivals = [], {}
    tag = 0
    if direction == "read":
        for p, (b, lat) in enumerate(stripes):
            bus = lat - access
            done = 0
            for j, size in enumerate(_requests(b, request_bytes)):
                done += size
                ready_ps = access + math.ceil(Fraction(bus * done, b))
                transfers.append((-(-ready_ps // clk), ports[p], targets[partner(p, j, n_ports, k)], size, tag))
                tag += 1
    else:
        for w in range(k):
            share = nbytes // k + (w < nbytes % k)
            mine = [p for p in range(n_ports) if w in (partner(p, j, n_ports, k) for j in range(max(1, k // n_ports)))]
            for j, size in enumerate(_requests(share, request_bytes)):
                p = mine[j % len(mine)]
                transfers.append((0, targets[w], ports[p], size, tag))
                arrivals[tag] = (p, size)
                tag += 1
    est_cycles = nbytes * 8 // cfg.interface.flit_bits // max(1, min(n_ports, k)) + access // clk  # width 1: an upper bound
    cfg = dataclasses.replace(cfg, traffic=TrafficConfig(rate=0.0),
                              phases=ChipPhases(warmup_cycles=0, measure_cycles=8 * est_cycles + 100_000,
                                                drain_cycles=0))
    return cfg, routers, targets, transfers, arrivals, stripes


def path_bound(cfg, direction: str, transfers: list, memory_bytes_per_s: float):
    """(bytes/s, what bounds it, interface config, one NI port's bytes/s): the whole volume over
    the longest any resource needs for its share - the memory at its peak, each memory
    controller's and each core's NI at its ports' rate (``mc_ports`` / ``ni_ports`` flits a
    cycle), and each link on the X-Y-Z paths at one flit per ``ceil(flit_bits / width_bits)``
    cycles. No schedule can beat it, whatever the NoC does."""
    topo = build_topology(cfg)
    n, coords, ic = topo.n_routers, topo.coords, cfg.interface
    clk_s = cfg.router.clock_period_ps * 1e-12
    port = ic.flit_bits / 8 / clk_s  # bytes/s one NI port moves each way
    link_rate = [port / max(1, math.ceil(ic.flit_bits / lk.width_bits)) for lk in (cfg.planar, cfg.planar, cfg.tsv)]
    load: dict[tuple, float] = {}  # resource -> seconds its share takes
    mem_kind, core_kind = (("port injection", "core ejection") if direction == "read" else
                           ("port ejection", "core injection"))
    total = 0
    for _c, src, dst, size, _tag in transfers:
        total += size
        mem, core = (src, dst) if direction == "read" else (dst, src)
        for kind, node in ((mem_kind, mem), (core_kind, core)):
            rate = (ic.mc_ports if node >= n else ic.ni_ports) * port
            load[(kind, node)] = load.get((kind, node), 0.0) + size / rate
        cur, end = coords[src % n].copy(), coords[dst % n]
        for d in range(3):
            while cur[d] != end[d]:
                step = 1 if end[d] > cur[d] else -1
                key = ("link", tuple(cur.tolist()), d, step)
                load[key] = load.get(key, 0.0) + size / link_rate[d]
                cur[d] += step
    worst, what = total / memory_bytes_per_s, "memory"
    order = {mem_kind: 0, core_kind: 1, "link": 2}  # a tie names the memory side first
    for key, sec in sorted(load.items(), key=lambda kv: (order[kv[0][0]], str(kv[0]))):
        if sec > worst * (1 + 1e-12):
            worst, what = sec, key[0]
    return total / worst, what, ic, port


def _positive(flag: str, value, what: str, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(flag, f"must be a positive number of {what}, got {value!r}")


def check_inputs(direction: str, nbytes, cores, request_bytes) -> None:
    """Every argument of one direction checked, naming its flag."""
    if direction not in ("read", "write"):
        raise ConfigError("--direction", f"unknown direction {direction!r}", allowed="read, write")
    _positive("--bytes", nbytes, "bytes")
    _positive("--request-bytes", request_bytes, "bytes")
    _positive("--readers" if direction == "read" else "--writers", cores, "cores", optional=True)


def run_bench(arch, direction: str, nbytes: int, cores: int | None = None, request_bytes: int = 4096,
              backend: str = "inline", workers: int = 1, out: str | None = None) -> dict:
    """One direction's figures (see the module docstring)."""
    check_inputs(direction, nbytes, cores, request_bytes)
    cfg, ports, targets, transfers, arrivals, stripes = plan(arch, direction, nbytes, cores, request_bytes)
    out = out or tempfile.mkdtemp(prefix="atleus-hbm-bench-")
    stats = backends.run(build_spec(cfg, workers, SinkFactory(out), transfers), backend)
    t = read_table(out, "transfers")
    tags, done = t.column("tag").to_numpy(), t.column("done_cycle").to_numpy()
    if len(tags) != len(transfers):
        raise RuntimeError(f"{len(transfers) - len(tags)} of {len(transfers)} transfers never completed")
    clk = cfg.router.clock_period_ps
    hbm = arch.hbm
    if direction == "read":
        end_ps = int(done.max() + 1) * clk
    else:  # each port writes what arrives, in arrival order, back to back on its bus
        bus_rate = [Fraction(lat - hbm.access_latency_ps, b) if b else Fraction(0) for b, lat in stripes]
        free = [Fraction(0)] * len(ports)
        end = Fraction(0)
        for cyc, tg in sorted(zip(done.tolist(), tags.tolist())):
            p, size = arrivals[tg]
            start = max(Fraction((cyc + 1) * clk + hbm.access_latency_ps), free[p])
            free[p] = start + size * bus_rate[p]
            end = max(end, free[p])
        end_ps = math.ceil(end)
    bound, limit, ic, port = path_bound(cfg, direction, transfers, hbm.bandwidth_bytes_per_s)
    achieved = nbytes / (end_ps * 1e-12)
    return {"direction": direction, "bytes": nbytes, "request_bytes": request_bytes, "ports": ports,
            "cores": targets, "transfers": len(transfers), "end_ps": end_ps,
            "achieved_bytes_per_s": achieved, "bound_bytes_per_s": bound, "achieved_over_bound": achieved / bound,
            "bound_by": limit, "memory_peak_bytes_per_s": hbm.bandwidth_bytes_per_s,
            "ni_bytes_per_s": ic.ni_ports * port, "mc_ni_bytes_per_s": (ic.mc_ports or ic.ni_ports) * port,
            "ni_ports": ic.ni_ports, "mc_ports": ic.mc_ports, "rounds": stats.rounds, "out": out}

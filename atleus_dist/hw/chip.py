"""The whole chip coupled, as a simulation: the chip's NoC configuration (mesh per tier, HBM port
routers) and the :class:`~atleus_dist.kernel.RunSpec` of a mapped step, one LP per NoC region with
the cores attached to its routers (:mod:`atleus_dist.hw.chip_lp`); the op table and layouts live
in :mod:`atleus_dist.hw.chip_program`. Knows nothing of processes, Ray or files.
"""

from __future__ import annotations

import dataclasses
import math

from atleus_dist.hw.chip_lp import ChipLP, ChipLPFactory
from atleus_dist.hw.chip_program import ACT_BYTES, LAYOUTS, ChipProgram, TierLayout
from atleus_dist.hw.compute import lower_bound_ps
from atleus_dist.hw.noc.config import ChipNocConfig, ChipPhases, NocConfig, TrafficConfig
from atleus_dist.hw.noc.partition import channels, partition_map
from atleus_dist.hw.noc.topology import build_topology
from atleus_dist.hw.param_tree import build
from atleus_dist.hw.tier import OpTable
from atleus_dist.hw.units import describe
from atleus_dist.kernel import ConfigError, RunSpec, contiguous_groups

__all__ = ["ACT_BYTES", "LAYOUTS", "ChipLP", "ChipLPFactory", "ChipProgram", "TierLayout", "chip_noc_config",
           "check_units_whole", "chip_run_spec", "expected_packets", "hbm_port_routers"]


def _chip_noc(mapping, noc) -> ChipNocConfig:
    """The chip's NoC section: ``noc`` if given (a :class:`ChipNocConfig`, or a mapping of its
    fields checked like ``--set noc.*``), else the one in the mapped architecture."""
    if noc is None:
        return mapping.arch.noc
    if isinstance(noc, ChipNocConfig):
        return noc
    return build(ChipNocConfig, dict(noc), ("noc",), base=mapping.arch.noc)


def chip_noc_config(mapping, noc: ChipNocConfig | dict | None, partition: str,
                    layout: str = "3d") -> tuple[NocConfig, TierLayout, list[int]]:
    """The NoC of the chip: an X x Y mesh per tier (``noc.mesh``, default the squarest grid
    holding the cores of a tier), as many tiers as the chip, no synthetic traffic; and the routers
    of the HBM's memory ports (:func:`hbm_port_routers`)."""
    arch = mapping.arch
    chip = _chip_noc(mapping, noc)
    arch = dataclasses.replace(arch, noc=chip) if chip is not arch.noc else arch
    x, y = arch.mesh_xy
    if layout not in LAYOUTS:
        raise ConfigError("layout", f"unknown chip layout {layout!r}", allowed=", ".join(LAYOUTS))
    lay = TierLayout(x, y, arch.tiers, layout)
    ports = hbm_port_routers(arch, chip, lay)
    cfg = NocConfig(topology=lay.topology(), partition=partition, router=chip.router, planar=chip.planar,
                    tsv=chip.tsv, interface=dataclasses.replace(chip.interface, mc_ports=mc_ports(arch, chip, ports)))
    return cfg, lay, ports


def mc_ports(arch, chip: ChipNocConfig, ports: list[int]) -> int:
    """``noc.interface.mc_ports``, or (None) the local ports a memory controller's NI needs so it
    does not throttle the channels its router serves: ceil(their peak / one port's bytes a cycle);
    a router with several HBM ports serves all their channels."""
    if chip.interface.mc_ports is not None:
        return chip.interface.mc_ports
    per_router = max(ports.count(r) for r in set(ports)) * arch.hbm.bandwidth_bytes_per_s / len(ports)
    port = chip.interface.flit_bits / 8 / (chip.router.clock_period_ps * 1e-12)
    return max(1, min(16, math.ceil(per_router / port - 1e-9)))


def hbm_port_routers(arch, chip: ChipNocConfig, lay: TierLayout) -> list[int]:
    """Where the HBM's memory ports sit, one serial unit each (port k serves channels k, k+P, ...).
    Explicit: ``noc.hbm_ports`` consecutive routers from ``noc.hbm_router`` (either key set; the
    other defaults to 1 port / the first router of the first systolic tier - the one-port chip
    of before, whose single 16 GB/s injection channel bound every HBM phase), or the list
    ``hbm.routers``. Otherwise one port per channel, ``hbm.placement``: ``edge`` spreads them
    evenly round the rim of the tier facing the interposer (``hbm.interposer_tier``, default the
    first systolic tier; docs/assumptions.md says why), ``first`` takes consecutive routers from
    that tier's first."""
    n, mesh = lay.n_routers, lay.topology()[5:]
    hbm = arch.hbm
    if chip.hbm_ports is not None or chip.hbm_router is not None:
        first = lay.router(min(arch.reram_tiers, arch.tiers - 1), 0) if chip.hbm_router is None \
            else chip.hbm_router
        n_ports = 1 if chip.hbm_ports is None else chip.hbm_ports
        if not 0 <= first < n:
            raise ConfigError("noc.hbm_router", f"router {first} is not in the {mesh} mesh", allowed=f"0..{n - 1}")
        if not 1 <= n_ports <= n - first:
            raise ConfigError("noc.hbm_ports", f"{n_ports} ports from router {first} do not fit the {mesh} mesh",
                              allowed=f"1..{n - first}")
        return list(range(first, first + n_ports))
    if hbm.routers is not None:
        bad = [r for r in hbm.routers if r >= n]
        if bad:
            raise ConfigError("hbm.routers", f"router {bad[0]} is not in the {mesh} mesh", allowed=f"0..{n - 1}")
        return list(hbm.routers)
    tier = min(arch.reram_tiers, arch.tiers - 1) if hbm.interposer_tier is None else hbm.interposer_tier
    if tier >= arch.tiers:
        raise ConfigError("hbm.interposer_tier", f"tier {tier} is not in a {arch.tiers}-tier chip",
                          allowed=f"0..{arch.tiers - 1}")
    c = hbm.channels
    if hbm.placement == "first":
        if c > lay.x * lay.y:
            raise ConfigError("hbm.placement", f"{c} channels do not fit one {lay.x}x{lay.y} tier", allowed="edge")
        return [lay.router(tier, k) for k in range(c)]
    rim = lay.edge(tier)
    # evenly round the rim; more channels than rim routers share them (each still its own unit)
    return [rim[(k * len(rim)) // c] if c <= len(rim) else rim[k % len(rim)] for k in range(c)]


PACKET_ROWS = 200_000  # packets recorded per run (about): above it, one in k is kept


def chip_run_spec(mapping, noc: ChipNocConfig | dict | None, partition: str, workers: int, sink_factory,
                  base: OpTable | None = None, layout: str = "3d", packet_rows: int | None = None,
                  backend: str = "local"):
    """``noc``: the chip's NoC section (None: the mapped architecture's); ``packet_rows``: about
    how many packets the ``packets`` table keeps (default :data:`PACKET_ROWS`); ``partition``
    ``auto``: the planner (:mod:`atleus_dist.hw.noc.plan`) picks one for ``workers`` on ``backend``."""
    if isinstance(noc, dict) and "packet_rows" in noc:  # the old flat ``noc.*`` keys
        noc = dict(noc)
        packet_rows = noc.pop("packet_rows")
    cfg, lay, hbm = chip_noc_config(mapping, noc, partition, layout)
    program = ChipProgram.from_mapping(mapping, lay, hbm, base, hbm=mapping.arch.hbm,
                                       mc_nodes=bool(cfg.interface.mc_ports))
    plan = None
    if partition == "auto":  # the planner: the step's transfers are known, so is each router's traffic
        from atleus_dist.hw.noc.plan import chip_plan

        plan = chip_plan(cfg, program, workers, backend)
        partition = plan.partition
        cfg = dataclasses.replace(cfg, partition=partition)
    rows = PACKET_ROWS if packet_rows is None else packet_rows
    if isinstance(rows, bool) or not isinstance(rows, int) or rows <= 0:
        raise ConfigError("noc.packet_rows", f"must be a positive number of packets, got {rows!r}")
    every = max(1, -(-expected_packets(program, cfg) // rows))
    bound_ps = sum(program.ops.latency_ps) + 1
    clk = cfg.router.clock_period_ps
    # the whole step is one measurement phase; no synthetic traffic
    horizon_cycles = bound_ps // clk + 10 ** 9
    cfg = dataclasses.replace(cfg, traffic=TrafficConfig(rate=0.0),
                              phases=ChipPhases(warmup_cycles=0, measure_cycles=horizon_cycles, drain_cycles=0))
    topo = build_topology(cfg)
    lp_of_router = partition_map(partition, topo)
    n_lps = int(lp_of_router.max()) + 1
    check_units_whole(program, lp_of_router, repr(partition))
    # rounds of at most 1/200 of the estimated step, so even a single-LP run reports progress
    expected = lower_bound_ps(program.ops)
    spec = RunSpec(n_lps=n_lps, channels=channels(topo, lp_of_router, clk, cfg.router), end_ps=horizon_cycles * clk,
                   lp_factory=ChipLPFactory(cfg, program, every), groups=contiguous_groups(n_lps, workers),
                   sink_factory=sink_factory, meta={"model": "chip", "partition": partition, "expected_end_ps": expected,
                                                     "total_ops": len(program.router),
                                                    "clock_period_ps": clk, "plan": plan and plan.to_meta()},
                   max_window_ps=max(clk, expected // 200))
    return spec, dict(cfg.to_dict(), hbm_routers=hbm, mesh=f"{lay.x}x{lay.y}", layout=layout,
                      packet_sample_every=every)


def check_units_whole(program: ChipProgram, lp_of_router, partition: str) -> None:
    """A serial unit (a core, a weight block, the HBM) must live in one LP, or LPs would each run
    their share of its ops at once and results would depend on the partition."""
    lps_of_unit: dict[int, set[int]] = {}
    for unit, router in zip(program.ops.unit, program.router):
        lps_of_unit.setdefault(unit, set()).add(int(lp_of_router[router]))
    split = [u for u, lps in lps_of_unit.items() if len(lps) > 1]
    if split:
        raise ConfigError("partition", f"{partition} splits the ops of {describe(split[0])} over LPs")


def expected_packets(program: ChipProgram, cfg: NocConfig) -> int:
    """Packets the step will send (known before the run: one transfer per producer and consumer
    router), so the sampling rate is fixed up front and the same for every partition."""
    ic = cfg.interface
    total = 0
    for op, routers in program.dests.items():
        for router in routers:
            flits = max(1, -(-program.bytes_to(op, router) * 8 // ic.flit_bits))
            total += -(-flits // ic.packet_flits)
    return total

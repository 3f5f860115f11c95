"""A system of chips as one simulation: every chip's program (on the transfer stub: one LP per
tier; on the flit NoC: its NoC regions with their cores) and the off-chip links between them, as a
:class:`~atleus_dist.kernel.RunSpec` whose LPs are the chips' LPs side by side
(:mod:`atleus_dist.hw.system_lp`).

Partitions: ``single`` (every chip one LP, all in one group: one process), ``chips`` (every chip
one LP, chips spread over the workers so that chips busy at the same time - pipeline neighbours,
replicas - sit on different workers: chip c on worker c mod W), ``chips:P`` (every chip cut by the
chip partition P - ``by-tier``, ``blocks:2x1``, ... - its LPs on one worker). The channel between
two chips' LPs has the link's lookahead (hops x latency): hundreds of router cycles on a board.
Knows nothing of workloads beyond the mapped programs it is given, of processes, Ray or files.
"""

from __future__ import annotations

import dataclasses
import re

from atleus_dist.hw.chip import check_units_whole, chip_noc_config, expected_packets
from atleus_dist.hw.chip_program import ChipProgram
from atleus_dist.hw.compute import lower_bound_ps
from atleus_dist.hw.links import SystemConfig
from atleus_dist.hw.noc.config import ChipPhases, TrafficConfig
from atleus_dist.hw.noc.partition import channels as noc_channels
from atleus_dist.hw.noc.partition import partition_map
from atleus_dist.hw.noc.topology import build_topology
from atleus_dist.hw.system_lp import ChipLinks, SendRoute, SystemLPFactory
from atleus_dist.hw.tier import KIND_CODES, FixedLatencyTransferStub, OpTable
from atleus_dist.kernel import ConfigError, RunSpec

SYSTEM_PARTITION = re.compile(r"single|chips(:.+)?|auto")
SYSTEM_PARTITIONS_TEXT = "auto, single, chips, chips:<chip partition> (e.g. chips:by-tier)"


def chip_partition(partition: str) -> str:
    """The partition of each chip under a system partition."""
    if not SYSTEM_PARTITION.fullmatch(partition):
        raise ConfigError("partition", f"{partition!r} is not a partition of a system of chips",
                          allowed=SYSTEM_PARTITIONS_TEXT)
    return partition[len("chips:"):] if partition.startswith("chips:") else "single"


def io_router(lay, hbm_routers: list[int], chosen: int | None, tier: int) -> int:
    """The router of the chip's I/O controller: ``chosen``, else the first rim router of the
    interposer tier (``tier``) without an HBM port (the first rim router if every one has one)."""
    if chosen is not None:
        if not 0 <= chosen < lay.n_routers:
            raise ConfigError("system.io_router", f"router {chosen} is not in the chip's {lay.n_routers} routers",
                              allowed=f"0..{lay.n_routers - 1}")
        return chosen
    rim = lay.edge(tier)
    free = [r for r in rim if r not in set(hbm_routers)]
    return (free or rim)[0]


@dataclasses.dataclass
class _Chip:
    n_lps: int
    channels: list[tuple[int, int, int]]
    lp_of_op: object  # op -> local LP
    op_id: dict  # op name -> program id
    parts: object  # what SystemLPFactory builds its LPs from
    program: object
    latency_ps: int


def _noc_chip(mapping, partition: str, system: SystemConfig, packet_rows: int, n_chips: int) -> _Chip:
    cfg, lay, hbm = chip_noc_config(mapping, None, partition, "3d")
    arch = mapping.arch
    io = io_router(lay, hbm, system.io_router, min(arch.reram_tiers, arch.tiers - 1))
    program = ChipProgram.from_mapping(mapping, lay, hbm, None, hbm=arch.hbm, mc_nodes=bool(cfg.interface.mc_ports),
                                       io_router=io)
    clk = cfg.router.clock_period_ps
    bound = sum(program.ops.latency_ps) + 1
    cfg = dataclasses.replace(cfg, traffic=TrafficConfig(rate=0.0),
                              phases=ChipPhases(warmup_cycles=0, measure_cycles=bound // clk + 10 ** 9, drain_cycles=0))
    topo = build_topology(cfg)
    lp_of_router = partition_map(partition, topo)
    check_units_whole(program, lp_of_router, f"chips:{partition}")
    every = max(1, -(-expected_packets(program, cfg) * n_chips // packet_rows))
    names = {op.name: i for i, op in enumerate(mapping.graph)}
    first = {}
    for pid, g in enumerate(program.origin):
        first.setdefault(g, pid)
    return _Chip(int(lp_of_router.max()) + 1, noc_channels(topo, lp_of_router, clk, cfg.router),
                 lambda op: int(lp_of_router[program.router[op]]), {n: first[i] for n, i in names.items()},
                 (cfg, program, every), program.ops, clk)


def _stub_chip(mapping, stub: FixedLatencyTransferStub) -> _Chip:
    program = OpTable.from_mapping(mapping, stub)
    names = {op.name: i for i, op in enumerate(mapping.graph)}
    return _Chip(program.n_tiers, program.channels(), lambda op: program.tier[op], names, program, program,
                 stub.latency_ps)


def system_run_spec(mappings: list, transfers: list, system: SystemConfig, transport: str, partition: str,
                    workers: int, sink_factory, stub: FixedLatencyTransferStub | None = None,
                    packet_rows: int = 200_000) -> tuple[RunSpec, dict]:
    """``mappings``: each chip's mapped graph; ``transfers``: the off-chip transfers between them
    (``src``, ``send`` op name, ``dst``, ``wait`` op name, ``nbytes``)."""
    plan = partition
    if partition == "auto":  # a chip per worker when there is more than one of either
        plan = "chips" if workers > 1 and len(mappings) > 1 else "single"
    why = plan_reason(plan, partition, workers, len(mappings), system, mappings[0].arch.noc.router.clock_period_ps)
    per_chip = chip_partition(plan)
    if transport == "stub" and per_chip != "single":
        raise ConfigError("partition", "the stub transport runs one LP per tier of every chip", allowed="chips, single")
    chips = [_stub_chip(m, stub or FixedLatencyTransferStub()) if transport == "stub"
             else _noc_chip(m, per_chip, system, packet_rows, len(mappings)) for m in mappings]
    bases = [sum(c.n_lps for c in chips[:k]) for k in range(len(chips))]
    link = system.link
    sends: list[dict] = [{} for _ in chips]
    chans = [(bases[k] + a, bases[k] + b, la) for k, c in enumerate(chips) for a, b, la in c.channels]
    for t in transfers:
        src, dst = chips[t.src], chips[t.dst]
        send, wait = src.op_id[t.send], dst.op_id[t.wait]
        delay = system.lookahead_ps(t.src, t.dst)
        port = system.port(t.src, t.dst)
        peer = -1 if system.topology == "switch" else (t.src + (1 if port == 0 else -1)) % system.chips
        dst_lp = bases[t.dst] + dst.lp_of_op(wait)
        sends[t.src][send] = SendRoute(dst_lp, wait, delay, port, peer, link.energy_pj(t.nbytes))
        chans.append((bases[t.src] + src.lp_of_op(send), dst_lp, delay))
    n_lps = bases[-1] + chips[-1].n_lps
    lps_of_chip = [list(range(bases[k], bases[k] + c.n_lps)) for k, c in enumerate(chips)]
    if plan == "single":
        groups = [list(range(n_lps))]
    else:
        w = min(workers, len(chips))
        groups = [[lp for k in range(g, len(chips), w) for lp in lps_of_chip[k]] for g in range(w)]
    wait = KIND_CODES["link_wait"]
    total_ops = sum(sum(1 for k in c.program.kind if k != wait) for c in chips)
    latency = sum(sum(c.program.latency_ps) for c in chips) + sum(system.lookahead_ps(t.src, t.dst) for t in transfers)
    clk = chips[0].latency_ps if transport == "noc" else None
    if transport == "noc":
        end = (latency // clk + 10 ** 9) * clk
    else:
        end = latency + (total_ops + 1) * (stub or FixedLatencyTransferStub()).latency_ps + 1
    expected = max(lower_bound_ps(c.program) for c in chips)
    factory = SystemLPFactory(transport, tuple((ChipLinks(k, bases[k], sends[k]), c.n_lps, c.parts)
                                                for k, c in enumerate(chips)))
    look = min((la for a, b, la in chans if _chip_of(a, bases) != _chip_of(b, bases)), default=None)
    spec = RunSpec(n_lps=n_lps, channels=chans, end_ps=end, lp_factory=factory, groups=groups,
                   sink_factory=sink_factory,
                   meta={"model": "system", "partition": plan, "expected_end_ps": expected, "total_ops": total_ops,
                         "clock_period_ps": clk, "chips": len(chips), "lps_of_chip": lps_of_chip,
                         "link_lookahead_ps": look, "plan": why},
                   max_window_ps=max(clk or 1, expected // 200))
    return spec, {"partition": plan, "chip_partition": per_chip, "lps_of_chip": lps_of_chip,
                  "link_lookahead_ps": look, "plan": why}


# below this many router cycles of link latency, chips on different workers synchronise every
# few cycles whenever one of them is about to send (a UCIe-class die-to-die link: 2 cycles)
SHORT_LOOKAHEAD_CYCLES = 64


def plan_reason(plan: str, asked: str, workers: int, chips: int, system: SystemConfig, clock_ps: int) -> dict:
    """Why the system runs on ``plan``, the ideal split of its chips over the workers (equal
    chips; what the rounds cost comes on top: bench/system.py) and a warning when the link class
    leaves little lookahead."""
    cycles = system.link.resolved.latency_ps // clock_ps
    used = min(workers, chips) if plan != "single" else 1
    ideal = chips / -(-chips // used)
    if asked != "auto":
        reason = f"{plan}: as asked"
    elif plan == "single":
        reason = "single: one worker" if workers <= 1 else "single: one chip"
    else:
        reason = (f"chips: {chips} chips over {used} workers (chip c on worker c mod {used}), each chip one LP; "
                  f"the link's {cycles} router cycles of latency are the lookahead between workers, and a chip's "
                  "windows follow its next off-chip send (its output bound)")
    out = {"partition": plan, "reason": reason, "ideal_speedup": round(ideal, 3), "link_lookahead_cycles": int(cycles)}
    if plan != "single" and cycles < SHORT_LOOKAHEAD_CYCLES:
        out["warning"] = (f"the {system.link.preset} link's latency is {cycles} router cycles: chips on different "
                          "workers synchronise every few cycles while one is about to send; on one worker "
                          "(--partition single) this system may run faster")
    return out


def _chip_of(lp: int, bases: list[int]) -> int:
    return max(k for k, b in enumerate(bases) if b <= lp)

"""The whole chip coupled: each LP is a region of the 3D NoC together with the cores attached to
its routers. A finished op sends its result to every other router that holds a consumer, as a
tagged transfer that the flit-level NoC carries; when the transfer's last tail flit is ejected at
the destination (possibly in another LP), the consumers there become ready one cycle later.
One timeline from the first op to the last.

Core c of a tier sits at router ``c % (X * Y)`` of that tier's X x Y mesh (row-major); the tiers
are stacked (3D, TSVs between them) or side by side in one plane (the 2D baseline), see
:class:`TierLayout`. HBM ops run at the HBM port router(s), striped over them when there are
several. Results are ``ACT_BYTES`` per element (16-bit activations: ISAAC streams 16-bit inputs).
Knows nothing of processes, Ray or files.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from atleus_dist.hw.compute import CoreScheduler, lower_bound_ps
from atleus_dist.hw.noc.config import NocConfig, PhaseConfig, TrafficConfig
from atleus_dist.hw.noc.lp import NocRegionLP
from atleus_dist.hw.noc.topology import LINK_CLASSES
from atleus_dist.hw.noc.partition import channels, partition_map
from atleus_dist.hw.noc.topology import build_topology
from atleus_dist.hw.tier import KIND_CODES, PHASE_CODES, TierProgram
from atleus_dist.kernel import ConfigError, RunSpec, contiguous_groups
from atleus_dist.kernel.rng import keep_one_in

ACT_BYTES = 2  # 16-bit activations (ISAAC: 16-bit inputs, 1-bit DACs)


LAYOUTS = ("3d", "planar")


@dataclasses.dataclass(frozen=True)
class TierLayout:
    """Where router (cx, cy) of tier t sits. ``3d``: tiers stacked, router ``t*X*Y + cy*X + cx``
    of an X x Y x T mesh (TSVs between tiers). ``planar`` (the 2D baseline): tier t is block t,
    row-major, of a gx x gy grid of X x Y blocks in one (gx*X) x (gy*Y) mesh, gx = ceil(sqrt(T)),
    gy = ceil(T / gx) - the layout :func:`~atleus_dist.run.baselines.stub_latency_ps` assumes."""

    x: int
    y: int
    tiers: int
    layout: str = "3d"

    @property
    def grid(self) -> tuple[int, int]:
        gx = math.isqrt(self.tiers - 1) + 1
        return gx, -(-self.tiers // gx)

    @property
    def dims(self) -> tuple[int, int, int]:
        if self.layout == "3d":
            return self.x, self.y, self.tiers
        gx, gy = self.grid
        return gx * self.x, gy * self.y, 1

    @property
    def n_routers(self) -> int:
        a, b, c = self.dims
        return a * b * c

    def topology(self) -> str:
        return "mesh:{}x{}x{}".format(*self.dims)

    def router(self, tier: int, local: int) -> int:
        """The router of tier ``tier``'s ``local``-th router (row-major within the tier)."""
        if self.layout == "3d":
            return tier * self.x * self.y + local
        gx, _gy = self.grid
        cx, cy = local % self.x, local // self.x
        return ((tier // gx) * self.y + cy) * gx * self.x + (tier % gx) * self.x + cx

    def tier_of(self, router: int) -> int:
        if self.layout == "3d":
            return router // (self.x * self.y)
        gx, _gy = self.grid
        w = gx * self.x
        return (router // w) // self.y * gx + (router % w) // self.x


HBM_UNIT0 = -(1 << 40)  # serial unit of HBM port k: HBM_UNIT0 - k (clear of cores and weight blocks)


@dataclasses.dataclass(frozen=True)
class ChipProgram:
    """The step as the chip runs it. HBM ops are striped over the memory's ports: an ``hbm_read``
    or ``hbm_write`` of B bytes becomes one op per port (port k at router ``hbm_routers[k]``,
    serial unit ``HBM_UNIT0 - k``, ``core = -1 - k`` in the ops table) moving its share of the
    bytes, as HBM interleaves addresses over its (pseudo-)channels. Each stripe takes the whole
    op's latency - the channels work in parallel, each at 1/ports of the stack's bandwidth - and
    its share of the energy. A consumer waits for every stripe; a producer feeding a write sends
    each port only its share. Op ids are the program's (``origin`` maps them to graph ops)."""

    ops: TierProgram
    router: list[int]  # per op: the router of its core
    out_bytes: list[int]  # per op: size of its result
    n_routers: int
    origin: list[int] = dataclasses.field(default_factory=list)  # per op: its op in the graph
    # (producer, destination router) -> bytes, where a destination needs less than the whole result
    edge_bytes: dict[tuple[int, int], int] = dataclasses.field(default_factory=dict)
    # producer -> the other routers holding its consumers (sorted): its transfers
    dests: dict[int, list[int]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_mapping(cls, mapping, layout: "TierLayout | tuple[int, int]", hbm_router: int | list[int],
                     base: TierProgram | None = None) -> "ChipProgram":
        """``base``: the program of ops as the tiers run them (default ``TierProgram.from_mapping``;
        the 3D-TPU baseline passes its own, having no crossbars)."""
        base = base or TierProgram.from_mapping(mapping)
        arch = mapping.arch
        if not isinstance(layout, TierLayout):
            layout = TierLayout(layout[0], layout[1], arch.tiers)
        per_tier = layout.x * layout.y
        for name in ("reram_cores_per_tier", "systolic_cores_per_tier"):
            if getattr(arch, name) > per_tier:
                raise ConfigError(name, f"{getattr(arch, name)} cores do not fit a {layout.x}x{layout.y} tier mesh")
        ports = [hbm_router] if isinstance(hbm_router, int) else list(hbm_router)
        cols = {name: [] for name in ("tier", "core", "unit", "latency_ps", "energy_pj", "deps", "layer", "kind",
                                      "phase", "macs", "nbytes")}
        routers, out, origin = [], [], []
        ids: list[list[int]] = []  # graph op -> its program ops
        share_of: dict[int, int] = {}  # write stripe -> its numerator over ``ports`` of a producer's bytes
        for i, op in enumerate(mapping.graph):
            deps = tuple(j for d in op.deps for j in ids[d])
            core = mapping.core[i]
            hbm = op.kind in ("hbm_read", "hbm_write")
            parts = len(ports) if hbm else 1
            ids.append(list(range(len(origin), len(origin) + parts)))
            for k in range(parts):
                nbytes = _share(base.nbytes[i], parts, k)
                if hbm:
                    router, unit, core_k = ports[k], HBM_UNIT0 - k, -1 - k
                    energy = base.energy_pj[i] * nbytes / base.nbytes[i] if base.nbytes[i] else 0.0
                    if op.kind == "hbm_write":
                        share_of[len(origin)] = k
                else:
                    router, unit, core_k, energy = cls._router(arch, layout, base.tier[i], core), base.unit[i], \
                        core, base.energy_pj[i]
                for name, value in (("tier", layout.tier_of(router) if hbm else base.tier[i]), ("core", core_k),
                                    ("unit", unit), ("latency_ps", base.latency_ps[i]), ("energy_pj", energy),
                                    ("deps", deps), ("layer", base.layer[i]), ("kind", base.kind[i]),
                                    ("phase", base.phase[i]), ("macs", base.macs[i]), ("nbytes", nbytes)):
                    cols[name].append(value)
                routers.append(router)
                origin.append(i)
                out.append(cls._result_bytes(op, nbytes))
        prog = TierProgram(base.n_tiers, stub=base.stub, **cols)
        n = len(ports)
        need: dict[tuple[int, int], int] = {}
        dests: dict[int, set[int]] = {}
        for c, deps in enumerate(prog.deps):
            for d in deps:
                key = (d, routers[c])
                if routers[d] != routers[c]:
                    dests.setdefault(d, set()).add(routers[c])
                k = share_of.get(c)
                want = out[d] if k is None else _share(out[d], n, k)
                need[key] = max(need.get(key, 0), want)
        edge = {key: b for key, b in need.items() if b < out[key[0]]}
        return cls(prog, routers, out, layout.n_routers, origin, edge,
                   {d: sorted(rs) for d, rs in sorted(dests.items())})

    @staticmethod
    def _router(arch, layout: "TierLayout", tier: int, core: int) -> int:
        if core < arch.reram_cores:
            return layout.router(tier, core % arch.reram_cores_per_tier)
        return layout.router(tier, (core - arch.reram_cores) % arch.systolic_cores_per_tier)

    @staticmethod
    def _result_bytes(op, nbytes: int) -> int:
        if op.kind in ("static_mm", "dynamic_mm"):
            return op.m * op.n * op.count * ACT_BYTES
        if op.kind == "vector":
            return op.elements * ACT_BYTES
        if op.kind == "hbm_read":
            return nbytes
        return 0  # a completion token (one flit)

    def bytes_to(self, op: int, router: int) -> int:
        """What the result of ``op`` puts on the NoC towards ``router``."""
        return self.edge_bytes.get((op, router), self.out_bytes[op])


def _share(total: int, parts: int, k: int) -> int:
    """Part ``k`` of ``total`` split into ``parts`` near-equal integers (they sum to ``total``)."""
    return total // parts + (k < total % parts)


class ChipLP(NocRegionLP):
    def __init__(self, cfg: NocConfig, program: ChipProgram, lp_id: int, sink=None,
                 packet_sample_every: int = 1) -> None:
        super().__init__(cfg, lp_id, sink)
        self.prog = program
        self.sample_every = packet_sample_every
        mine = set(self.region.rids.tolist())
        p = program
        owned = [i for i, r in enumerate(p.router) if r in mine]
        self.sched = CoreScheduler(p.ops, owned, self._on_done, site=p.router.__getitem__)
        # producer I own -> other routers with consumers
        self.targets = {d: rs for d, rs in p.dests.items() if p.router[d] in mine}

    def next_time(self) -> int:
        return min(self.sched.next_time(), super().next_time())

    def _on_done(self, t: int, op: int) -> None:
        p = self.prog
        src = p.router[op]
        self.sched.satisfy(t, op, src)
        cycle = -(-t // self.clk)
        for dest in self.targets.get(op, ()):
            self.region.transfer(cycle, src, dest, p.bytes_to(op, dest), tag=op * p.n_routers + dest)

    def _collect(self) -> None:
        tags, cycles = self.region.take_completed()
        n = self.prog.n_routers
        for tag, cyc in zip(tags.tolist(), cycles.tolist()):
            self.sched.arrive((cyc + 1) * self.clk, tag // n, tag % n)

    def process(self, horizon_ps: int):
        """Interleave the cores' events and the NoC's cycles in time order. A compute event at t
        may inject at cycle ceil(t / clk), so the NoC first runs every cycle before that; it stops
        right after a cycle in which a transfer to this region completed, because the consumers
        it releases may inject again before the next compute event."""
        clk, region, sched = self.clk, self.region, self.sched
        h_cycle = -(-horizon_ps // clk)
        before = region.cycles_run
        n = 0
        while True:
            tc = sched.next_time()
            target = min(h_cycle, -(-tc // clk)) if tc < horizon_ps else h_cycle
            region.run(target, stop_on_completion=True)
            self._collect()
            tc = sched.next_time()
            if tc < horizon_ps and -(-tc // clk) <= region.cycle:
                n += sched.run(tc + 1)
            elif region.cycle >= h_cycle:
                break
        self.events_committed += n + region.cycles_run - before
        self._stream_packets()
        return self._outbox()

    def _stream_packets(self) -> None:
        """Packet rows leave as the run goes (memory stays flat), one in ``sample_every`` kept,
        chosen by a hash of the packet id so the sample does not depend on the partition."""
        chunks = self.region.nis.take_packets_rows()
        if not chunks or self.sink is None:
            return
        cols = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        keep = keep_one_in(cols["pkt"], self.sample_every)
        cols = {k: v[keep] for k, v in cols.items()}
        cols["latency_cycle"] = cols["atime_cycle"] - cols["ctime_cycle"]
        if len(cols["pkt"]):
            self.sink.write("packets", cols, meta={"link_classes": ",".join(LINK_CLASSES),
                                                   "sampling_rate": 1.0 / self.sample_every})

    def close(self) -> None:
        if self.sink is None:
            return
        if self.sched.rows:
            self.sink.write("ops", self.sched.ops_columns(self.prog.ops.tier.__getitem__),
                            meta={"kind_codes": KIND_CODES, "phase_codes": PHASE_CODES})
        self._stream_packets()
        tables = self.tables()
        links = dict(tables["links"], utilisation=np.full(len(tables["links"]["flits"]), np.nan))
        meta = {"link_classes": ",".join(LINK_CLASSES)}
        self.sink.write("links", links, meta=dict(meta, utilisation_over="step"))
        self.sink.write("nodes", tables["nodes"], meta=meta)


@dataclasses.dataclass(frozen=True)
class ChipLPFactory:
    cfg: NocConfig
    program: ChipProgram
    packet_sample_every: int = 1

    def __call__(self, lp_id: int, sink) -> ChipLP:
        return ChipLP(self.cfg, self.program, lp_id, sink, self.packet_sample_every)


def chip_noc_config(mapping, sets: dict[str, str], partition: str,
                    layout: str = "3d") -> tuple[NocConfig, TierLayout, list[int]]:
    """The NoC of the chip: an X x Y mesh per tier (from ``noc.mesh``, default the squarest grid
    holding the cores of a tier), as many tiers as the chip, no synthetic traffic; and the routers
    of the HBM ports: ``noc.hbm_ports`` of them from ``noc.hbm_router`` on (default the first
    router of the first systolic tier, which holds the memory controller). One port by default:
    striping over 16 (one per HBM2 pseudo-channel) made GPT-2 Medium steps *slower* (seq 128:
    44.3 vs 40.0 ms; seq 32: 32.6 vs 31.8 ms) - the reads go to one or two cores whose ejection
    port (one flit a cycle) is the bottleneck either way, and 16 sources converging on it congest
    the mesh for everyone else - and doubled the simulation's wall time."""
    arch = mapping.arch
    sets = dict(sets)
    per_tier = max(arch.reram_cores_per_tier, arch.systolic_cores_per_tier)
    if "mesh" in sets:
        try:
            x, y = (int(v) for v in sets.pop("mesh").lower().split("x"))
        except ValueError:
            raise ConfigError("noc.mesh", "must look like 4x4") from None
    else:
        x = int(math.isqrt(per_tier))
        while per_tier % x:
            x -= 1
        x, y = per_tier // x, x
    if layout not in LAYOUTS:
        raise ConfigError("layout", f"unknown chip layout {layout!r}", allowed=", ".join(LAYOUTS))
    lay = TierLayout(x, y, arch.tiers, layout)
    hbm = _int_set(sets, "hbm_router", lay.router(arch.reram_tiers, 0))
    n_ports = _int_set(sets, "hbm_ports", 1)
    sets.pop("packet_rows", None)
    data: dict = {"topology": lay.topology(), "partition": partition}
    for key, value in sets.items():
        part, dot, name = key.partition(".")
        if not dot:
            raise ConfigError(f"noc.{key}", "expected noc.PART.FIELD, e.g. noc.router.num_vcs=2")
        data.setdefault(part, {})[name] = _number(value)
    cfg = NocConfig.from_dict(data)
    n, mesh = lay.n_routers, lay.topology()[5:]
    if not 0 <= hbm < n:
        raise ConfigError("noc.hbm_router", f"router {hbm} is not in the {mesh} mesh")
    if not 1 <= n_ports <= n - hbm:
        raise ConfigError("noc.hbm_ports", f"{n_ports} ports from router {hbm} do not fit the {mesh} mesh",
                          allowed=f"1..{n - hbm}")
    return cfg, lay, list(range(hbm, hbm + n_ports))


def _int_set(sets: dict[str, str], key: str, default: int) -> int:
    if key not in sets:
        return default
    try:
        return int(sets.pop(key))
    except ValueError:
        raise ConfigError(f"noc.{key}", "must be an integer") from None


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


PACKET_ROWS = 200_000  # packets recorded per run (about): above it, one in k is kept


def chip_run_spec(mapping, sets: dict[str, str], partition: str, workers: int, sink_factory,
                  base: TierProgram | None = None, layout: str = "3d"):
    cfg, lay, hbm = chip_noc_config(mapping, sets, partition, layout)
    program = ChipProgram.from_mapping(mapping, lay, hbm, base)
    rows = int(sets.get("packet_rows", PACKET_ROWS))
    if rows <= 0:
        raise ConfigError("noc.packet_rows", f"must be a positive number of packets, got {rows}")
    every = max(1, -(-expected_packets(program, cfg) // rows))
    bound_ps = sum(program.ops.latency_ps) + 1
    clk = cfg.router.clock_period_ps
    # the whole step is one measurement phase; no synthetic traffic
    horizon_cycles = bound_ps // clk + 10 ** 9
    cfg = dataclasses.replace(cfg, traffic=TrafficConfig(rate=0.0),
                              phases=PhaseConfig(warmup_cycles=0, measure_cycles=horizon_cycles, drain_cycles=0))
    topo = build_topology(cfg)
    lp_of_router = partition_map(partition, topo)
    n_lps = int(lp_of_router.max()) + 1
    # a serial unit (a core, a weight block, the HBM) must live in one LP, or LPs would each run
    # their share of its ops at once and results would depend on the partition
    lps_of_unit: dict[int, set[int]] = {}
    for unit, router in zip(program.ops.unit, program.router):
        lps_of_unit.setdefault(unit, set()).add(int(lp_of_router[router]))
    split = [u for u, lps in lps_of_unit.items() if len(lps) > 1]
    if split:
        raise ConfigError("partition", f"{partition!r} splits the ops of serial unit {split[0]} over LPs")
    # rounds of at most 1/200 of the estimated step, so even a single-LP run reports progress
    expected = lower_bound_ps(program.ops)
    spec = RunSpec(n_lps=n_lps, channels=channels(topo, lp_of_router, clk), end_ps=horizon_cycles * clk,
                   lp_factory=ChipLPFactory(cfg, program, every), groups=contiguous_groups(n_lps, workers),
                   sink_factory=sink_factory, meta={"model": "chip", "partition": partition, "expected_end_ps": expected},
                   max_window_ps=max(clk, expected // 200))
    return spec, dict(cfg.to_dict(), hbm_routers=hbm, mesh=f"{lay.x}x{lay.y}", layout=layout,
                      packet_sample_every=every)


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

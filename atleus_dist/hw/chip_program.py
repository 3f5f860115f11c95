"""The step as the chip runs it: where each tier's routers sit (:class:`TierLayout`: stacked in
3D, or side by side in one plane for the 2D baseline) and the chip's op table
(:class:`ChipProgram`: every op with its core's router, result size and transfer destinations,
HBM ops striped over the memory's ports, one per channel by default, each stripe timed by
the channel model of :mod:`atleus_dist.hw.hbm`; an op whose data the mapper put in one channel,
``Op.channel``, is one op on that channel's port).

Core c of a tier sits at router ``c % (X * Y)`` of that tier's X x Y mesh (row-major). Results
are ``ACT_BYTES`` per element (16-bit activations: ISAAC streams 16-bit inputs). Knows nothing of
the kernel, the NoC's simulation, processes, Ray or files.
"""

from __future__ import annotations

import dataclasses
import functools
import math

from atleus_dist.hw.hbm import Hbm2, Hbm2Config
from atleus_dist.hw.links import LINK_KINDS
from atleus_dist.hw.params import ACT_BYTES
from atleus_dist.hw.units import UnitKind, hbm_port_core, hbm_port_unit, unit_kind
from atleus_dist.hw.tier import OpTable
from atleus_dist.kernel import ConfigError



LAYOUTS = ("3d", "planar")
# units whose ops sit on their router's controller NI (memory or I/O), not its core's
_CONTROLLER_UNITS = (UnitKind.HBM_PORT, UnitKind.LINK_TX, UnitKind.LINK_RX)


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

    def edge(self, tier: int) -> list[int]:
        """The routers on the rim of tier ``tier``'s X x Y mesh, walked clockwise from (0, 0) -
        where off-chip PHYs sit (a 1-wide or 1-tall tier is all rim)."""
        x, y = self.x, self.y
        ring = [(cx, 0) for cx in range(x)] + [(x - 1, cy) for cy in range(1, y)]
        if y > 1:
            ring += [(cx, y - 1) for cx in range(x - 2, -1, -1)]
        if x > 1:
            ring += [(0, cy) for cy in range(y - 2, 0, -1)]
        return [self.router(tier, cy * x + cx) for cx, cy in ring]

    def tier_of(self, router: int) -> int:
        if self.layout == "3d":
            return router // (self.x * self.y)
        gx, _gy = self.grid
        w = gx * self.x
        return (router // w) // self.y * gx + (router % w) // self.x


@dataclasses.dataclass(frozen=True)
class ChipProgram:
    """The step as the chip runs it. HBM ops are striped over the memory's ports: an ``hbm_read``
    or ``hbm_write`` of B bytes becomes one op per port (port k at router ``hbm_routers[k]``,
    serial unit ``hbm_port_unit(k)``, core ``hbm_port_core(k)`` - see :mod:`atleus_dist.hw.units`) moving its share of the
    bytes, as HBM interleaves addresses over its (pseudo-)channels. Each stripe takes the whole
    op's latency - the channels work in parallel, each at 1/ports of the stack's bandwidth - and
    its share of the energy. A consumer waits for every stripe; a producer feeding a write sends
    each port only its share, one feeding a read only a token, one feeding a head group of a split
    op only its heads' share (:func:`_wanted`). Op ids are the program's (``origin`` maps them to
    graph ops)."""

    ops: OpTable
    router: list[int]  # per op: the router of its core
    out_bytes: list[int]  # per op: size of its result
    n_routers: int
    origin: list[int] = dataclasses.field(default_factory=list)  # per op: its op in the graph
    # (producer, destination router) -> bytes, where a destination needs less than the whole result
    edge_bytes: dict[tuple[int, int], int] = dataclasses.field(default_factory=dict)
    # producer -> the other NoC nodes holding its consumers (sorted): its transfers
    dests: dict[int, list[int]] = dataclasses.field(default_factory=dict)
    # per op: the NoC node its inputs and result use - its router's core NI, or for an HBM stripe
    # with memory-controller NIs (``interface.mc_ports`` > 0) ``n_routers + router``; empty: routers
    site: list[int] = dataclasses.field(default_factory=list)

    @functools.cached_property
    def n_sites(self) -> int:
        """Node ids are below this (``Topology.n_nodes``)."""
        return self.n_routers * (2 if any(s >= self.n_routers for s in self.site) else 1)

    @classmethod
    def from_mapping(cls, mapping, layout: "TierLayout | tuple[int, int]", hbm_router: int | list[int],
                     base: OpTable | None = None, hbm: Hbm2Config | None = None,
                     mc_nodes: bool = False, io_router: int | None = None) -> "ChipProgram":
        """``base``: the program of ops as the tiers run them (default ``OpTable.from_mapping``;
        the 3D-TPU baseline passes its own, having no crossbars). ``hbm``: time each stripe with
        the channel model (:meth:`Hbm2.port_stripes`: port k's channels, its share of the bytes,
        each HBM op at the next free address so successive ops start on successive channels);
        None: every stripe takes the whole op's latency (the memory as one server). ``mc_nodes``:
        HBM stripes sit on their router's memory-controller NI, so a core and the memory at one
        router exchange data through the router, not for free, and do not share one NI."""
        base = base or OpTable.from_mapping(mapping)
        arch = mapping.arch
        if not isinstance(layout, TierLayout):
            layout = TierLayout(layout[0], layout[1], arch.tiers)
        per_tier = layout.x * layout.y
        for name in ("reram_cores_per_tier", "systolic_cores_per_tier"):
            if getattr(arch, name) > per_tier:
                raise ConfigError(name, f"{getattr(arch, name)} cores do not fit a {layout.x}x{layout.y} tier mesh")
        ports = [hbm_router] if isinstance(hbm_router, int) else list(hbm_router)
        cols = {name: [] for name in ("tier", "core", "unit", "latency_ps", "energy_pj", "deps", "layer", "kind",
                                      "phase", "macs", "nbytes", *(("step",) if base.step else ()))}
        routers, out, origin = [], [], []
        ids: list[list[int]] = []  # graph op -> its program ops
        share_of: dict[int, tuple[int, list[int]]] = {}  # write stripe -> (k, every stripe's bytes)
        model = Hbm2(hbm) if hbm is not None else None
        address = 0
        for i, op in enumerate(mapping.graph):
            deps_k = _stripe_deps(mapping.graph, op, ids, len(ports))
            core = mapping.core[i]
            hbm = op.kind in ("hbm_read", "hbm_write")
            pinned = hbm and op.channel >= 0
            parts = len(ports) if hbm and not pinned else 1
            ids.append(list(range(len(origin), len(origin) + parts)))
            if pinned:  # data in one channel (a streamed weight slice): one op on that channel's port
                stripes = [(base.nbytes[i], model.channel_time_ps(base.nbytes[i], 1) if model is not None
                            else base.latency_ps[i])]
            elif hbm and model is not None:
                stripes = model.port_stripes(base.nbytes[i], parts, address)
                g = model.cfg.interleave_bytes
                address += -(-base.nbytes[i] // g) * g
            else:
                stripes = [(_share(base.nbytes[i], parts, k), base.latency_ps[i]) for k in range(parts)]
            for k in range(parts):
                nbytes, latency = stripes[k] if hbm else (base.nbytes[i], base.latency_ps[i])
                if hbm:
                    pk = _pinned_port(op.channel, len(ports)) if pinned else k
                    router, unit, core_k = ports[pk], hbm_port_unit(pk), hbm_port_core(pk)
                    energy = base.energy_pj[i] * nbytes / base.nbytes[i] if base.nbytes[i] else 0.0
                    if op.kind == "hbm_write":
                        share_of[len(origin)] = (k, [b for b, _t in stripes])
                elif op.kind in LINK_KINDS:  # a system of chips: the I/O controller's link port
                    router, unit, core_k, energy = io_router, base.unit[i], core, base.energy_pj[i]
                else:
                    router, unit, core_k, energy = cls._router(arch, layout, base.tier[i], core), base.unit[i], \
                        core, base.energy_pj[i]
                for name, value in (("tier", layout.tier_of(router) if hbm else base.tier[i]), ("core", core_k),
                                    ("unit", unit), ("latency_ps", latency), ("energy_pj", energy),
                                    ("deps", deps_k(k)), ("layer", base.layer[i]), ("kind", base.kind[i]),
                                    ("phase", base.phase[i]), ("macs", base.macs[i]), ("nbytes", nbytes)):
                    cols[name].append(value)
                if base.step:  # mode generate: each stripe keeps its op's decode step
                    cols["step"].append(base.step[i])
                routers.append(router)
                origin.append(i)
                out.append(result_bytes(op, nbytes))
        prog = OpTable(base.n_tiers, stub=base.stub, **cols)
        need: dict[tuple[int, int], int] = {}
        dests: dict[int, set[int]] = {}
        graph = mapping.graph.ops
        n = layout.n_routers
        site = [r + n if mc_nodes and unit_kind(u)[0] in _CONTROLLER_UNITS else r for r, u in zip(routers, cols["unit"])]
        for c, deps in enumerate(prog.deps):
            cop = graph[origin[c]]
            for d in deps:
                key = (d, site[c])
                if site[d] != site[c]:
                    dests.setdefault(d, set()).add(site[c])
                want = _wanted(cop, graph[origin[d]], out[d], share_of.get(c))
                need[key] = max(need.get(key, 0), want)
        edge = {key: b for key, b in need.items() if b < out[key[0]]}
        return cls(prog, routers, out, layout.n_routers, origin, edge,
                   {d: sorted(rs) for d, rs in sorted(dests.items())}, site)

    @staticmethod
    def _router(arch, layout: "TierLayout", tier: int, core: int) -> int:
        if core < arch.reram_cores:
            return layout.router(tier, core % arch.reram_cores_per_tier)
        return layout.router(tier, (core - arch.reram_cores) % arch.systolic_cores_per_tier)

    def bytes_to(self, op: int, node: int) -> int:
        """What the result of ``op`` puts on the NoC towards ``node`` (a router, or a memory
        controller's NI: see ``site``)."""
        return self.edge_bytes.get((op, node), self.out_bytes[op])


def result_bytes(op, nbytes: int) -> int:
    """Bytes of an op's result on the wire (``nbytes``: its share of the data, for an HBM stripe):
    16-bit activations (``ACT_BYTES``); a write's result is a completion token (one flit)."""
    if op.kind in ("static_mm", "dynamic_mm"):
        return op.m * op.n * op.count * ACT_BYTES
    if op.kind == "vector":
        return op.elements * ACT_BYTES
    if op.kind in ("hbm_read", "link_recv"):
        return nbytes
    return 0


def _wanted(consumer, producer, out_bytes: int, write_share: tuple[int, list[int]] | None) -> int:
    """Bytes of ``producer``'s result (``out_bytes``, per program op) one program op of
    ``consumer`` needs: a write stripe its port's share; a read none (it moves data from the
    memory, not from its deps: a completion token, e.g. the optimizer state read after the
    gradients); a transposed static matmul the k columns of a computed dY it reads (a column
    slice of a weight: its slice's share); a head group of a split op (``part`` of ``parts``) its heads' share of an input
    that is not split (the reload, dAV), the whole of one that is (its own heads already)."""
    if write_share is not None:
        return _split(out_bytes, write_share[1])[write_share[0]]
    if consumer.kind == "hbm_read" and producer.kind not in ("hbm_read", "hbm_write"):
        return 0
    if consumer.parts > 1 and producer.parts == 1:
        return _share(out_bytes, consumer.parts, consumer.part)
    if consumer.kind == "static_mm" and consumer.transposed and producer.kind not in ("hbm_read", "hbm_write"):
        # dX = dY W^T reads k columns of a computed dY: a weight's column slice only its share
        return min(out_bytes, consumer.m * consumer.k * consumer.count * ACT_BYTES)
    return out_bytes


def program_deps(graph, n_ports: int) -> list[tuple[int, ...]]:
    """The dependencies of every op of the program :meth:`ChipProgram.from_mapping` builds from
    ``graph`` with ``n_ports`` HBM ports (each HBM op one op per port, in op order), without
    costing anything: what a report needs to follow the real data dependencies of a chip run."""
    ids: list[list[int]] = []
    deps: list[tuple[int, ...]] = []
    for op in graph:
        parts = n_ports if op.kind in ("hbm_read", "hbm_write") and op.channel < 0 else 1
        deps_k = _stripe_deps(graph, op, ids, n_ports)
        ids.append(list(range(len(deps), len(deps) + parts)))
        deps.extend(deps_k(k) for k in range(parts))
    return deps


def _pinned_port(channel: int, n_ports: int) -> int:
    """The port serving ``channel`` (port k serves channels k, k + P, ...; more ports than
    channels: the channel's first port)."""
    return channel % n_ports


def _stripe_deps(graph, op, ids: list[list[int]], n_ports: int):
    """k -> the program deps of stripe k of ``op``: every stripe of every dep, except that an HBM
    op after an HBM op (a reload after its save) waits only for the same port's stripe - the
    same channels hold that data, and the controller orders it without a NoC message. An op
    pinned to one channel (``channel`` >= 0) is one op and waits for every stripe."""
    hbm = ("hbm_read", "hbm_write")
    mem = op.kind in hbm and op.channel < 0

    def deps_k(k: int) -> tuple[int, ...]:
        return tuple(j for d in op.deps
                     for j in ([ids[d][k]] if mem and graph.ops[d].kind in hbm and len(ids[d]) == n_ports
                               else ids[d]))
    return deps_k


def _split(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` into integers that sum to it (equal parts when
    the weights are all zero); the remainder goes to the first parts."""
    w = sum(weights)
    if w == 0:
        return [_share(total, len(weights), k) for k in range(len(weights))]
    parts = [total * x // w for x in weights]
    for k in range(total - sum(parts)):
        parts[k % len(parts)] += 1
    return parts


def _share(total: int, parts: int, k: int) -> int:
    """Part ``k`` of ``total`` split into ``parts`` near-equal integers (they sum to ``total``)."""
    return total // parts + (k < total % parts)

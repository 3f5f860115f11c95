"""The NoC-region LP: wraps a :class:`Region` in the kernel's LP interface, turns flits and
credits that cross a cut into message blocks (time, in ps: the cycle a flit is read, the cycle a
credit is applied - see ``partition.channels``) and writes the
region's result tables (``packets``, ``nodes``, ``links``) at the end. Also builds the RunSpec.

Knows the kernel and the result sink interface; knows nothing of backends, processes or Ray.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from atleus_dist.hw.noc.partition import channels, partition_map
from atleus_dist.hw.noc.region import Region
from atleus_dist.hw.noc.router import FlitPool
from atleus_dist.hw.noc.topology import LINK_CLASSES, build_topology
from atleus_dist.kernel import NEVER_PS, Block, LogicalProcess, RunSpec, contiguous_groups, message_dtype
from atleus_dist.kernel.messages import HEADER_DTYPE

from atleus_dist.hw.noc.lp_compiled import CompiledPlane, CompiledRounds  # noqa: E402 - re-exported

E_NEVER = NEVER_PS

# every field after the header is int64, so a block's payload is an (n, k) int64 view of its rows
_ROUTE = [("router", "<i8"), ("port", "<i8"), ("vc", "<i8")]
FLIT_DTYPE = message_dtype(_ROUTE + [("f_" + f, "<i8") for f in FlitPool.FIELDS])
CREDIT_DTYPE = message_dtype(_ROUTE)
PRIO_FLIT, PRIO_CREDIT = 0, 1
_HEAD_WORDS = HEADER_DTYPE.itemsize // 8
assert HEADER_DTYPE.itemsize % 8 == 0


def _payload(rows: np.ndarray) -> np.ndarray:
    """The int64 fields after the header, as an (n, k) read-only array (one copy: received rows
    may be an unaligned view on the wire buffer)."""
    words = rows.dtype.itemsize // 8
    flat = np.frombuffer(rows.tobytes(), dtype=np.int64).reshape(len(rows), words)
    return np.ascontiguousarray(flat[:, _HEAD_WORDS:])


class NocRegionLP(LogicalProcess):
    def __init__(self, cfg, lp_id: int, sink=None, transfers: tuple = ()) -> None:
        super().__init__(lp_id)
        self.cfg = cfg
        self.clk = cfg.router.clock_period_ps
        self.topo = build_topology(cfg)
        self.lp_of_router = partition_map(cfg.partition, self.topo)
        rids = np.flatnonzero(self.lp_of_router == lp_id)
        self.region = Region(cfg, self.topo, rids, self.lp_of_router, lp_id)
        self.sink = sink
        self.seq = 0
        # scripted transfers (cycle, src, dest, nbytes, tag): issued by the LP owning src; their
        # completions at the destination LP go to a ``transfers`` table (only when scripted)
        self.scripted = bool(transfers)
        for c, src, dest, nbytes, tag in transfers:
            if self.lp_of_router[src % len(self.lp_of_router)] == lp_id:  # src: a node id (Topology.n_nodes)
                self.region.transfer(c, src, dest, nbytes, tag)
        self.done_tags: list[np.ndarray] = []
        self.done_cycles: list[np.ndarray] = []

    def next_time(self) -> int:
        c = self.region.next_cycle()
        return NEVER_PS if c >= self.region.end_cycle else c * self.clk

    def receive(self, blocks: list[Block]) -> None:
        for b in blocks:
            rows = b.rows
            if not len(rows):
                continue
            cycle = np.ascontiguousarray(rows["time_ps"]) // self.clk
            if b.kind == "noc_flit":
                self.region.add_remote_flits(cycle, _payload(rows))
            elif b.kind == "noc_credit":
                self.region.add_remote_credits(cycle, _payload(rows))
            else:
                raise ValueError(f"NoC LP {self.lp_id} got an unknown message kind {b.kind!r}")

    def process(self, horizon_ps: int) -> dict[int, list[Block]]:
        self.window(horizon_ps)
        return self._outbox()

    def window(self, horizon_ps: int) -> None:
        """Every event before ``horizon_ps``; what leaves the region stays in its outbox."""
        before = self.region.cycles_run
        self.region.run(-(-horizon_ps // self.clk))
        self.events_committed += self.region.cycles_run - before
        self._take_completed()

    def _take_completed(self) -> None:
        if self.scripted:
            tags, cycles = self.region.take_completed()
            if len(tags):
                self.done_tags.append(tags)
                self.done_cycles.append(cycles)

    # --- the compiled round path (lp_compiled.CompiledRounds) ------------------------------------
    stop_on_completion = False  # the chip LP reacts to completions inside a window

    def python_next(self) -> tuple[int, int]:
        """(first cycle with a Python-held NoC event, next compute event in ps): windows that
        contain either run in Python (:meth:`window`)."""
        reg = self.region
        c = min(reg.future[0][0] if reg.future else E_NEVER, reg.loopback[0][0] if reg.loopback else E_NEVER)
        return c, E_NEVER

    def python_window(self, horizon_ps: int) -> None:
        self.window(horizon_ps)

    def compiled_driver(self, board, plane, rows_every: int, ticks_per_s: float) -> "CompiledRounds":
        return CompiledRounds(self, board, plane, rows_every, ticks_per_s)

    def total_events(self) -> int:
        return self.region.cycles_run

    def react_cycles(self) -> int:
        """Cycles from a transfer's last tail ejected here to the first transfer that can cause
        (the forecasts' bound): none - a NoC run's completions are only recorded."""
        return E_NEVER

    def finish_compiled(self) -> None:
        self._take_completed()

    def _outbox(self) -> dict[int, list[Block]]:
        """The region's flits and credits for other LPs, as message blocks per destination LP."""
        out: dict[int, list[Block]] = {}
        for lp, kinds in sorted(self.region.take_outbox().items()):
            blocks = []
            for kind, dtype, prio in (("flit", FLIT_DTYPE, PRIO_FLIT), ("credit", CREDIT_DTYPE, PRIO_CREDIT)):
                rec = kinds.get(kind)  # (n, k) int64: cycle, router, port, vc[, FIELDS]
                if rec is None:
                    continue
                n = len(rec)
                rows = np.empty(n, dtype=dtype)
                rows.view(np.int64).reshape(n, -1)[:, _HEAD_WORDS:] = rec[:, 1:]
                rows["time_ps"] = rec[:, 0] * self.clk  # flits: cycle read; credits: cycle applied
                rows["priority"] = prio
                rows["src"] = self.lp_id
                rows["src_seq"] = np.arange(self.seq, self.seq + n)
                self.seq += n
                rows["dst"] = rec[:, 1]
                rows["dst_port"] = rec[:, 2]
                blocks.append(Block(f"noc_{kind}", rows))
            out[lp] = blocks
        return out

    # --- results --------------------------------------------------------------------------------
    def tables(self) -> dict[str, dict]:
        reg, ni, ra = self.region, self.region.nis, self.region.routers
        cfg = self.cfg
        if ni.packets:
            packets = {k: np.concatenate([p[k] for p in ni.packets]) for k in ni.packets[0]}
        else:
            packets = {k: np.zeros(0, dtype=np.int64) for k in
                       ("pkt", "src", "dest", "ctime_cycle", "itime_cycle", "atime_cycle", "hops", "flits")}
        packets["latency_cycle"] = packets["atime_cycle"] - packets["ctime_cycle"]
        # one row per node: a router's core NI (node = router) and its controller's (n_routers + router)
        node = (reg.rids[:, None] + self.topo.n_routers * np.arange(ni.nn)[None, :]).ravel()
        nodes = {"node": node, "router": np.repeat(reg.rids, ni.nn), "generated_measured": ni.gen_meas.copy(),
                 "accepted_flits": ni.acc_flits.copy(), "flit_lat_n": ni.flat_n.copy(),
                 "flit_lat_sum": ni.flat_sum.copy(), "flit_lat_sumsq": ni.flat_sumsq.copy()}
        P = self.topo.n_ports
        router = np.repeat(reg.rids, P)
        port = np.tile(np.arange(P), len(reg.rids))
        cls = self.topo.link_class[router, port]
        exists = (self.topo.out_router[router, port] >= 0) | (port >= self.topo.local_port)
        bits = cfg.interface.flit_bits
        e_bit = np.array([cfg.planar.energy_pj_per_bit, cfg.tsv.energy_pj_per_bit, 0.0])[cls]
        e_bit = e_bit + cfg.interface.router_energy_pj_per_bit
        flits = ra.link_flits
        links = {"router": router[exists], "port": port[exists], "link_class": cls[exists],
                 "flits": flits[exists], "utilisation": flits[exists] / cfg.phases.measure_cycles,
                 "energy_pj": (flits * bits * e_bit)[exists]}
        out = {"packets": packets, "nodes": nodes, "links": links}
        if self.scripted:
            cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, dtype=np.int64))
            out["transfers"] = {"tag": cat(self.done_tags), "done_cycle": cat(self.done_cycles)}
        return out

    def close(self) -> None:
        if self.sink is None:
            return
        meta = {"link_classes": ",".join(LINK_CLASSES)}
        for name, cols in self.tables().items():
            self.sink.write(name, cols, kind="result", meta=meta)

    @classmethod
    def reslice(cls, old: dict, new: dict, t_ps: int) -> None:
        """The regions' state onto another partition (:mod:`atleus_dist.hw.noc.reslice`)."""
        from atleus_dist.hw.noc.reslice import reslice_lps

        reslice_lps(old, new, t_ps)


@dataclass(frozen=True)
class NocLPFactory:
    """Picklable factory the backends call in every worker."""

    cfg: object
    transfers: tuple = ()

    def __call__(self, lp_id: int, sink) -> NocRegionLP:
        return NocRegionLP(self.cfg, lp_id, sink, self.transfers)

    def compiled_plane(self, spec: RunSpec) -> "CompiledPlane":
        """LPs built by this factory can run compiled rounds; this is what they share."""
        return CompiledPlane(spec, self.cfg)

    def for_partition(self, partition: str) -> "NocLPFactory":
        """The factory of the same run on another partition (a resume re-slicing a checkpoint)."""
        return dataclasses.replace(self, cfg=dataclasses.replace(self.cfg, partition=partition))


def build_spec(cfg, workers: int, sink_factory=None, transfers: tuple = (), backend: str = "local") -> RunSpec:
    """``transfers``: scripted (cycle, src, dest, nbytes, tag) tuples (tests, benchmarks);
    ``partition: auto`` asks the planner (for ``workers`` on ``backend``)."""
    plan = None
    if cfg.partition == "auto":
        from atleus_dist.hw.noc.plan import noc_plan

        plan = noc_plan(cfg, workers, backend)
        cfg = dataclasses.replace(cfg, partition=plan.partition)
    topo = build_topology(cfg)
    lp_of_router = partition_map(cfg.partition, topo)
    n_lps = int(lp_of_router.max()) + 1
    return RunSpec(n_lps=n_lps, channels=channels(topo, lp_of_router, cfg.router.clock_period_ps, cfg.router),
                   end_ps=cfg.end_cycle * cfg.router.clock_period_ps,
                   lp_factory=NocLPFactory(cfg, tuple(tuple(int(x) for x in t) for t in transfers)),
                   groups=contiguous_groups(n_lps, workers), sink_factory=sink_factory,
                   meta={"model": "noc", "partition": cfg.partition, "clock_period_ps": cfg.router.clock_period_ps,
                         "plan": plan and plan.to_meta()})

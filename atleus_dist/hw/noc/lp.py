"""The NoC-region LP: wraps a :class:`Region` in the kernel's LP interface, turns flits and
credits that cross a cut into message blocks (time = the cycle they are read, in ps) and writes the
region's result tables (``packets``, ``nodes``, ``links``) at the end. Also builds the RunSpec.

Knows the kernel and the result sink interface; knows nothing of backends, processes or Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atleus_dist.hw.noc.partition import channels, partition_map
from atleus_dist.hw.noc.region import Region
from atleus_dist.hw.noc.router import FlitPool
from atleus_dist.hw.noc.topology import LINK_CLASSES, build_topology
from atleus_dist.kernel import NEVER_PS, Block, LogicalProcess, RunSpec, contiguous_groups, message_dtype
from atleus_dist.kernel.messages import HEADER_DTYPE

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
            if self.lp_of_router[src] == lp_id:
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
        before = self.region.cycles_run
        self.region.run(-(-horizon_ps // self.clk))
        self.events_committed += self.region.cycles_run - before
        if self.scripted:
            tags, cycles = self.region.take_completed()
            if len(tags):
                self.done_tags.append(tags)
                self.done_cycles.append(cycles)
        return self._outbox()

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
                rows["time_ps"] = rec[:, 0] * self.clk
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
        nodes = {"node": reg.rids.copy(), "generated_measured": ni.gen_meas.copy(),
                 "accepted_flits": ni.acc_flits.copy(), "flit_lat_n": ni.flat_n.copy(),
                 "flit_lat_sum": ni.flat_sum.copy(), "flit_lat_sumsq": ni.flat_sumsq.copy()}
        P = self.topo.n_ports
        router = np.repeat(reg.rids, P)
        port = np.tile(np.arange(P), len(reg.rids))
        cls = self.topo.link_class[router, port]
        exists = (self.topo.out_router[router, port] >= 0) | (port == P - 1)
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


@dataclass(frozen=True)
class NocLPFactory:
    """Picklable factory the backends call in every worker."""

    cfg: object
    transfers: tuple = ()

    def __call__(self, lp_id: int, sink) -> NocRegionLP:
        return NocRegionLP(self.cfg, lp_id, sink, self.transfers)


def build_spec(cfg, workers: int, sink_factory=None, transfers: tuple = ()) -> RunSpec:
    """``transfers``: scripted (cycle, src, dest, nbytes, tag) tuples (tests, benchmarks)."""
    topo = build_topology(cfg)
    lp_of_router = partition_map(cfg.partition, topo)
    n_lps = int(lp_of_router.max()) + 1
    return RunSpec(n_lps=n_lps, channels=channels(topo, lp_of_router, cfg.router.clock_period_ps),
                   end_ps=cfg.end_cycle * cfg.router.clock_period_ps,
                   lp_factory=NocLPFactory(cfg, tuple(tuple(int(x) for x in t) for t in transfers)),
                   groups=contiguous_groups(n_lps, workers), sink_factory=sink_factory,
                   meta={"model": "noc", "partition": cfg.partition})

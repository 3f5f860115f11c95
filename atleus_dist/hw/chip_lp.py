"""The chip LP: a region of the 3D NoC together with the cores attached to its routers. A
finished op sends its result to every other router that holds a consumer, as a tagged transfer
that the flit-level NoC carries; when the transfer's last tail flit is ejected at the destination
(possibly in another LP), the consumers there become ready one cycle later. One timeline from
the first op to the last. Knows nothing of processes, Ray or files.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from atleus_dist.hw.chip_program import ChipProgram
from atleus_dist.hw.compute import CoreScheduler
from atleus_dist.hw.noc.config import NocConfig
from atleus_dist.hw.noc.lp import CompiledPlane, NocRegionLP
from atleus_dist.hw.noc.topology import LINK_CLASSES
from atleus_dist.hw.tier import KIND_CODES, PHASE_CODES
from atleus_dist.kernel.rng import keep_one_in


# a partitioned run has a Python window per completion (thousands), one LP few: streaming the
# packets of every window cost ~1% of a 2-LP chip run's loop in small Arrow batches
STREAM_EVERY = 32
STREAM_ROWS = 1 << 20  # ... or when this many rows are held (one LP: a window is ~1/200 of the run)


class ChipLP(NocRegionLP):
    snapshot_skip = ("targets",)  # built by __init__ from the program, only read after (checkpoints)

    def __init__(self, cfg: NocConfig, program: ChipProgram, lp_id: int, sink=None,
                 packet_sample_every: int = 1) -> None:
        super().__init__(cfg, lp_id, sink)
        self.prog = program
        self.sample_every = packet_sample_every
        self.region.nis.keep_every = packet_sample_every  # rows sampled as they leave the loop (memory)
        mine = set(self.region.rids.tolist())
        p = program
        wait = KIND_CODES["link_wait"]  # stands for another chip's send: a link message releases it
        owned = [i for i, r in enumerate(p.router) if r in mine and p.ops.kind[i] != wait]
        self.site = p.site or p.router  # the NoC node of each op (a memory controller's own NI for HBM stripes)
        self.n_sites = p.n_sites
        self.sched = CoreScheduler(p.ops, owned, self._on_done, site=self.site.__getitem__)
        # producer I own -> other routers with consumers
        self.targets = {d: rs for d, rs in p.dests.items() if p.router[d] in mine}
        self.compute_events = 0
        self._windows = 0  # Python windows run (packets stream every STREAM_EVERY of them)

    def work_done(self) -> int:
        return self.sched.ops_done

    def next_time(self) -> int:
        return min(self.sched.next_time(), super().next_time())

    def _on_done(self, t: int, op: int) -> None:
        p = self.prog
        src = self.site[op]
        self.sched.satisfy(t, op, src)
        cycle = -(-t // self.clk)
        for dest in self.targets.get(op, ()):
            self.region.transfer(cycle, src, dest, p.bytes_to(op, dest), tag=op * self.n_sites + dest)

    def _collect(self) -> None:
        tags, cycles = self.region.take_completed()
        n = self.n_sites
        for tag, cyc in zip(tags.tolist(), cycles.tolist()):
            self.sched.arrive((cyc + 1) * self.clk, tag // n, tag % n)

    def window(self, horizon_ps: int) -> None:
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
        self.compute_events += n
        self.events_committed += n + region.cycles_run - before
        self._windows += 1
        if self._windows % STREAM_EVERY == 0 or self.region.nis.held_packet_rows() > STREAM_ROWS:
            self._stream_packets()

    # --- the compiled round path: Python acts on completions and compute events ----------------
    stop_on_completion = True

    def python_next(self) -> tuple[int, int]:
        return super().python_next()[0], self.sched.next_time()

    def python_window(self, horizon_ps: int) -> None:
        self._collect()  # completions the compiled loop stopped at release their consumers first
        self.window(horizon_ps)

    def total_events(self) -> int:
        return self.region.cycles_run + self.compute_events

    def react_cycles(self) -> int:
        """Cycles from a tail ejected here (cycle a) to the first transfer it can cause: the
        consumers are ready at (a + 1) clk, run at least the shortest op owned here, and their
        transfer is created at the cycle after that (ceil), so a + 1 + ceil(min latency / clk)."""
        lat = [self.prog.ops.latency_ps[i] for i in self.sched.mine]
        return 1 + -(-int(min(lat)) // self.clk) if lat else 1

    def finish_compiled(self) -> None:
        self._stream_packets()

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

    @classmethod
    def reslice(cls, old: dict, new: dict, t_ps: int) -> None:
        """Regions and schedulers onto another partition (:mod:`atleus_dist.hw.chip_reslice`)."""
        from atleus_dist.hw.chip_reslice import reslice_chip_lps

        reslice_chip_lps(old, new, t_ps)


@dataclasses.dataclass(frozen=True)
class ChipLPFactory:
    cfg: NocConfig
    program: ChipProgram
    packet_sample_every: int = 1

    def __call__(self, lp_id: int, sink) -> ChipLP:
        return ChipLP(self.cfg, self.program, lp_id, sink, self.packet_sample_every)

    def compiled_plane(self, spec):
        """Chip LPs run compiled rounds too (see :class:`~atleus_dist.hw.noc.lp.CompiledPlane`)."""
        return CompiledPlane(spec, self.cfg)

    def for_partition(self, partition: str) -> "ChipLPFactory":
        """The factory of the same run on another partition (a resume re-slicing a checkpoint)."""
        return dataclasses.replace(self, cfg=dataclasses.replace(self.cfg, partition=partition))

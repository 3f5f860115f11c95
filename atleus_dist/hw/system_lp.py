"""The LPs of a system of chips: each chip's own LPs (tier LPs on the transfer stub, NoC-region
chip LPs on the flit NoC) with an off-chip link endpoint added, and their factory.

A chip's ops are numbered in its own program; its LPs keep their local ids inside (region
ownership, NoC cuts) and take ``base + local`` as their id in the system, so every message they
send to another LP of the chip is re-addressed by ``base``. When a ``link_send`` op finishes at t
(its port has serialised the bytes: :class:`~atleus_dist.hw.links.LinkConfig`), the endpoint sends
a ``link`` message to the LP holding the far end's ``link_wait`` op, stamped t + hops x latency -
never earlier than its send time plus the channel's lookahead; its arrival releases the wait's
``link_recv``, which hands the data to the consumers on that chip (over its NoC). Every table an LP
writes gets a ``chip`` column; the LP holding a chip's sends writes its ``system_links`` rows (per
port: transfers, bytes, busy time, energy). Knows nothing of processes, Ray or files.
"""

from __future__ import annotations

import dataclasses
import heapq

import numpy as np

from atleus_dist.hw.chip_lp import ChipLP
from atleus_dist.hw.tier import TierLP
from atleus_dist.kernel import NEVER_PS, Block, message_dtype

LINK_DTYPE = message_dtype([("wait", "<i8")])  # the far end's link_wait op (its chip's program id)
PRIO_LINK = 2
CHIP_TABLES = ("ops", "packets", "links", "nodes")


@dataclasses.dataclass(frozen=True)
class SendRoute:
    """Where a ``link_send`` op's data goes: the LP (system id) and op of the far end's wait."""

    dst_lp: int
    wait: int
    delay_ps: int  # hops x link latency: the message's time after the send finishes
    port: int
    peer: int  # the chip at the other end of the port's link (-1: a switch)
    energy_pj: float


@dataclasses.dataclass(frozen=True)
class ChipLinks:
    """One chip's part of the system, as its LPs need it."""

    chip: int
    base: int  # its LPs' first system id
    sends: dict  # send op (program id) -> SendRoute


class ChipColumnSink:
    """A result sink that adds the chip's index to every row of the chip-level tables."""

    def __init__(self, sink, chip: int) -> None:
        self.sink, self.chip = sink, chip

    def write(self, table: str, columns: dict, **kw) -> None:
        if table in CHIP_TABLES:
            n = len(next(iter(columns.values()))) if columns else 0
            columns = dict(columns, chip=np.full(n, self.chip, dtype=np.int32))
        self.sink.write(table, columns, **kw)

    def __getattr__(self, name):  # the run's sink interface (close, positions, ...)
        return getattr(self.sink, name)


class LinkEndpoint:
    """Mixed into a chip's LP class (before it): the off-chip link, LP ids in the system."""

    snapshot_skip = ("links",)

    def _link_setup(self, links: ChipLinks) -> None:
        self.links = links
        self.lp_id = links.base + self.lp_id  # every message this LP stamps carries its system id
        self._link_out: dict[int, list[tuple[int, int]]] = {}
        self._link_seq = 0
        self.port_stats: dict[int, list] = {}  # port -> [peer, transfers, bytes, busy_ps, energy_pj]

    def _on_done(self, t: int, op: int) -> None:
        super()._on_done(t, op)
        route = self.links.sends.get(op)
        if route is None:
            return
        self._link_out.setdefault(route.dst_lp, []).append((t + route.delay_ps, route.wait))
        row = self.port_stats.setdefault(route.port, [route.peer, 0, 0, 0, 0.0])
        p = self.sched.p
        row[1] += 1
        row[2] += p.nbytes[op]
        row[3] += p.latency_ps[op]
        row[4] += route.energy_pj

    def receive(self, blocks: list[Block]) -> None:
        rest = []
        for b in blocks:
            if b.kind != "link":
                rest.append(b)
                continue
            for t, wait in zip(b.rows["time_ps"].tolist(), b.rows["wait"].tolist()):
                self.sched.arrive(t, wait, self._wait_site(wait))
        if rest:
            super().receive(rest)

    def _wait_site(self, wait: int) -> int:
        return 0

    def process(self, horizon_ps: int) -> dict[int, list[Block]]:
        base = self.links.base
        out = {base + lp: blocks for lp, blocks in super().process(horizon_ps).items()}
        for lp, items in sorted(self._link_out.items()):
            rows = np.zeros(len(items), dtype=LINK_DTYPE)
            rows["time_ps"] = [t for t, _ in items]
            rows["wait"] = [w for _, w in items]
            rows["priority"] = PRIO_LINK
            rows["src"] = self.lp_id
            rows["src_seq"] = np.arange(self._link_seq, self._link_seq + len(items))
            rows["dst"] = lp
            self._link_seq += len(items)
            out.setdefault(lp, []).append(Block("link", rows))
        self._link_out.clear()
        return out

    def close(self) -> None:
        super().close()
        if self.sink is not None and self.port_stats:
            ports = sorted(self.port_stats)
            st = [self.port_stats[p] for p in ports]
            self.sink.write("system_links", {
                "chip": np.full(len(ports), self.links.chip, dtype=np.int32),
                "port": np.array(ports, dtype=np.int32),
                "peer": np.array([r[0] for r in st], dtype=np.int32),
                "transfers": np.array([r[1] for r in st], dtype=np.int64),
                "bytes": np.array([r[2] for r in st], dtype=np.int64),
                "busy_ps": np.array([r[3] for r in st], dtype=np.int64),
                "energy_pj": np.array([r[4] for r in st], dtype=np.float64)})


class SystemChipLP(LinkEndpoint, ChipLP):
    """A NoC region of one chip of a system (see :class:`~atleus_dist.hw.chip_lp.ChipLP`).

    **Output bound.** A chip that is one LP sends to other LPs only when a ``link_send`` op
    finishes, and a send cannot finish before the ops leading to it have run: with ``to_send[i]``
    the least sum of op latencies on a dependency path from op i's end to a send's end (NoC
    transfers and queueing only add), the next send event is no earlier than the least of
    ``end + to_send`` over running ops and ``now + latency + to_send`` over ops whose inputs are
    all produced (the *frontier*; every unfinished op is one or waits for one, or for another
    chip, whose own bound covers it). That bound, not the next NoC cycle, is what other chips'
    windows follow (:meth:`next_output_time`), so a chip inside a layer stack runs its window to
    the end of the stack."""

    snapshot_skip = ("links", "_to_send", "_key", "_cons")
    output_bounds = True  # False: the next NoC cycle stands for the next send (tests compare both)

    def __init__(self, cfg, program, lp_id: int, sink, packet_sample_every: int, links: ChipLinks) -> None:
        super().__init__(cfg, program, lp_id, sink, packet_sample_every)
        self._link_setup(links)
        # the chip is this one LP (links are its only output)
        self._bounded = self.output_bounds and int(self.lp_of_router.max()) == 0
        if self._bounded:
            self._bound_setup()

    def _wait_site(self, wait: int) -> int:
        return self.site[wait]

    def _bound_setup(self) -> None:
        ops = self.prog.ops
        n, lat, deps = len(ops.latency_ps), ops.latency_ps, ops.deps
        inf = NEVER_PS
        to_send = [inf] * n
        for s_op in self.links.sends:
            to_send[s_op] = 0
        cons: list[list[int]] = [[] for _ in range(n)]
        for i in range(n - 1, -1, -1):
            for d in deps[i]:
                cons[d].append(i)
                if to_send[i] < inf and lat[i] + to_send[i] < to_send[d]:
                    to_send[d] = lat[i] + to_send[i]
        self._to_send, self._cons = to_send, cons
        self._key = [lat[i] + to_send[i] if to_send[i] < inf else inf for i in range(n)]
        mine = set(self.sched.mine)
        self._left = {i: len(deps[i]) for i in mine}
        self._front = [(self._key[i], i) for i in mine if not deps[i] and self._key[i] < inf]
        heapq.heapify(self._front)
        self._finished: set[int] = set()

    def _release(self, op: int) -> None:
        """``op``'s result exists (it finished here, or another chip's data for it arrived)."""
        for c in self._cons[op]:
            left = self._left.get(c)
            if left is None:
                continue
            self._left[c] = left - 1
            if left == 1 and self._key[c] < NEVER_PS:
                heapq.heappush(self._front, (self._key[c], c))

    def _on_done(self, t: int, op: int) -> None:
        super()._on_done(t, op)
        if self._bounded:
            self._finished.add(op)
            self._release(op)

    def receive(self, blocks) -> None:
        super().receive(blocks)
        if self._bounded:
            for b in blocks:
                if b.kind == "link":
                    for wait in b.rows["wait"].tolist():
                        self._release(wait)

    def next_output_time(self) -> int:
        if not self._bounded:
            return self.next_time()
        front, started, fin = self._front, self.sched.started, self._finished
        while front and (front[0][1] in started or front[0][1] in fin):
            heapq.heappop(front)  # running ops are counted by their end below; finished ones are gone
        best = self.now_ps + front[0][0] if front else NEVER_PS
        lat, to_send = self.prog.ops.latency_ps, self._to_send
        for op, start in started.items():
            if to_send[op] < NEVER_PS:
                best = min(best, start + lat[op] + to_send[op])
        return best


class SystemTierLP(LinkEndpoint, TierLP):
    """A tier of one chip of a system on the transfer stub (see :class:`~atleus_dist.hw.tier.TierLP`)."""

    def __init__(self, lp_id: int, program, sink, links: ChipLinks) -> None:
        super().__init__(lp_id, program, sink)
        self._link_setup(links)


@dataclasses.dataclass(frozen=True)
class SystemLPFactory:
    """Picklable: LP ``i`` of the system is local LP ``i - base`` of its chip."""

    transport: str
    chips: tuple  # per chip: (ChipLinks, n_lps, what its LPs are built from)

    def __call__(self, lp_id: int, sink):
        for links, n, parts in self.chips:
            if links.base <= lp_id < links.base + n:
                local = lp_id - links.base
                wrapped = None if sink is None else ChipColumnSink(sink, links.chip)
                if self.transport == "stub":
                    return SystemTierLP(local, parts, wrapped, links)
                cfg, program, every = parts
                return SystemChipLP(cfg, program, local, wrapped, every, links)
        raise ValueError(f"LP {lp_id} is not in the system")

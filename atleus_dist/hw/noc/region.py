"""A NoC region: the routers and network interfaces of one LP, their in-flight flits and credits,
the transfer API the compute tiers use, and the driver of the compiled cycle loop.

Events inside the region sit in a calendar of ``W`` cycles (every delay is shorter); flits and
credits from other regions wait in an inbox sorted by cycle; flits and credits that leave the
region are returned as records for the LP to send. Within a cycle everything is keyed by
(router, port, VC), at most one item per key, so the order of delivery never matters. Per-cycle
order follows BookSim2's ``TrafficManager::_Step``: read flits and credits, allocate, generate,
inject. Knows nothing of the kernel's messages or picoseconds (the LP converts).
"""

from __future__ import annotations

import heapq

import numpy as np

from atleus_dist.hw.noc import engine as E
from atleus_dist.hw.noc import engine_state as S
from atleus_dist.hw.noc.interface import Interfaces
from atleus_dist.hw.noc.router import FlitPool, RouterArray

NEVER = E.NEVER
TAIL_TABLE = 4096  # transfers in flight towards one region that the engine can count down


class Region:
    """The state of one region, handed to the compiled loop as the named groups of
    ``engine_state`` (:meth:`groups`; every field's shape and meaning is documented there, rows
    and columns in ``engine_layout``). Arrays held here (R routers here, P ports, V VCs, W
    calendar slots, a power of two above the longest delay):

    ==========  ===============  ===============================================================
    field       shape            holds
    ==========  ===============  ===============================================================
    ``prm``     (N_PRM,)         parameters (P_*)
    ``sc``      (N_SC,)          scalars (S_*): current cycle, counts, flags for Python
    ``g2l``     (routers,)       global router id -> local index here (-1: another region)
    ``coords``  (nodes, 3)       mesh coordinates of every node id's router (routing)
    ``caln``    (W, N_K)         calendar: items due in each slot, per kind (K_*)
    ``cal``     N_K x (W, R*P, 4)  calendar items per kind (fields: engine_layout's K_* lines)
    ``inf``     (5, n)           inbox of flits from other regions, sorted by cycle: cycle,
                                 local router, input port, vc, pool slot
    ``inc``     (4, n)           inbox of credits from other regions: cycle applied, local
                                 router, output port, vc
    ``outf``    (2*R*P, 16)      flits leaving the region: cycle read, router, port, vc, FIELDS
    ``outc``    (2*R*P, 4)       credits leaving the region: cycle read, router, port, vc
    ``tdo``     (5, T)           TD_TAG..TD_CYCLE: ejected transfer tails for Python; TD_KEY,
                                 TD_LEFT: the loop's per-transfer countdown table
    ``scr``     (7, max(P*V,P))  the allocators' scratch (rows: ``engine_router``)
    ==========  ===============  ===============================================================

    The routers' arrays are :class:`RouterArray`'s, the interfaces' :class:`Interfaces`', the
    flits' :class:`FlitPool`'s. Python replaces ``inf``/``inc`` (absorbing) and the pool and
    queues (growing) between calls; the loop never holds them across a return.
    """

    snapshot_skip = ("_groups",)  # views of the arrays below, rebuilt on the first call after a restore

    def __init__(self, cfg, topo, rids: np.ndarray, lp_of_router: np.ndarray, lp_id: int) -> None:
        self._groups = None  # (arrays it was built from, engine groups): see groups()
        self.cfg, self.topo = cfg, topo
        self.rids = np.asarray(rids, dtype=np.int64)
        self.lp_id = lp_id
        self.lp_of_router = np.asarray(lp_of_router, dtype=np.int64)
        self.g2l = np.full(topo.n_routers, -1, dtype=np.int64)
        self.g2l[self.rids] = np.arange(len(self.rids))
        # one row per node id (a memory controller's NI routes like its router)
        self.coords = np.ascontiguousarray(np.tile(topo.coords, (2 if topo.mc_ports else 1, 1)), dtype=np.int64)
        self.sc = np.zeros(E.N_SC, dtype=np.int64)
        self.routers = RouterArray(cfg, topo, self.rids, self.g2l)
        R, P = len(self.rids), topo.n_ports
        self.nis = Interfaces(cfg, topo, self.rids, self.sc)
        self.pool = FlitPool(self.sc, max(1024, 4 * R * P), min_free=2 * R * self.nis.L + 1)
        self.local_lat = cfg.interface.local_latency_cycles
        self.local_port = topo.local_port
        ph, rc = cfg.phases, cfg.router
        self.w0, self.w1 = ph.warmup_cycles, ph.warmup_cycles + ph.measure_cycles
        self.end_cycle = cfg.end_cycle
        W = 1 << int(self.routers.max_delay).bit_length()
        prm = np.zeros(E.N_PRM, dtype=np.int64)
        for i, v in ((E.P_R, R), (E.P_P, P), (E.P_V, rc.num_vcs), (E.P_B, rc.vc_buf_size_flits),
                     (E.P_RD, rc.routing_delay_cycles), (E.P_VAD, rc.vc_alloc_delay_cycles),
                     (E.P_SAD, rc.sw_alloc_delay_cycles), (E.P_CB, rc.crossbar_delay_cycles),
                     (E.P_CD, rc.credit_delay_cycles), (E.P_WFT, int(rc.wait_for_tail_credit)),
                     (E.P_LL, self.local_lat), (E.P_W0, self.w0), (E.P_W1, self.w1), (E.P_W, W),
                     (E.P_K, self.nis.K), (E.P_PSIZE, cfg.interface.packet_flits), (E.P_L0, topo.local_port),
                     (E.P_NP, topo.ni_ports), (E.P_MP, topo.mc_ports), (E.P_NN, self.nis.nn),
                     (E.P_L, self.nis.L), (E.P_NR, topo.n_routers)):
            prm[i] = v
        self.prm = prm
        cap = max(R * P, 1)
        self.caln = np.zeros((W, 4), dtype=np.int64)
        self.cal = [np.zeros((W, cap, 4), dtype=np.int64) for _ in range(4)]
        self.inf = np.zeros((5, 0), dtype=np.int64)  # remote flits: cycle, local router, port, vc, slot
        self.inc = np.zeros((4, 0), dtype=np.int64)  # remote credits: cycle read, local router, port, vc
        # rows 0-2: tail records for Python; rows 3-4: the engine's per-transfer countdown table
        self.tdo = np.zeros((5, max(4 * R + 1, TAIL_TABLE)), dtype=np.int64)
        self.tdo[3] = -1
        self.outf = np.zeros((2 * cap, 4 + len(E.FIELDS)), dtype=np.int64)
        self.outc = np.zeros((2 * cap, 4), dtype=np.int64)
        self.scr = np.zeros((7, max(P * rc.num_vcs, P)), dtype=np.int64)  # allocator scratch of the loop
        self.out: dict[int, dict[str, list]] = {}
        # LP of every cut port's neighbour (-1 inside the region), to split the outbox cheaply
        outr = self.routers.st[:, E.ST_OUTR]
        self.far_lps = np.unique(self.lp_of_router[outr[(outr >= 0) & (self.routers.st[:, E.ST_DOWNL] < 0)]]).tolist()
        # transfers: not yet due (heap of cycle, seq, ...), loopbacks, packets still in flight per tag
        self.future: list[tuple] = []
        self.loopback: list[tuple[int, int]] = []
        self.remaining: dict[int, list[int]] = {}
        self.completed: list[tuple[int, int]] = []
        self._seq = 0
        self.sc[E.S_NEXT] = int(self.nis.ni[E.N_NEXTGEN].min()) if R else NEVER

    def groups(self, inf: np.ndarray | None = None, inc: np.ndarray | None = None) -> tuple:
        """The engine's state as its named groups (``engine_state``), in the order ``engine.run``
        takes them after the horizon: control, routers, NIs, flits, calendar, inbox, records.
        Built afresh for each call (the pool, the queues and the inboxes may have been replaced);
        ``inf`` / ``inc`` stand in for the inboxes (the compiled rounds' own)."""
        ra, ni = self.routers, self.nis
        inf = self.inf if inf is None else inf
        inc = self.inc if inc is None else inc
        key = (self.pool.data, self.pool.free, ni.nq, inf, inc)
        last = self._groups
        if last is not None and all(a is b for a, b in zip(last[0], key)):
            return last[1]  # nothing replaced since: the same groups (~5 us a call saved)
        groups = (S.Control(self.prm, self.sc, self.scr),
                  S.Routers(self.coords, self.rids, ra.st, ra.rv, ra.buf, ra.rp, ra.rr, ra.va_vcs, ra.sa_vcs,
                            ra.free_vcs, ra.va_ports, ra.sa_ports, ra.busy, ra.va_wait, ra.sa_wait),
                  S.Nis(ni.ni, ni.nsv, ni.nst, ni.gd, ni.nq, ni.queued),
                  S.Flits(self.pool.data, self.pool.free),
                  S.Calendar(self.caln, *self.cal),
                  S.Inbox(inf, inc),
                  S.Records(ni.pko, self.tdo, self.outf, self.outc))
        self._groups = (key, groups)
        return groups

    @property
    def cycle(self) -> int:
        """Every cycle < this has been simulated."""
        return int(self.sc[E.S_CYCLE])

    @property
    def cycles_run(self) -> int:
        return int(self.sc[E.S_RUN])

    @property
    def flit_hops(self) -> int:
        return int(self.sc[E.S_HOPS])

    # --- input from other regions -------------------------------------------------------------
    def add_remote_flits(self, cycle: np.ndarray, rows: np.ndarray) -> None:
        """Flits from other regions read at ``cycle``; ``rows`` (n, 3 + len(FIELDS)) int64 holds
        router (global id), input port, vc and the flit's FIELDS."""
        if len(cycle):
            self._check_time(cycle)
            self.pool.grow(len(cycle))
            self.inf = E.absorb_flits(cycle, rows, self.g2l, self.pool.data, self.pool.free, self.sc, self.inf)

    def add_remote_credits(self, cycle: np.ndarray, rows: np.ndarray) -> None:
        """Credits from other regions applied at ``cycle`` (read + credit_delay: the sender adds
        it, see :func:`partition.channels`); ``rows`` (n, 3): router (global id), output port, vc."""
        if len(cycle):
            self._check_time(cycle)
            self.inc = E.absorb_credits(cycle, rows, self.g2l, 0, self.sc, self.inc)

    def _check_time(self, cycle: np.ndarray) -> None:
        first = int(cycle.min())
        if first < self.cycle:
            raise ValueError(f"NoC region {self.lp_id}: message for cycle {first} "
                             f"arrived after cycle {self.cycle} was simulated")
        self.sc[E.S_NEXT] = min(int(self.sc[E.S_NEXT]), first)

    # --- transfers ----------------------------------------------------------------------------
    def transfer(self, cycle: int, src_router: int, dest_router: int, nbytes: int, tag: int | None = None) -> list[int]:
        """Send ``nbytes`` from node ``src_router`` (in this region) to node ``dest_router`` (any
        region; a node is a router's core NI - the router id - or, with ``interface.mc_ports``,
        its memory controller's NI: ``n_routers + router``),
        created at ``cycle`` (>= this region's time): ceil(bits / flit_bits) flits cut into packets
        of ``packet_flits`` (the last may be shorter), queued at the source NI behind what is
        already there. Every flit carries ``tag`` and the transfer's packet count, so the region
        that owns ``dest_router`` reports it from :meth:`take_completed` once its last packet's
        tail is ejected. ``tag`` (an int64 >= 0, unique per transfer in the run) is chosen by the
        caller; None means untracked. ``src == dest`` does not enter the network: it completes at
        ``cycle + interface.local_latency_cycles`` (one NI channel traversal, like an ejection).
        Returns the per-source packet indices (``pkt & 0xffffffff`` in the ``packets`` table)."""
        c, src, dest = int(cycle), int(src_router), int(dest_router)
        if c < self.cycle:
            raise ValueError(f"transfer at cycle {c} is before the region's time {self.cycle}")
        nr, nn = len(self.g2l), self.nis.nn
        r = src - nr if src >= nr else src
        l = int(self.g2l[r]) * nn + (src >= nr) if 0 <= src < nr * nn and self.g2l[r] >= 0 else -1
        if l < 0:
            raise ValueError(f"node {src} is not in this region")
        if not 0 <= dest < nr * nn:
            raise ValueError(f"destination node {dest} is not in the network (0..{nr * nn - 1})")
        t = -1 if tag is None else int(tag)
        if tag is not None and t < 0:
            raise ValueError(f"transfer tag must be >= 0, got {tag}")
        ic = self.cfg.interface
        if src == dest:
            if t >= 0:
                heapq.heappush(self.loopback, (c + ic.local_latency_cycles, t))
            return []
        flits = max(1, -(-int(nbytes) * 8 // ic.flit_bits))
        size = ic.packet_flits
        count = -(-flits // size)
        last = flits - (count - 1) * size
        if c > self.cycle:  # queued when the region reaches its cycle (the NI must not send it earlier)
            base = int(self.nis.explicit[l])
            self.nis.explicit[l] += count
            heapq.heappush(self.future, (c, self._seq, l, dest, size, count, last, t, base))
            self._seq += 1
            k = base
        else:
            k = self.nis.enqueue(c, l, dest, size, t, count, count, last)
        return list(range(k, k + count))

    def _release_future(self, c: int) -> None:
        while self.future and self.future[0][0] == c:
            _c, _s, l, dest, size, count, last, t, base = heapq.heappop(self.future)
            keep = int(self.nis.explicit[l])
            self.nis.explicit[l] = base
            self.nis.enqueue(c, l, dest, size, t, count, count, last)
            self.nis.explicit[l] = keep

    def take_completed(self) -> tuple[np.ndarray, np.ndarray]:
        """(tags, cycles) of transfers to nodes of this region completed since the previous call,
        in order of (cycle, tag); the cycle is the one at which the last tail flit was ejected."""
        done = sorted(self.completed, key=lambda x: (x[1], x[0]))
        self.completed = []
        return (np.array([d[0] for d in done], dtype=np.int64), np.array([d[1] for d in done], dtype=np.int64))

    def next_cycle(self) -> int:
        t = int(self.sc[E.S_NEXT])
        if self.future:
            t = min(t, self.future[0][0])
        if self.loopback:
            t = min(t, self.loopback[0][0])
        return max(t, self.cycle)

    # --- the loop -------------------------------------------------------------------------------
    def run(self, horizon_cycle: int, stop_on_completion: bool = False) -> None:
        """Simulate every cycle < ``horizon_cycle`` (capped by the run's end). With
        ``stop_on_completion``, return right after a cycle in which a transfer to this region
        completed (``take_completed`` then has it), so the caller can react before going on."""
        h = min(horizon_cycle, self.end_cycle)
        self.sc[E.S_STOP] = int(stop_on_completion)
        n0 = len(self.completed)
        while True:
            t = h
            if self.future:
                t = min(t, self.future[0][0])
            if self.loopback:
                t = min(t, self.loopback[0][0] + 1)
            self._run_kernel(t, n0 if stop_on_completion else -1)
            while self.loopback and self.loopback[0][0] < self.cycle:
                self.completed.append(heapq.heappop(self.loopback)[::-1])
            if stop_on_completion and len(self.completed) > n0:
                return
            if self.future and self.future[0][0] == self.cycle:
                self._release_future(self.cycle)
            if self.cycle >= h:
                return

    def _run_kernel(self, horizon: int, stop_above: int = -1) -> None:
        """Run the compiled loop to ``horizon``, serving its requests; with ``stop_above`` >= 0,
        return early once more than that many transfers have completed."""
        while True:
            flag = E.run(horizon, *self.groups())
            self._drain()
            if flag == 0:
                return
            self.serve(flag)
            if stop_above >= 0 and len(self.completed) > stop_above:
                return

    def serve(self, flag: int) -> None:
        """Do what the loop asked for at the end of its last cycle (its ``FLAG_*`` bits), after
        :meth:`_drain`: the generic path and the compiled rounds alike."""
        if flag & E.FLAG_ERROR:
            raise RuntimeError(f"NoC region {self.lp_id}: event calendar overflow or late message "
                               f"at cycle {self.cycle} (a bug)")
        if flag & E.FLAG_REFILL:
            self.nis.refill(self.cycle - 1)
        if flag & E.FLAG_QGROW:
            self.nis.grow()
        if flag & E.FLAG_POOL:
            self.pool.grow(2 * len(self.rids) + 1)

    def _drain(self) -> None:
        sc = self.sc
        if sc[E.S_PKN] > self.nis.pko.shape[1] // 2:
            self.nis.flush_packets()
        if sc[E.S_TDN]:
            self._tails(self.tdo[:3, :int(sc[E.S_TDN])])
            sc[E.S_TDN] = 0
        if sc[E.S_OFN]:
            self._out(self.outf[:int(sc[E.S_OFN])], "flit")
            sc[E.S_OFN] = 0
        if sc[E.S_OCN]:
            self._out(self.outc[:int(sc[E.S_OCN])], "credit")
            sc[E.S_OCN] = 0

    def _tails(self, td: np.ndarray) -> None:
        """Count tails down per transfer (rows: tag, packets, cycle ejected), grouped by tag
        (:func:`engine.group_tails`) for a batch of more than a few; a tag with more tails in the
        batch than packets left (a transfer that completes and is sent again in one batch) is
        counted one record at a time."""
        rem, completed = self.remaining, self.completed
        if td.shape[1] > 16:
            rows = zip(*(a.tolist() for a in E.group_tails(td)))
        else:
            rows = [(tag, 1, a, npk) for tag, npk, a in td.T.tolist()]
        for tag, k, a, npk in rows:
            ent = rem.get(tag)
            if (npk if ent is None else ent[0]) < k:
                self._tails_one_by_one(td[:, td[0] == tag])
                continue
            if ent is None:
                ent = rem[tag] = [npk, a]
            ent[0] -= k
            if a > ent[1]:
                ent[1] = a
            if ent[0] == 0:
                del rem[tag]
                completed.append((tag, ent[1]))

    def _tails_one_by_one(self, td: np.ndarray) -> None:
        rem = self.remaining
        for tag, npk, a in td.T.tolist():
            ent = rem.get(tag)
            if ent is None:
                ent = rem[tag] = [npk, a]
            ent[0] -= 1
            ent[1] = max(ent[1], a)
            if ent[0] == 0:
                del rem[tag]
                self.completed.append((tag, ent[1]))

    # --- leaving the region -----------------------------------------------------------------------
    def _out(self, rows: np.ndarray, kind: str) -> None:
        if kind == "credit":  # a credit travels stamped with the cycle it is applied
            rows = rows.copy()
            rows[:, 0] += self.routers.cd
        if len(self.far_lps) == 1:
            self.out.setdefault(self.far_lps[0], {}).setdefault(kind, []).append(rows.copy())
            return
        lps = self.lp_of_router[rows[:, 1]]
        for lp in np.unique(lps).tolist():
            self.out.setdefault(lp, {}).setdefault(kind, []).append(rows[lps == lp])

    def take_outbox(self) -> dict[int, dict[str, np.ndarray]]:
        """Rows leaving the region since the last call, per destination LP and kind: ``flit``
        (n, 4 + len(FIELDS)) = cycle read, router, port, vc, FIELDS; ``credit`` (n, 4) = cycle
        applied (read + credit delay), router, port, vc."""
        out = {lp: {k: (recs[0] if len(recs) == 1 else np.concatenate(recs)) for k, recs in kinds.items()}
               for lp, kinds in self.out.items()}
        self.out = {}
        return out

"""Network interfaces of one region: packet generation (synthetic traffic or transfers), source
queues, injection state and ejection statistics, as int64 arrays the compiled loop advances.

Injection mirrors BookSim2's ``TrafficManager::_Step``: one flit per NI port per cycle (a core's NI
has ``interface.ni_ports`` ports, a memory controller's ``mc_ports``; one each is BookSim2's
terminal with one injection and one ejection channel). Each port has its own source queue, and a
transfer joins the port of its NI with the fewest flits queued, so an NI with k ports sends k
transfers side by side (one transfer follows one path, whose links carry a flit a cycle). A head picks
the next free, non-full VC round-robin after the last one used, packets are timed from creation
(``ctime``, source queueing included) and from injection of the head (``itime``). Random draws
are computed here with numpy in chunks of ``K`` per node (the compiled loop asks for the next
chunk), so they are the same values whatever the chunking. Knows nothing of LPs or picoseconds.
"""

from __future__ import annotations

import numpy as np

from atleus_dist.hw.noc import engine as E
from atleus_dist.hw.noc.traffic import destinations, geometric_gaps
from atleus_dist.kernel.rng import keep_one_in

PKT_SHIFT = E.PKT_SHIFT


class Interfaces:
    """The NIs of the region's routers ``rids``: ``nn`` per router (the core's, and with
    ``mc_ports`` > 0 a memory controller's), node ``l * nn + j`` = NI j of local router l, each
    a set of ports (columns of ``ni``, ``nq``, ``nsv``) with a queue each. Node ids outside
    (transfers, ``F_DEST``): the router for a core's NI, ``n_routers + router`` for a memory
    controller's. Only core NIs generate synthetic traffic (draws ``gd`` per router)."""

    def __init__(self, cfg, topo, rids: np.ndarray, sc: np.ndarray) -> None:
        self.cfg, self.topo, self.sc = cfg, topo, sc
        self.rids = np.asarray(rids, dtype=np.int64)
        R, V = len(self.rids), cfg.router.num_vcs
        self.R = R
        self.np_, self.mp = topo.ni_ports, topo.mc_ports
        self.nn = 2 if self.mp else 1
        self.L = self.np_ + self.mp
        n_nodes = R * self.nn
        self.rate = cfg.traffic.rate
        self.seed = cfg.seed
        ph = cfg.phases
        self.w0, self.w1 = ph.warmup_cycles, ph.warmup_cycles + ph.measure_cycles
        # each node's first port column and port count; the core NIs' first columns generate
        j = np.tile(np.arange(self.nn), R)
        self.col0 = np.repeat(np.arange(R) * self.L, self.nn) + np.where(j == 0, 0, self.np_)
        self.nports = np.where(j == 0, self.np_, self.mp)
        self.gen_col = np.arange(R) * self.L
        self.explicit = np.where(j == 0, E.EXPLICIT0, E.MC_EXPLICIT0).astype(np.int64)  # next explicit index
        self.ni = np.zeros((E.N_NI, R * self.L), dtype=np.int64)
        self.ni[E.N_CURVC] = -1
        self.ni[E.N_LASTVC] = -1
        self.ni[E.N_NEXTGEN] = E.NEVER
        self.nsv = np.zeros((E.N_SV, R * self.L, V), dtype=np.int64)
        self.nst = np.zeros((E.N_NS, n_nodes), dtype=np.int64)  # per node (l * nn + j)
        self.K = 1024  # draws per node and chunk: the values do not depend on it, fewer trips to Python
        self.gd = np.zeros((2, R, self.K), dtype=np.int64)  # gaps, destinations of draws chunk..chunk+K-1
        if self.rate > 0:
            self._refill(np.arange(R))
            self.ni[E.N_NEXTGEN, self.gen_col] = self.gd[0, :, 0] - 1
        self.nq = np.zeros((E.N_Q, R * self.L, 16), dtype=np.int64)
        self.queued = np.zeros((R * self.L + 63) // 64, dtype=np.int64)  # bit set: NI ports with an entry
        # rows the loop appends (room for many cycles: a full buffer sends the loop back to Python)
        self.pko = np.zeros((len(E.PACKET_COLS), max(4 * R + 1, 8192)), dtype=np.int64)
        self._packets: list[dict] = []
        self.keep_every = 1  # packet rows kept: one in keep_every (by packet id; the chip LP's sampling)

    # --- statistics views (one row per node, partition independent) ------------------------------
    gen_meas = property(lambda self: self.nst[E.NS_GENMEAS])
    acc_flits = property(lambda self: self.nst[E.NS_ACC])
    flat_n = property(lambda self: self.nst[E.NS_FLATN])
    flat_sum = property(lambda self: self.nst[E.NS_FLATSUM])
    flat_sumsq = property(lambda self: self.nst[E.NS_FLATSUMSQ])

    # --- services the compiled loop asks for ------------------------------------------------------
    def _refill(self, n: np.ndarray) -> None:
        """The next chunk of draws for local routers ``n`` (their core NIs)."""
        c0 = self.gen_col[n]
        base = self.ni[E.N_GENCOUNT, c0]
        self.ni[E.N_CHUNK, c0] = base
        idx = (base[:, None] + np.arange(self.K)).ravel()
        src = np.repeat(self.rids[n], self.K)
        self.gd[0, n] = geometric_gaps(self.seed, self.rate, src, idx).reshape(len(n), self.K)
        self.gd[1, n] = destinations(self.cfg.traffic, self.topo, self.seed, src, idx).reshape(len(n), self.K)

    def refill(self, c: int) -> None:
        """Nodes that generated their chunk's last packet at cycle c get the next chunk."""
        n = np.flatnonzero(self.ni[E.N_NEXTGEN, self.gen_col] == -1)
        self._refill(n)
        self.ni[E.N_NEXTGEN, self.gen_col[n]] = c + self.gd[0, n, 0]

    def grow(self) -> None:
        """Double the source queues, unrolling each ring so it starts at 0."""
        old = self.nq.shape[2]
        idx = (self.ni[E.N_QHEAD][:, None] + np.arange(old)) % old
        new = np.zeros((E.N_Q, self.nq.shape[1], 2 * old), dtype=np.int64)
        for k in range(E.N_Q):
            new[k, :, :old] = np.take_along_axis(self.nq[k], idx, axis=1)
        self.nq = new
        self.ni[E.N_QHEAD] = 0

    # --- explicit packets -------------------------------------------------------------------------
    def enqueue(self, c: int, l: int, dest: int, flits: int, tag: int = -1, npk: int = 0,
                count: int = 1, last: int | None = None) -> int:
        """Queue ``count`` packets to node ``dest`` at local node ``l`` (created at cycle c) as one
        entry, on the node's port with the fewest flits queued: all of ``flits`` flits but the
        last, of ``last``. Returns the per-source index of
        the first; explicit packets use indices from ``EXPLICIT0`` (a core's NI) or
        ``MC_EXPLICIT0`` (a memory controller's) up, apart from synthetic ones.
        ``tag``/``npk``: the transfer they belong to and its packet count (carried by every flit
        to the destination)."""
        q = int(self.col0[l])
        if self.nports[l] > 1:  # the node's port with the fewest flits queued (ties: first)
            q += int(np.argmin(self.ni[E.N_QFLITS, q:q + int(self.nports[l])]))
        if self.ni[E.N_QLEN, q] >= self.nq.shape[2] - 1:
            self.grow()
        qcap = self.nq.shape[2]
        pos = (self.ni[E.N_QHEAD, q] + self.ni[E.N_QLEN, q]) % qcap
        k = int(self.explicit[l])
        self.explicit[l] += count
        last = flits if last is None else last
        for row, v in ((E.Q_CTIME, c), (E.Q_DEST, dest), (E.Q_IDX, k), (E.Q_SIZE, flits if count > 1 else last),
                       (E.Q_TAG, tag), (E.Q_NPK, npk), (E.Q_COUNT, count), (E.Q_LAST, last)):
            self.nq[row, q, pos] = v
        self.ni[E.N_QLEN, q] += 1
        w, b = divmod(q, 64)
        word = (int(self.queued[w]) | (1 << b)) & ((1 << 64) - 1)
        self.queued[w] = word - (1 << 64) if word >> 63 else word  # bit 63: the int64's sign
        self.ni[E.N_QFLITS, q] += (count - 1) * flits + last
        self.sc[E.S_QUEUED] += 1
        self.sc[E.S_NEXT] = min(int(self.sc[E.S_NEXT]), int(self.sc[E.S_CYCLE]))
        if self.w0 <= c < self.w1:
            self.nst[E.NS_GENMEAS, l] += count
        return k

    def flush_packets(self) -> None:
        """Packet rows the loop wrote (``pko``) into the list of column chunks; with ``keep_every``
        > 1 only the rows the LP will keep (:func:`~atleus_dist.kernel.rng.keep_one_in`, a hash of
        the packet id alone, so sampling here or later keeps the same rows): a chip run with one
        LP streams its rows every few windows of ~1/200 of the run, and held them all before
        (Llama-2-7B s512: 3.2 GB)."""
        n = int(self.sc[E.S_PKN])
        if n:
            cols = {name: self.pko[i, :n] for i, name in enumerate(E.PACKET_COLS)}
            keep = keep_one_in(cols["pkt"], self.keep_every) if self.keep_every > 1 else slice(None)
            self._packets.append({name: v[keep].copy() for name, v in cols.items()})
            self.sc[E.S_PKN] = 0

    def held_packet_rows(self) -> int:
        """Packet rows waiting to be taken (:meth:`take_packets_rows`)."""
        return int(self.sc[E.S_PKN]) + sum(len(c["pkt"]) for c in self._packets)

    def take_packets_rows(self) -> list[dict]:
        """Packets ejected since the last call (column chunks), forgotten here: for streaming."""
        self.flush_packets()
        out, self._packets = self._packets, []
        return out

    @property
    def packets(self) -> list[dict]:
        """Measured packets ejected so far, as column chunks (``engine.PACKET_COLS``)."""
        self.flush_packets()
        return self._packets

"""Input-queued VC routers of one NoC region, advanced one cycle at a time, vectorised across all
routers, ports and VCs of the region with numpy.

Semantics follow BookSim2's ``iq_router`` (non-speculative): lookahead or ``routing_delay``
routing, separable input-first VC and switch allocators with round-robin arbiters (same pointer
updates, same port order), credit-based flow control with ``credit_delay`` and
``wait_for_tail_credit``. Timing per hop is routing + VA + SA + crossbar + link cycles; a flit's
credit reaches the upstream allocator ``link + 1 + credit_delay`` cycles after it left the buffer.
Allocation results are applied when they are decided (exact for the 1-cycle allocators used in
validation). Knows nothing of LPs, messages or picoseconds: it returns what leaves the region.
"""

from __future__ import annotations

import numpy as np

IDLE, VA, ACTIVE = 0, 1, 2


class FlitPool:
    """Flits resident in a region, stored column-wise; slots are recycled through a free list."""

    FIELDS = ("pkt", "fidx", "size", "src", "dest", "ctime", "itime", "hitime", "hops", "meas")

    def __init__(self, capacity: int = 1024) -> None:
        self.cols = {f: np.zeros(capacity, dtype=np.int64) for f in self.FIELDS}
        self.free = list(range(capacity - 1, -1, -1))

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.__dict__["cols"][name]
        except KeyError:
            raise AttributeError(name) from None

    def alloc(self, n: int) -> np.ndarray:
        while len(self.free) < n:
            old = len(self.cols["pkt"])
            for f in self.FIELDS:
                self.cols[f] = np.concatenate([self.cols[f], np.zeros(old, dtype=np.int64)])
            self.free.extend(range(2 * old - 1, old - 1, -1))
        out = self.free[-n:] if n else []
        del self.free[len(self.free) - n:]
        return np.array(out[::-1], dtype=np.int64)

    def release(self, slots: np.ndarray) -> None:
        self.free.extend(slots.tolist())

    def store(self, slots: np.ndarray, values: dict) -> None:
        for f in self.FIELDS:
            self.cols[f][slots] = values[f]

    def load(self, slots: np.ndarray) -> dict:
        return {f: self.cols[f][slots] for f in self.FIELDS}


def _first_per_group(group: np.ndarray, key: np.ndarray, key_range: int) -> np.ndarray:
    """Index of the element with the smallest key in each group (keys unique within a group,
    0 <= key < key_range)."""
    if len(group) == 1:
        return np.zeros(1, dtype=np.int64)
    order = np.argsort(group * key_range + key, kind="stable")
    g = group[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = g[1:] != g[:-1]
    return order[first]


class RouterArray:
    """The routers ``rids`` (global ids) of one region: buffers, VC and credit state, arbiters."""

    def __init__(self, cfg, topo, rids: np.ndarray) -> None:
        rc = cfg.router
        self.topo = topo
        self.rids = np.asarray(rids, dtype=np.int64)
        self.R, self.P, self.V = len(self.rids), topo.n_ports, rc.num_vcs
        self.B = rc.vc_buf_size_flits
        self.rd, self.vad, self.sad = rc.routing_delay_cycles, rc.vc_alloc_delay_cycles, rc.sw_alloc_delay_cycles
        self.cb, self.cd = rc.crossbar_delay_cycles, rc.credit_delay_cycles
        self.wft = rc.wait_for_tail_credit
        n_vc, n_rp = self.R * self.P * self.V, self.R * self.P
        self.buf = np.zeros((n_vc, self.B), dtype=np.int64)
        self.bhead = np.zeros(n_vc, dtype=np.int64)
        self.bcnt = np.zeros(n_vc, dtype=np.int64)
        self.state = np.zeros(n_vc, dtype=np.int8)
        self.ready = np.zeros(n_vc, dtype=np.int64)
        self.route = np.zeros(n_vc, dtype=np.int64)
        self.ovc = np.zeros(n_vc, dtype=np.int64)
        # downstream buffer state seen from each output VC (BookSim2 BufferState)
        self.occ = np.zeros(n_vc, dtype=np.int64)
        self.in_use = np.zeros(n_vc, dtype=bool)
        self.tail_sent = np.zeros(n_vc, dtype=bool)
        self.va_in_ptr = np.zeros(n_vc, dtype=np.int64)
        self.va_out_ptr = np.zeros(n_vc, dtype=np.int64)
        self.sw_in_ptr = np.zeros(n_rp, dtype=np.int64)
        self.sw_out_ptr = np.zeros(n_rp, dtype=np.int64)
        self.sw_off = np.zeros(n_rp, dtype=np.int64)
        self.busy_until = np.zeros(n_rp, dtype=np.int64)
        g = self.rids
        self.out_router = topo.out_router[g].reshape(-1)
        self.out_inport = topo.out_inport[g].reshape(-1)
        self.lat = topo.latency_cycles[g].reshape(-1)
        self.busy = topo.busy_cycles[g].reshape(-1)
        self.link_flits = np.zeros(n_rp, dtype=np.int64)
        self.buffered = 0  # flits in input buffers, to skip idle cycles cheaply
        self.va_waiting = 0

    # --- state changes from outside -----------------------------------------------------------
    def arrive(self, c: int, l: np.ndarray, ip: np.ndarray, vc: np.ndarray, slots: np.ndarray,
               dest: np.ndarray) -> None:
        """Flits read at cycle c into input VCs (at most one per input port per cycle)."""
        q = (l * self.P + ip) * self.V + vc
        self.buf[q, (self.bhead[q] + self.bcnt[q]) % self.B] = slots
        self.bcnt[q] += 1
        self.buffered += len(q)
        idle = self.state[q] == IDLE
        if idle.any():
            qi = q[idle]
            self.state[qi] = VA
            self.ready[qi] = c + self.rd
            self.route[qi] = self.topo.route(self.rids[l[idle]], dest[idle])
            self.va_waiting += len(qi)

    def credit(self, l: np.ndarray, op: np.ndarray, vc: np.ndarray) -> None:
        """Credits reaching the allocators (after credit_delay) for output VCs."""
        oq = (l * self.P + op) * self.V + vc
        np.subtract.at(self.occ, oq, 1)
        if self.wft:
            free = (self.occ[oq] == 0) & self.tail_sent[oq]
            self.in_use[oq[free]] = False

    # --- one cycle ----------------------------------------------------------------------------
    def active(self) -> bool:
        return self.buffered > 0

    def step(self, c: int, pool: FlitPool, measuring: bool) -> dict | None:
        """VC allocation then switch allocation at cycle c; returns the flits that were granted."""
        if self.va_waiting:
            self._vc_alloc(c)
        return self._sw_alloc(c, pool, measuring)

    def _vc_alloc(self, c: int) -> None:
        V, PV = self.V, self.P * self.V
        cand = np.flatnonzero((self.state == VA) & (self.ready <= c))
        if not cand.size:
            return
        self.ready[cand] = c + self.vad
        l, iv = cand // PV, cand % PV
        o = self.route[cand]
        base = (l * self.P + o) * V
        lanes = np.arange(V)
        oq_all = base[:, None] + lanes
        key = (o[:, None] * V + lanes - self.va_in_ptr[cand][:, None]) % PV
        key = np.where(self.in_use[oq_all], PV, key)
        ov = key.argmin(axis=1)
        ok = key[np.arange(len(cand)), ov] < PV
        if not ok.any():
            return
        cand, iv, o, ov = cand[ok], iv[ok], o[ok], ov[ok]
        oq = base[ok] + ov
        win = _first_per_group(oq, (iv - self.va_out_ptr[oq]) % PV, PV)
        q, oq, o, ov, iv = cand[win], oq[win], o[win], ov[win], iv[win]
        self.in_use[oq] = True
        self.tail_sent[oq] = False
        self.state[q] = ACTIVE
        self.ovc[q] = ov
        self.va_in_ptr[q] = (o * V + ov + 1) % PV
        self.va_out_ptr[oq] = (iv + 1) % PV
        self.va_waiting -= len(q)

    def _sw_alloc(self, c: int, pool: FlitPool, measuring: bool) -> dict | None:
        P, V = self.P, self.V
        cand = np.flatnonzero((self.state == ACTIVE) & (self.ready <= c) & (self.bcnt > 0))
        if not cand.size:
            return None
        self.ready[cand] = c + self.sad
        rp_in = cand // V
        v = cand % V
        l = rp_in // P
        o = self.route[cand]
        rp_out = l * P + o
        oq = rp_out * V + self.ovc[cand]
        ok = (self.occ[oq] < self.B) & (self.busy_until[rp_out] <= c)
        if not ok.all():
            cand, rp_in, v, l, o, rp_out, oq = (a[ok] for a in (cand, rp_in, v, l, o, rp_out, oq))
            if not cand.size:
                return None
        ip = rp_in % P
        key_in = ((o - self.sw_in_ptr[rp_in]) % P) * V + (v - self.sw_off[rp_in]) % V
        w = _first_per_group(rp_in, key_in, P * V)
        cand, rp_in, v, l, o, rp_out, oq, ip = (a[w] for a in (cand, rp_in, v, l, o, rp_out, oq, ip))
        w = _first_per_group(rp_out, (ip - self.sw_out_ptr[rp_out]) % P, P)
        q, rp_in, v, l, o, rp_out, oq, ip = (a[w] for a in (cand, rp_in, v, l, o, rp_out, oq, ip))
        # grant: arbiter state as BookSim2 updates it on a match
        self.sw_in_ptr[rp_in] = (o + 1) % P
        self.sw_out_ptr[rp_out] = (ip + 1) % P
        self.sw_off[rp_in] = (v + 1) % V
        self.busy_until[rp_out] = c + self.busy[rp_out]
        slots = self.buf[q, self.bhead[q]]
        self.bhead[q] = (self.bhead[q] + 1) % self.B
        self.bcnt[q] -= 1
        self.buffered -= len(q)
        pool.hops[slots] += 1
        self.occ[oq] += 1
        tail = pool.fidx[slots] == pool.size[slots] - 1
        if tail.any():
            self.tail_sent[oq[tail]] = True
            if not self.wft:
                self.in_use[oq[tail]] = False
            qt = q[tail]
            more = self.bcnt[qt] > 0
            self.state[qt[~more]] = IDLE
            if more.any():
                qn = qt[more]
                self.state[qn] = VA
                self.ready[qn] = c + self.sad + self.rd
                nxt = self.buf[qn, self.bhead[qn]]
                self.route[qn] = self.topo.route(self.rids[qn // (P * V)], pool.dest[nxt])
                self.va_waiting += len(qn)
        if measuring:
            self.link_flits[rp_out] += 1
        return {"slots": slots, "l": l, "ip": ip, "v": v, "o": o, "ov": self.ovc[q], "rp_in": rp_in,
                "rp_out": rp_out}

"""State of the input-queued VC routers of one NoC region and of the flits resident in it, as
int64 numpy arrays that the compiled loop (:mod:`engine`) advances.

Semantics follow BookSim2's ``iq_router`` (non-speculative): lookahead or ``routing_delay``
routing, separable input-first VC and switch allocators with round-robin arbiters (same pointer
updates, same port order), credit-based flow control with ``credit_delay`` and
``wait_for_tail_credit``. Timing per hop is routing + VA + SA + crossbar + link cycles; a flit's
credit reaches the upstream allocator ``link + 1 + credit_delay`` cycles after it left the buffer.
Allocation results are applied when they are decided (exact for the 1-cycle allocators used in
validation). Knows nothing of LPs, messages or picoseconds.
"""

from __future__ import annotations

import numpy as np

from atleus_dist.hw.noc import engine as E


class FlitPool:
    """Flits resident in a region, one row per slot (columns ``engine.FIELDS``); free slots are a
    stack (``free[:n]``) that the compiled loop pops and pushes, its size kept in ``sc``."""

    FIELDS = E.FIELDS

    def __init__(self, sc: np.ndarray, capacity: int, min_free: int = 0) -> None:
        self.sc = sc
        self.min_free = min_free  # every grow leaves at least this many free: a cycle's injections
        self.data = np.zeros((capacity, len(self.FIELDS)), dtype=np.int64)
        self.free = np.arange(capacity - 1, -1, -1, dtype=np.int64)
        sc[E.S_NFREE] = capacity

    def grow(self, need: int) -> None:
        need = max(need, self.min_free)
        while int(self.sc[E.S_NFREE]) < need:
            old = self.data.shape[0]
            self.data = np.concatenate([self.data, np.zeros_like(self.data)], axis=0)
            n = int(self.sc[E.S_NFREE])
            free = np.empty(2 * old, dtype=np.int64)
            free[:old] = np.arange(2 * old - 1, old - 1, -1)
            free[old:old + n] = self.free[:n]
            self.free = free
            self.sc[E.S_NFREE] = old + n

    def alloc(self, n: int) -> np.ndarray:
        self.grow(n)
        top = int(self.sc[E.S_NFREE])
        out = self.free[top - n:top][::-1].copy()
        self.sc[E.S_NFREE] = top - n
        return out

    def store(self, slots: np.ndarray, values: dict) -> None:
        for i, f in enumerate(self.FIELDS):
            self.data[slots, i] = values[f]


class RouterArray:
    """The routers ``rids`` (global ids) of one region: buffers, VC and credit state, arbiters."""

    def __init__(self, cfg, topo, rids: np.ndarray, g2l: np.ndarray) -> None:
        rc = cfg.router
        self.rids = np.asarray(rids, dtype=np.int64)
        self.R, self.P, self.V = len(self.rids), topo.n_ports, rc.num_vcs
        self.B = rc.vc_buf_size_flits
        self.cd = rc.credit_delay_cycles
        n_vc, n_rp = self.R * self.P * self.V, self.R * self.P
        self.buf = np.zeros((n_vc, self.B), dtype=np.int32)  # pool slots (int32: half the cache lines of the hottest array)
        # one row per VC / port / router, its fields side by side (what the loop reads together)
        self.rv = np.zeros((n_vc, E.N_RV), dtype=np.int64)
        self.rp = np.zeros((n_rp, E.N_RP), dtype=np.int64)
        self.rr = np.zeros((self.R, E.N_RR), dtype=np.int64)
        # bit sets the loop keeps equal to the rows (engine_state.Routers; rebuilt from the rows by
        # the loop when sc[S_MASKS_OK] is 0, as after a re-slice)
        if self.V > 64 or self.P > 64:
            raise ValueError(f"the NoC engine holds a port's VCs and a router's ports in 64-bit sets: "
                             f"{self.V} VCs, {self.P} ports")
        self.va_vcs = np.zeros(n_rp, dtype=np.int64)
        self.sa_vcs = np.zeros(n_rp, dtype=np.int64)
        self.free_vcs = np.zeros(n_rp, dtype=np.int64)
        self.va_ports = np.zeros(self.R, dtype=np.int64)
        self.sa_ports = np.zeros(self.R, dtype=np.int64)
        self.busy = np.zeros((self.R + 63) // 64, dtype=np.int64)
        self.va_wait = np.zeros(n_rp, dtype=np.int64)
        self.sa_wait = np.full(n_vc, -1, dtype=np.int64)
        g = self.rids
        self.st = np.zeros((n_rp, E.N_ST), dtype=np.int64)
        self.st[:, E.ST_OUTR] = topo.out_router[g].reshape(-1)
        self.st[:, E.ST_OUTIP] = topo.out_inport[g].reshape(-1)
        self.st[:, E.ST_LAT] = topo.latency_cycles[g].reshape(-1)
        self.st[:, E.ST_BUSY] = topo.busy_cycles[g].reshape(-1)
        outr = self.st[:, E.ST_OUTR]
        self.st[:, E.ST_DOWNL] = np.where(outr >= 0, g2l[np.maximum(outr, 0)], -1)
        # longest delay from a decision to the cycle its effect is read (sizes the event calendar)
        busy = int(topo.busy_cycles.max())
        lat = int(topo.latency_cycles.max())
        ll = cfg.interface.local_latency_cycles
        self.max_delay = (rc.sw_alloc_delay_cycles + rc.crossbar_delay_cycles + busy + lat + ll
                          + rc.credit_delay_cycles + 2)

    @property
    def link_flits(self) -> np.ndarray:
        return self.rp[:, E.RP_LINKFLITS].copy()

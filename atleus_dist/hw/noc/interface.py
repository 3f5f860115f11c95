"""Network interfaces of one region: packet generation (synthetic traffic or transfers), source
queues, injection into the router's local input port with the source-side credit state, and
ejection (reassembly, latency statistics, transfer completion).

Injection mirrors BookSim2's ``TrafficManager::_Step``: one flit per node per cycle, a head picks
the next free, non-full VC round-robin after the last one used, packets are timed from creation
(``ctime``, source queueing included) and from injection of the head (``itime``). Knows nothing of
LPs or picoseconds.
"""

from __future__ import annotations

import numpy as np

from atleus_dist.hw.noc.traffic import destinations, geometric_gaps

PKT_SHIFT = 32  # packet id = source node << 32 | per-source index


class Interfaces:
    def __init__(self, cfg, topo, rids: np.ndarray) -> None:
        self.cfg, self.topo = cfg, topo
        self.rids = np.asarray(rids, dtype=np.int64)
        R, V = len(self.rids), cfg.router.num_vcs
        self.R, self.V, self.B = R, V, cfg.router.vc_buf_size_flits
        self.size = cfg.interface.packet_flits
        self.rate = cfg.traffic.rate
        self.seed = cfg.seed
        ph = cfg.phases
        self.w0, self.w1 = ph.warmup_cycles, ph.warmup_cycles + ph.measure_cycles
        self.gen_count = np.zeros(R, dtype=np.int64)
        self.explicit = np.zeros(R, dtype=np.int64)
        # draws k .. k+K-1 of every node's streams, precomputed in chunks (same values as one by one)
        self.K = 64
        self.chunk = np.zeros(R, dtype=np.int64)
        self.gaps = np.zeros((R, self.K), dtype=np.int64)
        self.dests = np.zeros((R, self.K), dtype=np.int64)
        if self.rate > 0:
            self._refill(np.arange(R))
            self.next_gen = self.gaps[:, 0] - 1
        else:
            self.next_gen = np.full(R, np.iinfo(np.int64).max, dtype=np.int64)
        self.qcap = 16
        self.q_ctime = np.zeros((R, self.qcap), dtype=np.int64)
        self.q_dest = np.zeros((R, self.qcap), dtype=np.int64)
        self.q_idx = np.zeros((R, self.qcap), dtype=np.int64)
        self.q_size = np.zeros((R, self.qcap), dtype=np.int64)
        self.qhead = np.zeros(R, dtype=np.int64)
        self.qlen = np.zeros(R, dtype=np.int64)
        self.queued = 0
        self.cur_fidx = np.zeros(R, dtype=np.int64)
        self.cur_vc = np.full(R, -1, dtype=np.int64)
        self.cur_hitime = np.zeros(R, dtype=np.int64)
        self.src_occ = np.zeros((R, V), dtype=np.int64)
        self.src_in_use = np.zeros((R, V), dtype=bool)
        self.src_tail_sent = np.zeros((R, V), dtype=bool)
        self.last_vc = np.full(R, -1, dtype=np.int64)
        self.wft = cfg.router.wait_for_tail_credit
        # per-node statistics (partition independent, written as one row per node)
        self.gen_meas = np.zeros(R, dtype=np.int64)
        self.acc_flits = np.zeros(R, dtype=np.int64)
        self.flat_n = np.zeros(R, dtype=np.int64)
        self.flat_sum = np.zeros(R, dtype=np.int64)
        self.flat_sumsq = np.zeros(R, dtype=np.int64)
        self.packets: list[dict] = []

    # --- generation ---------------------------------------------------------------------------
    def next_event(self) -> int:
        return int(self.next_gen.min()) if self.R else np.iinfo(np.int64).max

    def _grow(self) -> None:
        old = self.qcap
        for name in ("q_ctime", "q_dest", "q_idx", "q_size"):
            arr = getattr(self, name)
            new = np.zeros((self.R, 2 * old), dtype=np.int64)
            # unroll each ring so it starts at 0
            idx = (self.qhead[:, None] + np.arange(old)) % old
            new[:, :old] = np.take_along_axis(arr, idx, axis=1)
            setattr(self, name, new)
        self.qhead[:] = 0
        self.qcap = 2 * old

    def generate(self, c: int) -> None:
        n = np.flatnonzero(self.next_gen == c)
        if not n.size:
            return
        k = self.gen_count[n]
        if (self.qlen[n] >= self.qcap).any():
            self._grow()
        pos = (self.qhead[n] + self.qlen[n]) % self.qcap
        self.q_ctime[n, pos] = c
        self.q_dest[n, pos] = self.dests[n, k - self.chunk[n]]
        self.q_idx[n, pos] = k
        self.q_size[n, pos] = self.size
        self.qlen[n] += 1
        self.queued += len(n)
        if self.w0 <= c < self.w1:
            self.gen_meas[n] += 1
        self.gen_count[n] += 1
        off = self.gen_count[n] - self.chunk[n]
        full = off >= self.K
        if full.any():
            self._refill(n[full])
            off = self.gen_count[n] - self.chunk[n]
        self.next_gen[n] = c + self.gaps[n, off]

    def _refill(self, n: np.ndarray) -> None:
        base = np.where(self.gen_count[n] > 0, self.gen_count[n], 0)
        self.chunk[n] = base
        idx = (base[:, None] + np.arange(self.K)).ravel()
        src = np.repeat(self.rids[n], self.K)
        self.gaps[n] = geometric_gaps(self.seed, self.rate, src, idx).reshape(len(n), self.K)
        self.dests[n] = destinations(self.cfg.traffic, self.topo, self.seed, src, idx).reshape(len(n), self.K)

    def enqueue(self, c: int, l: int, dest: int, flits: int) -> int:
        """Queue one packet of ``flits`` flits at local node ``l`` (created at cycle c); returns its
        per-source index. Explicit packets use indices from 1 << 31 up, apart from synthetic ones."""
        if self.qlen[l] >= self.qcap:
            self._grow()
        pos = (self.qhead[l] + self.qlen[l]) % self.qcap
        k = (1 << 31) + int(self.explicit[l])
        self.explicit[l] += 1
        self.q_ctime[l, pos], self.q_dest[l, pos], self.q_idx[l, pos], self.q_size[l, pos] = c, dest, k, flits
        self.qlen[l] += 1
        self.queued += 1
        if self.w0 <= c < self.w1:
            self.gen_meas[l] += 1
        return k

    # --- injection ----------------------------------------------------------------------------
    def credit(self, l: np.ndarray, vc: np.ndarray) -> None:
        np.subtract.at(self.src_occ, (l, vc), 1)
        if self.wft:
            free = (self.src_occ[l, vc] == 0) & self.src_tail_sent[l, vc]
            self.src_in_use[l[free], vc[free]] = False

    def inject(self, c: int, pool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Send at most one flit per node; returns (local router, vc, slot, dest) of sent flits."""
        nodes = np.flatnonzero(self.qlen > 0)
        if not nodes.size:
            return None
        V = self.V
        need = nodes[(self.cur_fidx[nodes] == 0) & (self.cur_vc[nodes] < 0)]
        if need.size:
            lvc = self.last_vc[need]
            tries = np.where(lvc[:, None] < 0, 0, (lvc[:, None] + np.arange(1, V + 1)) % V)
            ok = ~self.src_in_use[need[:, None], tries] & (self.src_occ[need[:, None], tries] < self.B)
            found = ok.any(axis=1)
            pick = tries[np.arange(len(need)), ok.argmax(axis=1)]
            got, vc = need[found], pick[found]
            self.cur_vc[got] = vc
            self.src_in_use[got, vc] = True
            self.src_tail_sent[got, vc] = False
            self.last_vc[got] = vc
        nodes = nodes[self.cur_vc[nodes] >= 0]
        nodes = nodes[self.src_occ[nodes, self.cur_vc[nodes]] < self.B]
        if not nodes.size:
            return None
        vc = self.cur_vc[nodes]
        h = self.qhead[nodes]
        fidx = self.cur_fidx[nodes]
        head = fidx == 0
        self.cur_hitime[nodes[head]] = c
        slots = pool.alloc(len(nodes))
        ctime = self.q_ctime[nodes, h]
        dest = self.q_dest[nodes, h]
        size = self.q_size[nodes, h]
        pool.store(slots, {
            "pkt": (self.rids[nodes] << PKT_SHIFT) | self.q_idx[nodes, h], "fidx": fidx,
            "size": size, "src": self.rids[nodes], "dest": dest, "ctime": ctime, "itime": c,
            "hitime": self.cur_hitime[nodes], "hops": 0,
            "meas": ((ctime >= self.w0) & (ctime < self.w1)).astype(np.int64),
        })
        self.src_occ[nodes, vc] += 1
        tail = fidx == size - 1
        self.src_tail_sent[nodes[tail], vc[tail]] = True
        if not self.wft:
            self.src_in_use[nodes[tail], vc[tail]] = False
        self.cur_fidx[nodes] += 1
        done = nodes[tail]
        self.cur_fidx[done] = 0
        self.cur_vc[done] = -1
        self.qhead[done] = (self.qhead[done] + 1) % self.qcap
        self.qlen[done] -= 1
        self.queued -= len(done)
        return nodes, vc, slots, dest

    # --- ejection -----------------------------------------------------------------------------
    def retire(self, a: int, l: np.ndarray, slots: np.ndarray, pool) -> None:
        if self.w0 <= a < self.w1:
            np.add.at(self.acc_flits, l, 1)
        meas = pool.meas[slots] == 1
        if not meas.any():
            return
        l, s = l[meas], slots[meas]
        lat = a - pool.itime[s]
        np.add.at(self.flat_n, l, 1)
        np.add.at(self.flat_sum, l, lat)
        np.add.at(self.flat_sumsq, l, lat * lat)
        tail = pool.fidx[s] == pool.size[s] - 1
        if tail.any():
            t = s[tail]
            self.packets.append({
                "pkt": pool.pkt[t].copy(), "src": pool.src[t].copy(), "dest": pool.dest[t].copy(),
                "ctime_cycle": pool.ctime[t].copy(), "itime_cycle": pool.hitime[t].copy(),
                "atime_cycle": np.full(len(t), a, dtype=np.int64), "hops": pool.hops[t].copy(),
                "flits": pool.size[t].copy(),
            })

"""A NoC region: the routers and network interfaces of one LP, their in-flight flits and credits,
and the cycle loop that skips idle cycles.

Everything that happens inside a cycle is keyed by (router, port, VC) and is at most one item per
key, so the order in which flits or credits were delivered never matters; flits and credits that
leave the region are returned as records for the LP to send. Per-cycle order follows BookSim2's
``TrafficManager::_Step``: read flits and credits, allocate, inject, eject. Knows nothing of the
kernel's messages or picoseconds (the LP converts).
"""

from __future__ import annotations

import numpy as np

from atleus_dist.hw.noc.interface import Interfaces
from atleus_dist.hw.noc.router import FlitPool, RouterArray

NEVER = np.iinfo(np.int64).max


class Region:
    def __init__(self, cfg, topo, rids: np.ndarray, lp_of_router: np.ndarray, lp_id: int) -> None:
        self.cfg, self.topo = cfg, topo
        self.rids = np.asarray(rids, dtype=np.int64)
        self.lp_id = lp_id
        self.lp_of_router = np.asarray(lp_of_router, dtype=np.int64)
        self.g2l = np.full(topo.n_routers, -1, dtype=np.int64)
        self.g2l[self.rids] = np.arange(len(self.rids))
        self.pool = FlitPool()
        self.routers = RouterArray(cfg, topo, self.rids)
        self.nis = Interfaces(cfg, topo, self.rids)
        self.local_lat = cfg.interface.local_latency_cycles
        self.local_port = topo.local_port
        ph = cfg.phases
        self.w0, self.w1 = ph.warmup_cycles, ph.warmup_cycles + ph.measure_cycles
        self.end_cycle = cfg.end_cycle
        self.cycle = 0  # every cycle < self.cycle has been simulated
        self.pend: dict[int, list] = {}
        self.out: dict[int, dict[str, list]] = {}
        self.cycles_run = 0
        self.flit_hops = 0

    # --- pending events -------------------------------------------------------------------------
    def _push(self, cycle, kind: str, cols: tuple) -> None:
        """Schedule items for a cycle (an int) or for per-item cycles (an array)."""
        if isinstance(cycle, int):
            if len(cols[0]):
                self.pend.setdefault(cycle, []).append((kind, cols))
            return
        if len(cycle) == 0:
            return
        lo, hi = int(cycle.min()), int(cycle.max())
        if lo == hi:
            self.pend.setdefault(lo, []).append((kind, cols))
            return
        for t in np.unique(cycle).tolist():
            m = cycle == t
            self.pend.setdefault(t, []).append((kind, tuple(a[m] for a in cols)))

    def add_remote_flits(self, cycle: np.ndarray, router: np.ndarray, ip: np.ndarray, vc: np.ndarray,
                         fields: dict) -> None:
        slots = self.pool.alloc(len(cycle))
        self.pool.store(slots, fields)
        self._push(cycle, "f", (self.g2l[router], ip, vc, slots))

    def add_remote_credits(self, cycle: np.ndarray, router: np.ndarray, op: np.ndarray, vc: np.ndarray) -> None:
        self._push(cycle + self.routers.cd, "c", (self.g2l[router], op, vc))

    def transfer(self, c: int, src: int, dest: int, nbytes: int) -> list[int]:
        """Packetise a transfer of ``nbytes`` from node ``src`` (in this region) to ``dest``:
        ceil(bits / flit_bits) flits cut into packets of ``packet_flits`` (the last may be
        shorter). Returns the per-source packet indices; their rows in ``packets`` mark completion."""
        if c < self.cycle:
            raise ValueError(f"transfer at cycle {c} is before the region's time {self.cycle}")
        ic = self.cfg.interface
        flits = max(1, -(-int(nbytes) * 8 // ic.flit_bits))
        l = int(self.g2l[src])
        if l < 0:
            raise ValueError(f"node {src} is not in this region")
        sizes = [ic.packet_flits] * (flits // ic.packet_flits) + ([flits % ic.packet_flits] if flits % ic.packet_flits else [])
        return [self.nis.enqueue(c, l, int(dest), s) for s in sizes]

    def next_cycle(self) -> int:
        if self.routers.active() or self.nis.queued:
            return self.cycle
        t = min(self.pend) if self.pend else NEVER
        return max(min(t, self.nis.next_event()), self.cycle)

    # --- the loop -------------------------------------------------------------------------------
    def run(self, horizon_cycle: int) -> None:
        horizon_cycle = min(horizon_cycle, self.end_cycle)
        while True:
            c = self.next_cycle()
            if c >= horizon_cycle:
                break
            self._step(c)
            self.cycle = c + 1
        self.cycle = max(self.cycle, horizon_cycle)

    def _step(self, c: int) -> None:
        ra, ni, pool = self.routers, self.nis, self.pool
        self.cycles_run += 1
        items = self.pend.pop(c, None)
        if items:
            by: dict[str, list] = {}
            for kind, cols in items:
                by.setdefault(kind, []).append(cols)
            for kind, lst in by.items():
                cols = tuple(np.concatenate(x) for x in zip(*lst)) if len(lst) > 1 else lst[0]
                if kind == "f":
                    ra.arrive(c, *cols, pool.dest[cols[3]])
                elif kind == "c":
                    ra.credit(*cols)
                elif kind == "s":
                    ni.credit(*cols)
                else:  # "e": ejected flits reach the node
                    l, slots, ov = cols
                    ni.retire(c, l, slots, pool)
                    # the node returns the credit at once (BookSim2 WriteCredit)
                    back = c + self.local_lat + 1 + ra.cd
                    self._push(int(back), "c", (l, np.full(len(l), self.local_port), ov))
                    pool.release(slots)
        measuring = self.w0 <= c < self.w1
        g = ra.step(c, pool, measuring) if ra.active() else None
        if g is not None:
            self._route_granted(c, g)
        ni.generate(c)
        sent = ni.inject(c, pool)
        if sent is not None:
            l, vc, slots, _dest = sent
            self._push(int(c + self.local_lat + 1), "f",
                       (l, np.full(len(l), self.local_port), vc, slots))

    def _route_granted(self, c: int, g: dict) -> None:
        ra, pool = self.routers, self.pool
        slots, l, ip, v, o, ov = g["slots"], g["l"], g["ip"], g["v"], g["o"], g["ov"]
        self.flit_hops += len(slots)
        u = c + ra.sad - 1  # when BookSim2 frees the buffer slot and sends the credit
        # credits upstream
        from_ni = ip == self.local_port
        if from_ni.any():
            self._push(int(u + self.local_lat + 1), "s", (l[from_ni], v[from_ni]))
        nb = ~from_ni
        if nb.any():
            rp = g["rp_in"][nb]
            up = ra.out_router[rp]
            arrive = u + ra.lat[rp] + 1
            self._send_credits(arrive, up, ip[nb] ^ 1, v[nb])
        # flits downstream
        rp_out = g["rp_out"]
        x = c + ra.sad + ra.cb - 1 + ra.busy[rp_out] - 1
        ej = o == self.local_port
        if ej.any():
            t = x[ej] + self.local_lat + 1
            self._push(t, "e", (l[ej], slots[ej], ov[ej]))
        fw = ~ej
        if fw.any():
            rp = rp_out[fw]
            down = ra.out_router[rp]
            arrive = x[fw] + ra.lat[rp] + 1
            s = slots[fw]
            dl = self.g2l[down]
            here = dl >= 0
            if here.all():
                self._push(arrive, "f", (dl, ra.out_inport[rp], ov[fw], s))
            else:
                if here.any():
                    self._push(arrive[here], "f", (dl[here], ra.out_inport[rp][here], ov[fw][here], s[here]))
                far = ~here
                self._send_flits(arrive[far], down[far], ra.out_inport[rp][far], ov[fw][far], s[far])

    # --- leaving the region -----------------------------------------------------------------------
    def _send_credits(self, arrive, up, op, vc) -> None:
        lu = self.g2l[up]
        here = lu >= 0
        if here.any():
            self._push(arrive[here] + self.routers.cd, "c", (lu[here], op[here], vc[here]))
        if not here.all():
            far = ~here
            for lp in np.unique(self.lp_of_router[up[far]]).tolist():
                m = far & (self.lp_of_router[up] == lp)
                self.out.setdefault(lp, {}).setdefault("credit", []).append(
                    {"cycle": arrive[m], "router": up[m], "port": op[m], "vc": vc[m]})

    def _send_flits(self, arrive, down, ip, vc, slots) -> None:
        data = self.pool.load(slots)
        lps = self.lp_of_router[down]
        for lp in np.unique(lps).tolist():
            m = lps == lp
            rec = {"cycle": arrive[m], "router": down[m], "port": ip[m], "vc": vc[m]}
            rec.update({k: v[m] for k, v in data.items()})
            self.out.setdefault(lp, {}).setdefault("flit", []).append(rec)
        self.pool.release(slots)

    def take_outbox(self) -> dict[int, dict[str, dict]]:
        out = {}
        for lp, kinds in self.out.items():
            out[lp] = {k: {f: np.concatenate([r[f] for r in recs]) for f in recs[0]} for k, recs in kinds.items()}
        self.out = {}
        return out

"""Compiled switch allocation of the NoC engine (BookSim2's separable input-first allocator):
input arbiters over the VCs of each port that hold a flit with an output VC, output arbiters over
the input ports, and the grants - a flit leaves its buffer, its credit goes upstream, and it is
scheduled into the next router, its NI or the region's outbox. Round-robin pointers are read
before any grant of the cycle; ports and VCs are visited through the bit sets of ``Routers`` in
ascending order (see ``engine_router``). Knows nothing of NIs' queues, LPs or picoseconds.
"""

from __future__ import annotations

from numba import njit

from atleus_dist.hw.noc.engine_layout import *  # noqa: F401,F403 - row names of the state arrays
from atleus_dist.hw.noc.engine_router import _mark, _route, _sched, _unmark, _wake_va, lowest


@njit(cache=True, inline="always", _nrt=False)
def _sw_alloc(c, l, ctl, rt, fl, cal, rec):
    """Switch allocation at router ``l``: each input port's arbiter picks one ready VC whose
    output has a credit and a free link; each output's arbiter grants one input port; a granted
    flit leaves its buffer (credit upstream) and is scheduled into the next router, the NI or
    the region's outbox."""
    prm, sc, scr, rv, rp, st = ctl.prm, ctl.sc, ctl.scr, rt.rv, rt.rp, rt.st
    P, V, B, W = prm[P_P], prm[P_V], prm[P_B], prm[P_W]
    sad, l0 = prm[P_SAD], prm[P_L0]
    pool = fl.pool
    cands = 0
    pm = rt.sa_ports[l]
    while pm != 0:  # input arbiters: one VC per input port, ascending port
        ip = lowest(pm)
        pm &= pm - 1
        rpi = l * P + ip
        best, bv = P * V, -1
        vm = rt.sa_vcs[rpi]
        while vm != 0:
            v = lowest(vm)
            vm &= vm - 1
            q = rpi * V + v
            if rv[q, V_READY] > c:
                continue
            rv[q, V_READY] = c + sad
            o = rv[q, V_ROUTE]
            rpo = l * P + o
            oq = rpo * V + rv[q, V_OVC]
            if rv[oq, V_OCC] >= B:
                if sad == 1:  # no credit: parked until one returns (a re-try changes nothing but
                    _unmark(rt, rt.sa_vcs, rt.sa_ports, l, P, ip, v)  # the ready cycle, due again)
                    rt.sa_wait[oq] = q
                continue
            if rp[rpo, RP_BUSYUNTIL] > c:
                continue
            ko, kv = o - rp[rpi, RP_SWIN], v - rp[rpi, RP_SWOFF]  # round-robin distances
            if ko < 0:
                ko += P
            if kv < 0:
                kv += V
            k = ko * V + kv
            if k < best:
                best, bv = k, v
        if bv >= 0:
            scr[4, cands] = ip
            scr[5, cands] = bv
            cands += 1
    outs = 0  # output arbiters: one input port per output port
    for i in range(cands):
        ip = scr[4, i]
        o = rv[(l * P + ip) * V + scr[5, i], V_ROUTE]
        k = ip - rp[l * P + o, RP_SWOUT]
        if k < 0:
            k += P
        if (outs >> o) & 1 == 0 or k < scr[2, o]:
            outs |= 1 << o
            scr[2, o] = k
            scr[3, o] = i
    measuring = prm[P_W0] <= c < prm[P_W1]
    ok = True
    while outs != 0:  # grants, ascending output port
        o = lowest(outs)
        outs &= outs - 1
        i = scr[3, o]
        ip, v = scr[4, i], scr[5, i]
        rpi, rpo = l * P + ip, l * P + o
        q = rpi * V + v
        ov = rv[q, V_OVC]
        oq = rpo * V + ov
        rp[rpi, RP_SWIN] = o + 1 if o + 1 < P else 0
        rp[rpo, RP_SWOUT] = ip + 1 if ip + 1 < P else 0
        rp[rpi, RP_SWOFF] = v + 1 if v + 1 < V else 0
        rp[rpo, RP_BUSYUNTIL] = c + st[rpo, ST_BUSY]
        h = rv[q, V_HEAD]
        slot = rt.buf[q, h]
        h = h + 1 if h + 1 < B else 0
        rv[q, V_HEAD] = h
        cnt = rv[q, V_CNT] - 1
        rv[q, V_CNT] = cnt
        rp[rpi, RP_BUF] -= 1
        sc[S_BUFFERED] -= 1
        rt.rr[l, RR_BUF] -= 1
        pool[slot, F_HOPS] += 1
        rv[oq, V_OCC] += 1
        if pool[slot, F_FIDX] == pool[slot, F_SIZE] - 1:  # tail
            rv[oq, V_TAILSENT] = 1
            if not prm[P_WFT]:
                rv[oq, V_INUSE] = 0
                rt.free_vcs[rpo] |= 1 << ov
                _wake_va(rt, l, P, V, rpo)
            _unmark(rt, rt.sa_vcs, rt.sa_ports, l, P, ip, v)
            if cnt > 0:
                rv[q, V_STATE] = VA
                rv[q, V_READY] = c + sad + prm[P_RD]
                rv[q, V_ROUTE] = _route(prm, rt.coords, rt.rids, l, pool, rt.buf[q, h])
                sc[S_VA] += 1
                rt.rr[l, RR_VA] += 1
                _mark(rt.va_vcs, rt.va_ports, rt.busy, l, P, ip, v)
            else:
                rv[q, V_STATE] = IDLE
        elif cnt == 0:
            _unmark(rt, rt.sa_vcs, rt.sa_ports, l, P, ip, v)
        if measuring:
            rp[rpo, RP_LINKFLITS] += 1
        sc[S_HOPS] += 1
        # the buffer slot is freed and its credit sent at u (BookSim2)
        u = c + sad - 1
        if ip >= l0:  # an NI port: its credit goes to the NI
            ok &= _sched(sc, cal.counts, cal.src, K_SRC, u + prm[P_LL] + 1, W, l * prm[P_L] + ip - l0, v, 0, 0)
        else:
            arrive = u + st[rpi, ST_LAT] + 1
            ul = st[rpi, ST_DOWNL]
            if ul >= 0:
                ok &= _sched(sc, cal.counts, cal.credit, K_CREDIT, arrive + prm[P_CD], W, ul, ip ^ 1, v, 0)
            else:
                outc, j = rec.outc, sc[S_OCN]
                outc[j, 0], outc[j, 1], outc[j, 2], outc[j, 3] = arrive, st[rpi, ST_OUTR], ip ^ 1, v
                sc[S_OCN] = j + 1
        x = c + sad + prm[P_CB] - 1 + st[rpo, ST_BUSY] - 1
        if o >= l0:
            ok &= _sched(sc, cal.counts, cal.eject, K_EJECT, x + prm[P_LL] + 1, W, l, slot, ov, o)
        else:
            arrive = x + st[rpo, ST_LAT] + 1
            dl = st[rpo, ST_DOWNL]
            if dl >= 0:
                ok &= _sched(sc, cal.counts, cal.flit, K_FLIT, arrive, W, dl, st[rpo, ST_OUTIP], ov, slot)
            else:
                outf, j = rec.outf, sc[S_OFN]
                outf[j, 0], outf[j, 1], outf[j, 2], outf[j, 3] = arrive, st[rpo, ST_OUTR], st[rpo, ST_OUTIP], ov
                for f in range(pool.shape[1]):
                    outf[j, 4 + f] = pool[slot, f]
                sc[S_OFN] = j + 1
                fl.free[sc[S_NFREE]] = slot
                sc[S_NFREE] += 1
    if not ok:
        sc[S_FLAG] |= FLAG_ERROR

"""Compiled router pipeline of the NoC engine: dimension-order routing, flit and credit
arrival, the event calendar, and BookSim2's separable input-first VC and switch allocators.

Knows nothing of network interfaces, LPs or picoseconds; called from ``engine.run``.
"""

from __future__ import annotations

from numba import njit

from atleus_dist.hw.noc.engine_layout import *  # noqa: F401,F403 - row names of the state arrays


@njit(cache=True, inline="always", _nrt=False)
def _route(coords, cur, dest, local):
    """Dimension-order routing: the first differing coordinate, + before -."""
    for d in range(coords.shape[1]):
        a, b = coords[cur, d], coords[dest, d]
        if a != b:
            return 2 * d + (0 if a < b else 1)
    return local


@njit(cache=True, inline="always", _nrt=False)
def _arrive(c, l, ip, vc, slot, prm, sc, coords, rids, rv, buf, rr, pool):
    P, V, B = prm[P_P], prm[P_V], prm[P_B]
    q = (l * P + ip) * V + vc
    t = rv[V_HEAD, q] + rv[V_CNT, q]  # < 2B: ring position without a division
    buf[q, t - B if t >= B else t] = slot
    rv[V_CNT, q] += 1
    sc[S_BUFFERED] += 1
    rr[RR_BUF, l] += 1
    if rv[V_STATE, q] == IDLE:
        rv[V_STATE, q] = VA
        rv[V_READY, q] = c + prm[P_RD]
        rv[V_ROUTE, q] = _route(coords, rids[l], pool[F_DEST, slot], P - 1)
        sc[S_VA] += 1
        rr[RR_VA, l] += 1


@njit(cache=True, inline="always", _nrt=False)
def _credit(l, op, vc, prm, rv):
    oq = (l * prm[P_P] + op) * prm[P_V] + vc
    rv[V_OCC, oq] -= 1
    if prm[P_WFT] and rv[V_OCC, oq] == 0 and rv[V_TAILSENT, oq]:
        rv[V_INUSE, oq] = 0


@njit(cache=True, inline="always", _nrt=False)
def _sched(sc, caln, cal, kind, t, W, a, b, c, d):
    """Schedule one item of ``kind`` for cycle t (t - now < W by construction; W a power of two)."""
    s = t & (W - 1)
    i = caln[s, kind]
    if i >= cal.shape[1]:
        return False
    cal[s, i, 0], cal[s, i, 1], cal[s, i, 2], cal[s, i, 3] = a, b, c, d
    caln[s, kind] = i + 1
    sc[S_CALN] += 1
    return True


@njit(cache=True, inline="always", _nrt=False)
def _vc_alloc(c, l, prm, sc, rv, rr, scr):
    P, V = prm[P_P], prm[P_V]
    PV = P * V
    nreq = 0
    for iv in range(PV):
        q = l * PV + iv
        if rv[V_STATE, q] != VA or rv[V_READY, q] > c:
            continue
        rv[V_READY, q] = c + prm[P_VAD]
        o = rv[V_ROUTE, q]
        best, bov = PV, -1
        for ov in range(V):
            if rv[V_INUSE, (l * P + o) * V + ov] == 0:
                k = o * V + ov - rv[V_VAIN, q]
                if k < 0:
                    k += PV
                if k < best:
                    best, bov = k, ov
        if bov >= 0:
            scr[0, nreq] = iv
            scr[1, nreq] = o * V + bov
            nreq += 1
    if nreq == 0:
        return
    for i in range(nreq):  # output VC arbiters: smallest (iv - pointer) wins
        scr[2, scr[1, i]] = PV
    for i in range(nreq):
        loc = scr[1, i]
        k = scr[0, i] - rv[V_VAOUT, l * PV + loc]
        if k < 0:
            k += PV
        if k < scr[2, loc]:
            scr[2, loc] = k
            scr[3, loc] = scr[0, i]
    for i in range(nreq):
        iv, loc = scr[0, i], scr[1, i]
        if scr[3, loc] != iv:
            continue
        q, oq = l * PV + iv, l * PV + loc
        rv[V_INUSE, oq] = 1
        rv[V_TAILSENT, oq] = 0
        rv[V_STATE, q] = ACTIVE
        rv[V_OVC, q] = loc % V
        rv[V_VAIN, q] = loc + 1 if loc + 1 < PV else 0
        rv[V_VAOUT, oq] = iv + 1 if iv + 1 < PV else 0
        sc[S_VA] -= 1
        rr[RR_VA, l] -= 1


@njit(cache=True, inline="always", _nrt=False)
def _sw_alloc(c, l, prm, sc, coords, rids, st, rv, buf, rp, rr, pool, free, caln, calf, calc, cals, cale,
              outf, outc, scr):
    P, V, B, W = prm[P_P], prm[P_V], prm[P_B], prm[P_W]
    sad, local = prm[P_SAD], P - 1
    for ip in range(P):  # input arbiters: one VC per input port
        rpi = l * P + ip
        best, bv = P * V, -1
        for v in range(V):
            q = rpi * V + v
            if rv[V_STATE, q] != ACTIVE or rv[V_READY, q] > c or rv[V_CNT, q] == 0:
                continue
            rv[V_READY, q] = c + sad
            o = rv[V_ROUTE, q]
            rpo = l * P + o
            if rv[V_OCC, rpo * V + rv[V_OVC, q]] >= B or rp[RP_BUSYUNTIL, rpo] > c:
                continue
            ko, kv = o - rp[RP_SWIN, rpi], v - rp[RP_SWOFF, rpi]  # round-robin distances
            if ko < 0:
                ko += P
            if kv < 0:
                kv += V
            k = ko * V + kv
            if k < best:
                best, bv = k, v
        scr[4, ip] = bv
    for o in range(P):
        scr[5, o] = P
        scr[6, o] = -1
    for ip in range(P):  # output arbiters: one input port per output port
        v = scr[4, ip]
        if v < 0:
            continue
        o = rv[V_ROUTE, (l * P + ip) * V + v]
        k = ip - rp[RP_SWOUT, l * P + o]
        if k < 0:
            k += P
        if k < scr[5, o]:
            scr[5, o] = k
            scr[6, o] = ip
    measuring = prm[P_W0] <= c < prm[P_W1]
    ok = True
    for o in range(P):
        ip = scr[6, o]
        if ip < 0:
            continue
        v = scr[4, ip]
        rpi, rpo = l * P + ip, l * P + o
        q = rpi * V + v
        ov = rv[V_OVC, q]
        oq = rpo * V + ov
        rp[RP_SWIN, rpi] = o + 1 if o + 1 < P else 0
        rp[RP_SWOUT, rpo] = ip + 1 if ip + 1 < P else 0
        rp[RP_SWOFF, rpi] = v + 1 if v + 1 < V else 0
        rp[RP_BUSYUNTIL, rpo] = c + st[ST_BUSY, rpo]
        slot = buf[q, rv[V_HEAD, q]]
        rv[V_HEAD, q] = rv[V_HEAD, q] + 1 if rv[V_HEAD, q] + 1 < B else 0
        rv[V_CNT, q] -= 1
        sc[S_BUFFERED] -= 1
        rr[RR_BUF, l] -= 1
        pool[F_HOPS, slot] += 1
        rv[V_OCC, oq] += 1
        if pool[F_FIDX, slot] == pool[F_SIZE, slot] - 1:  # tail
            rv[V_TAILSENT, oq] = 1
            if not prm[P_WFT]:
                rv[V_INUSE, oq] = 0
            if rv[V_CNT, q] > 0:
                rv[V_STATE, q] = VA
                rv[V_READY, q] = c + sad + prm[P_RD]
                rv[V_ROUTE, q] = _route(coords, rids[l], pool[F_DEST, buf[q, rv[V_HEAD, q]]], local)
                sc[S_VA] += 1
                rr[RR_VA, l] += 1
            else:
                rv[V_STATE, q] = IDLE
        if measuring:
            rp[RP_LINKFLITS, rpo] += 1
        sc[S_HOPS] += 1
        # the buffer slot is freed and its credit sent at u (BookSim2)
        u = c + sad - 1
        if ip == local:
            ok &= _sched(sc, caln, cals, K_SRC, u + prm[P_LL] + 1, W, l, v, 0, 0)
        else:
            arrive = u + st[ST_LAT, rpi] + 1
            ul = st[ST_DOWNL, rpi]
            if ul >= 0:
                ok &= _sched(sc, caln, calc, K_CREDIT, arrive + prm[P_CD], W, ul, ip ^ 1, v, 0)
            else:
                j = sc[S_OCN]
                outc[j, 0], outc[j, 1], outc[j, 2], outc[j, 3] = arrive, st[ST_OUTR, rpi], ip ^ 1, v
                sc[S_OCN] = j + 1
        x = c + sad + prm[P_CB] - 1 + st[ST_BUSY, rpo] - 1
        if o == local:
            ok &= _sched(sc, caln, cale, K_EJECT, x + prm[P_LL] + 1, W, l, slot, ov, 0)
        else:
            arrive = x + st[ST_LAT, rpo] + 1
            dl = st[ST_DOWNL, rpo]
            if dl >= 0:
                ok &= _sched(sc, caln, calf, K_FLIT, arrive, W, dl, st[ST_OUTIP, rpo], ov, slot)
            else:
                j = sc[S_OFN]
                outf[j, 0], outf[j, 1], outf[j, 2], outf[j, 3] = arrive, st[ST_OUTR, rpo], st[ST_OUTIP, rpo], ov
                for f in range(pool.shape[0]):
                    outf[j, 4 + f] = pool[f, slot]
                sc[S_OFN] = j + 1
                free[sc[S_NFREE]] = slot
                sc[S_NFREE] += 1
    if not ok:
        sc[S_FLAG] |= F_ERROR

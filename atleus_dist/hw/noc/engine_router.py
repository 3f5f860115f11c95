"""Compiled router pipeline of the NoC engine: dimension-order routing, flit and credit
arrival, the event calendar, and BookSim2's separable input-first VC and switch allocators.

Knows nothing of network interfaces, LPs or picoseconds; called from ``engine.run``.
"""

from __future__ import annotations

from numba import njit

from atleus_dist.hw.noc.engine_layout import *  # noqa: F401,F403 - row names of the state arrays


@njit(cache=True, inline="always", _nrt=False)
def _route(prm, coords, rids, l, pool, slot):
    """Dimension-order routing of the flit in ``slot`` at local router ``l``: the first differing
    coordinate, + before -; at its router, the first ejection port of its destination NI
    (``coords`` has a row per node id). An NI with several ports gets the port chosen in VC
    allocation (:func:`_eject_vc`), where every router's state is read in a fixed order."""
    dest = pool[slot, F_DEST]
    cur = rids[l]
    for d in range(coords.shape[1]):
        a, b = coords[cur, d], coords[dest, d]
        if a != b:
            return 2 * d + (0 if a < b else 1)
    return prm[P_L0] if dest < prm[P_NR] else prm[P_L0] + prm[P_NP]


@njit(cache=True, inline="always", _nrt=False)
def _eject_vc(prm, rv, l, o, q, pool, buf):
    """(port * V + VC) of the free output VC a head at input VC ``q`` routed to ejection port
    ``o`` asks for, or -1: on an NI of one port, the next free VC round-robin (BookSim2); on an
    NI of several, first the port with the fewest VCs allocated (ties: from the packet's index
    plus its input port, mod ports, on - so one source's stream spreads over them and heads from
    different inputs in one cycle start apart), then round-robin within it."""
    P, V = prm[P_P], prm[P_V]
    n = 1
    if o >= prm[P_L0]:
        n = prm[P_NP] if o < prm[P_L0] + prm[P_NP] else prm[P_MP]
    if n == 1:  # BookSim2's VC allocation request, as before wide NIs
        _, pk, _ = _free_vc(rv, l, o, q, P, V)
        return o * V + pk if pk >= 0 else -1
    k = ((pool[buf[q, rv[q, V_HEAD]], F_PKT] & 0xffffffff) + (q // V) % P) % n  # + the input port
    best_used, bov = V + 1, -1
    for _ in range(n):
        op = o + k
        _, pk, used = _free_vc(rv, l, op, q, P, V)
        if pk >= 0 and used < best_used:
            best_used, bov = used, op * V + pk
        k = k + 1 if k + 1 < n else 0
    return bov


@njit(cache=True, inline="always", _nrt=False)
def _free_vc(rv, l, op, q, P, V):
    """Output port ``op`` of router ``l`` for the head at input VC ``q``: (round-robin distance,
    VC) of its next free VC after the input's last grant (VC -1: none free), and how many of its
    VCs are allocated."""
    PV = P * V
    used, pick, pk = 0, PV, -1
    for ov in range(V):
        if rv[(l * P + op) * V + ov, V_INUSE] == 0:
            d = op * V + ov - rv[q, V_VAIN]
            if d < 0:
                d += PV
            if d < pick:
                pick, pk = d, ov
        else:
            used += 1
    return pick, pk, used


@njit(cache=True, inline="always", _nrt=False)
def _arrive(c, l, ip, vc, slot, prm, sc, coords, rids, rv, buf, rp, rr, pool):
    P, V, B = prm[P_P], prm[P_V], prm[P_B]
    q = (l * P + ip) * V + vc
    rp[l * P + ip, RP_BUF] += 1
    t = rv[q, V_HEAD] + rv[q, V_CNT]  # < 2B: ring position without a division
    buf[q, t - B if t >= B else t] = slot
    rv[q, V_CNT] += 1
    sc[S_BUFFERED] += 1
    rr[l, RR_BUF] += 1
    if rv[q, V_STATE] == IDLE:
        rv[q, V_STATE] = VA
        rv[q, V_READY] = c + prm[P_RD]
        rv[q, V_ROUTE] = _route(prm, coords, rids, l, pool, slot)
        sc[S_VA] += 1
        rr[l, RR_VA] += 1


@njit(cache=True, inline="always", _nrt=False)
def _credit(l, op, vc, prm, rv):
    oq = (l * prm[P_P] + op) * prm[P_V] + vc
    rv[oq, V_OCC] -= 1
    if prm[P_WFT] and rv[oq, V_OCC] == 0 and rv[oq, V_TAILSENT]:
        rv[oq, V_INUSE] = 0


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
def _vc_alloc(c, l, prm, sc, rv, rp, rr, scr, pool, buf):
    P, V = prm[P_P], prm[P_V]
    PV = P * V
    nreq = 0
    for ip in range(P):
        if rp[l * P + ip, RP_BUF] == 0:  # a VC in VA holds a flit
            continue
        for iv in range(ip * V, ip * V + V):
            q = l * PV + iv
            if rv[q, V_STATE] != VA or rv[q, V_READY] > c:
                continue
            rv[q, V_READY] = c + prm[P_VAD]
            loc = _eject_vc(prm, rv, l, rv[q, V_ROUTE], q, pool, buf)
            if loc >= 0:
                scr[0, nreq] = iv
                scr[1, nreq] = loc
                nreq += 1
    if nreq == 0:
        return
    for i in range(nreq):  # output VC arbiters: smallest (iv - pointer) wins
        scr[2, scr[1, i]] = PV
    for i in range(nreq):
        loc = scr[1, i]
        k = scr[0, i] - rv[l * PV + loc, V_VAOUT]
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
        rv[oq, V_INUSE] = 1
        rv[oq, V_TAILSENT] = 0
        rv[q, V_STATE] = ACTIVE
        rv[q, V_ROUTE] = loc // V  # the ejection port chosen, on an NI of several
        rv[q, V_OVC] = loc % V
        rv[q, V_VAIN] = loc + 1 if loc + 1 < PV else 0
        rv[oq, V_VAOUT] = iv + 1 if iv + 1 < PV else 0
        sc[S_VA] -= 1
        rr[l, RR_VA] -= 1


@njit(cache=True, inline="always", _nrt=False)
def _sw_alloc(c, l, prm, sc, coords, rids, st, rv, buf, rp, rr, pool, free, caln, calf, calc, cals, cale,
              outf, outc, scr):
    P, V, B, W = prm[P_P], prm[P_V], prm[P_B], prm[P_W]
    sad, l0 = prm[P_SAD], prm[P_L0]
    for ip in range(P):  # input arbiters: one VC per input port
        rpi = l * P + ip
        best, bv = P * V, -1
        if rp[rpi, RP_BUF] == 0:  # only VCs holding a flit compete
            scr[4, ip] = -1
            continue
        for v in range(V):
            q = rpi * V + v
            if rv[q, V_STATE] != ACTIVE or rv[q, V_READY] > c or rv[q, V_CNT] == 0:
                continue
            rv[q, V_READY] = c + sad
            o = rv[q, V_ROUTE]
            rpo = l * P + o
            if rv[rpo * V + rv[q, V_OVC], V_OCC] >= B or rp[rpo, RP_BUSYUNTIL] > c:
                continue
            ko, kv = o - rp[rpi, RP_SWIN], v - rp[rpi, RP_SWOFF]  # round-robin distances
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
        o = rv[(l * P + ip) * V + v, V_ROUTE]
        k = ip - rp[l * P + o, RP_SWOUT]
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
        ov = rv[q, V_OVC]
        oq = rpo * V + ov
        rp[rpi, RP_SWIN] = o + 1 if o + 1 < P else 0
        rp[rpo, RP_SWOUT] = ip + 1 if ip + 1 < P else 0
        rp[rpi, RP_SWOFF] = v + 1 if v + 1 < V else 0
        rp[rpo, RP_BUSYUNTIL] = c + st[rpo, ST_BUSY]
        slot = buf[q, rv[q, V_HEAD]]
        rv[q, V_HEAD] = rv[q, V_HEAD] + 1 if rv[q, V_HEAD] + 1 < B else 0
        rv[q, V_CNT] -= 1
        rp[rpi, RP_BUF] -= 1
        sc[S_BUFFERED] -= 1
        rr[l, RR_BUF] -= 1
        pool[slot, F_HOPS] += 1
        rv[oq, V_OCC] += 1
        if pool[slot, F_FIDX] == pool[slot, F_SIZE] - 1:  # tail
            rv[oq, V_TAILSENT] = 1
            if not prm[P_WFT]:
                rv[oq, V_INUSE] = 0
            if rv[q, V_CNT] > 0:
                rv[q, V_STATE] = VA
                rv[q, V_READY] = c + sad + prm[P_RD]
                rv[q, V_ROUTE] = _route(prm, coords, rids, l, pool, buf[q, rv[q, V_HEAD]])
                sc[S_VA] += 1
                rr[l, RR_VA] += 1
            else:
                rv[q, V_STATE] = IDLE
        if measuring:
            rp[rpo, RP_LINKFLITS] += 1
        sc[S_HOPS] += 1
        # the buffer slot is freed and its credit sent at u (BookSim2)
        u = c + sad - 1
        if ip >= l0:  # an NI port: its credit goes to the NI
            ok &= _sched(sc, caln, cals, K_SRC, u + prm[P_LL] + 1, W, l * prm[P_L] + ip - l0, v, 0, 0)
        else:
            arrive = u + st[rpi, ST_LAT] + 1
            ul = st[rpi, ST_DOWNL]
            if ul >= 0:
                ok &= _sched(sc, caln, calc, K_CREDIT, arrive + prm[P_CD], W, ul, ip ^ 1, v, 0)
            else:
                j = sc[S_OCN]
                outc[j, 0], outc[j, 1], outc[j, 2], outc[j, 3] = arrive, st[rpi, ST_OUTR], ip ^ 1, v
                sc[S_OCN] = j + 1
        x = c + sad + prm[P_CB] - 1 + st[rpo, ST_BUSY] - 1
        if o >= l0:
            ok &= _sched(sc, caln, cale, K_EJECT, x + prm[P_LL] + 1, W, l, slot, ov, o)
        else:
            arrive = x + st[rpo, ST_LAT] + 1
            dl = st[rpo, ST_DOWNL]
            if dl >= 0:
                ok &= _sched(sc, caln, calf, K_FLIT, arrive, W, dl, st[rpo, ST_OUTIP], ov, slot)
            else:
                j = sc[S_OFN]
                outf[j, 0], outf[j, 1], outf[j, 2], outf[j, 3] = arrive, st[rpo, ST_OUTR], st[rpo, ST_OUTIP], ov
                for f in range(pool.shape[1]):
                    outf[j, 4 + f] = pool[slot, f]
                sc[S_OFN] = j + 1
                free[sc[S_NFREE]] = slot
                sc[S_NFREE] += 1
    if not ok:
        sc[S_FLAG] |= F_ERROR

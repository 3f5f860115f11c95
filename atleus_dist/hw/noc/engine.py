"""The compiled cycle loop of a NoC region (numba): routers, network interfaces and the event
calendar, advanced cycle by cycle up to a horizon, skipping idle cycles.

The state lives in plain int64 numpy arrays owned by :class:`Region`, :class:`RouterArray` and
:class:`Interfaces`; rows of the 2-D arrays are named by the constants below. The loop returns
to Python (a non-zero flag, at the end of a cycle) whenever Python must act: refill a node's
random stream (the draws are computed by numpy, so they stay bit-identical), grow a queue or the
flit pool, or drain an output buffer. Semantics are BookSim2's ``iq_router`` and
``TrafficManager::_Step`` as in the numpy version this replaced (same digests): per cycle, read
flits and credits, VC allocation then switch allocation router by router (separable input-first,
round-robin, pointers read before any grant of the cycle), generate, inject one flit per node.
Everything is an integer, so the result does not depend on the machine. Knows nothing of LPs,
messages or picoseconds.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NEVER = np.iinfo(np.int64).max
IDLE, VA, ACTIVE = 0, 1, 2
# prm: parameters
(P_R, P_P, P_V, P_B, P_RD, P_VAD, P_SAD, P_CB, P_CD, P_WFT, P_LL, P_W0, P_W1, P_W, P_K, P_PSIZE,
 N_PRM) = range(17)
# sc: scalar state
(S_CYCLE, S_BUFFERED, S_VA, S_QUEUED, S_HOPS, S_RUN, S_NFREE, S_PKN, S_TDN, S_OFN, S_OCN, S_FLAG,
 S_INF, S_INC, S_CALN, S_NEXT, S_STOP, N_SC) = range(18)
# flags returned at the end of a cycle (F_TAIL: a transfer's tail was ejected and S_STOP is set)
F_REFILL, F_QGROW, F_POOL, F_FLUSH, F_ERROR, F_TAIL = 1, 2, 4, 8, 16, 32
# rv: per input VC (and per output VC: the downstream buffer state seen by this router)
(V_HEAD, V_CNT, V_STATE, V_READY, V_ROUTE, V_OVC, V_OCC, V_INUSE, V_TAILSENT, V_VAIN, V_VAOUT,
 N_RV) = range(12)
# rp: per router port; st: static per router port (wiring)
RP_SWIN, RP_SWOUT, RP_SWOFF, RP_BUSYUNTIL, RP_LINKFLITS, N_RP = range(6)
ST_OUTR, ST_OUTIP, ST_LAT, ST_BUSY, ST_DOWNL, N_ST = range(6)
# rr: per router counts (to skip idle routers)
RR_BUF, RR_VA, N_RR = range(3)
# ni: per node; nsv: per node and source VC; nst: per node statistics; nq: per node queue
(N_GENCOUNT, N_CHUNK, N_NEXTGEN, N_QHEAD, N_QLEN, N_CURFIDX, N_CURVC, N_CURHITIME, N_LASTVC,
 N_NI) = range(10)
SV_OCC, SV_INUSE, SV_TAILSENT, N_SV = range(4)
NS_GENMEAS, NS_ACC, NS_FLATN, NS_FLATSUM, NS_FLATSUMSQ, N_NS = range(6)
# a source-queue entry is a run of Q_COUNT packets to one destination (a transfer): all of
# Q_SIZE flits but the last, of Q_LAST; Q_IDX is the per-source index of its next packet
Q_CTIME, Q_DEST, Q_IDX, Q_SIZE, Q_TAG, Q_NPK, Q_COUNT, Q_LAST, N_Q = range(9)
# pool: one column per flit slot (FIELDS order); tag = transfer tag (-1: none), npk = its packets
FIELDS = ("pkt", "fidx", "size", "src", "dest", "ctime", "itime", "hitime", "hops", "meas", "tag", "npk")
(F_PKT, F_FIDX, F_SIZE, F_SRC, F_DEST, F_CTIME, F_ITIME, F_HITIME, F_HOPS, F_MEAS, F_TAG, F_NPK) = range(12)
PACKET_COLS = ("pkt", "src", "dest", "ctime_cycle", "itime_cycle", "atime_cycle", "hops", "flits")
PKT_SHIFT = 32  # packet id = source node << 32 | per-source index
# calendar kinds: flit arrival, router credit, NI (source) credit, ejection
K_FLIT, K_CREDIT, K_SRC, K_EJECT = range(4)


@njit(cache=True)
def _route(coords, cur, dest, local):
    """Dimension-order routing: the first differing coordinate, + before -."""
    for d in range(coords.shape[1]):
        a, b = coords[cur, d], coords[dest, d]
        if a != b:
            return 2 * d + (0 if a < b else 1)
    return local


@njit(cache=True)
def next_event(prm, sc, ni, caln, inf, inc):
    """First cycle >= the region's time with something to do (NEVER if none)."""
    c = sc[S_CYCLE]
    if sc[S_BUFFERED] > 0 or sc[S_QUEUED] > 0:
        return c
    t = NEVER
    W = prm[P_W]
    if sc[S_CALN] > 0:
        for d in range(W):
            b = (c + d) % W
            if caln[b, 0] + caln[b, 1] + caln[b, 2] + caln[b, 3] > 0:
                t = c + d
                break
    if sc[S_INF] < inf.shape[1]:
        t = min(t, inf[0, sc[S_INF]])
    if sc[S_INC] < inc.shape[1]:
        t = min(t, inc[0, sc[S_INC]])
    for n in range(ni.shape[1]):
        t = min(t, ni[N_NEXTGEN, n])
    return max(t, c)


@njit(cache=True)
def _arrive(c, l, ip, vc, slot, prm, sc, coords, rids, rv, buf, rr, pool):
    P, V, B = prm[P_P], prm[P_V], prm[P_B]
    q = (l * P + ip) * V + vc
    buf[q, (rv[V_HEAD, q] + rv[V_CNT, q]) % B] = slot
    rv[V_CNT, q] += 1
    sc[S_BUFFERED] += 1
    rr[RR_BUF, l] += 1
    if rv[V_STATE, q] == IDLE:
        rv[V_STATE, q] = VA
        rv[V_READY, q] = c + prm[P_RD]
        rv[V_ROUTE, q] = _route(coords, rids[l], pool[F_DEST, slot], P - 1)
        sc[S_VA] += 1
        rr[RR_VA, l] += 1


@njit(cache=True)
def _credit(l, op, vc, prm, rv):
    oq = (l * prm[P_P] + op) * prm[P_V] + vc
    rv[V_OCC, oq] -= 1
    if prm[P_WFT] and rv[V_OCC, oq] == 0 and rv[V_TAILSENT, oq]:
        rv[V_INUSE, oq] = 0


@njit(cache=True)
def _sched(caln, cal, kind, t, W, a, b, c, d):
    """Schedule one item of ``kind`` for cycle t (t - now < W by construction)."""
    s = t % W
    i = caln[s, kind]
    if i >= cal.shape[1]:
        return False
    cal[s, i, 0], cal[s, i, 1], cal[s, i, 2], cal[s, i, 3] = a, b, c, d
    caln[s, kind] = i + 1
    return True


@njit(cache=True)
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
                k = (o * V + ov - rv[V_VAIN, q] + PV) % PV
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
        k = (scr[0, i] - rv[V_VAOUT, l * PV + loc] + PV) % PV
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
        rv[V_VAIN, q] = (loc + 1) % PV
        rv[V_VAOUT, oq] = (iv + 1) % PV
        sc[S_VA] -= 1
        rr[RR_VA, l] -= 1


@njit(cache=True)
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
            k = ((o - rp[RP_SWIN, rpi] + P) % P) * V + (v - rp[RP_SWOFF, rpi] + V) % V
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
        k = (ip - rp[RP_SWOUT, l * P + o] + P) % P
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
        rp[RP_SWIN, rpi] = (o + 1) % P
        rp[RP_SWOUT, rpo] = (ip + 1) % P
        rp[RP_SWOFF, rpi] = (v + 1) % V
        rp[RP_BUSYUNTIL, rpo] = c + st[ST_BUSY, rpo]
        slot = buf[q, rv[V_HEAD, q]]
        rv[V_HEAD, q] = (rv[V_HEAD, q] + 1) % B
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
            ok &= _sched(caln, cals, K_SRC, u + prm[P_LL] + 1, W, l, v, 0, 0)
        else:
            arrive = u + st[ST_LAT, rpi] + 1
            ul = st[ST_DOWNL, rpi]
            if ul >= 0:
                ok &= _sched(caln, calc, K_CREDIT, arrive + prm[P_CD], W, ul, ip ^ 1, v, 0)
            else:
                j = sc[S_OCN]
                outc[j, 0], outc[j, 1], outc[j, 2], outc[j, 3] = arrive, st[ST_OUTR, rpi], ip ^ 1, v
                sc[S_OCN] = j + 1
        x = c + sad + prm[P_CB] - 1 + st[ST_BUSY, rpo] - 1
        if o == local:
            ok &= _sched(caln, cale, K_EJECT, x + prm[P_LL] + 1, W, l, slot, ov, 0)
        else:
            arrive = x + st[ST_LAT, rpo] + 1
            dl = st[ST_DOWNL, rpo]
            if dl >= 0:
                ok &= _sched(caln, calf, K_FLIT, arrive, W, dl, st[ST_OUTIP, rpo], ov, slot)
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


@njit(cache=True)
def _retire(a, l, slot, prm, sc, nst, pool, pko, tdo):
    """A flit reaches its destination node at cycle a: statistics, packet row, transfer tail."""
    if prm[P_W0] <= a < prm[P_W1]:
        nst[NS_ACC, l] += 1
    tail = pool[F_FIDX, slot] == pool[F_SIZE, slot] - 1
    if pool[F_MEAS, slot] == 1:
        lat = a - pool[F_ITIME, slot]
        nst[NS_FLATN, l] += 1
        nst[NS_FLATSUM, l] += lat
        nst[NS_FLATSUMSQ, l] += lat * lat
        if tail:
            j = sc[S_PKN]
            pko[0, j], pko[1, j], pko[2, j] = pool[F_PKT, slot], pool[F_SRC, slot], pool[F_DEST, slot]
            pko[3, j], pko[4, j], pko[5, j] = pool[F_CTIME, slot], pool[F_HITIME, slot], a
            pko[6, j], pko[7, j] = pool[F_HOPS, slot], pool[F_SIZE, slot]
            sc[S_PKN] = j + 1
    if tail and pool[F_TAG, slot] >= 0:
        j = sc[S_TDN]
        tdo[0, j], tdo[1, j], tdo[2, j] = pool[F_TAG, slot], pool[F_NPK, slot], a
        sc[S_TDN] = j + 1
        if _last_tail(tdo, pool[F_TAG, slot], pool[F_NPK, slot]) and sc[S_STOP]:
            sc[S_FLAG] |= F_TAIL


@njit(cache=True)
def _last_tail(tdo, tag, npk):
    """Count a transfer's tails down in an open-addressing table (rows 3-4 of ``tdo``: tag, packets
    left; -1 empty, -2 deleted) so the loop stops only when a transfer completes, not at every
    tail; Python's own count stays the authority. A full table answers True (stop and look)."""
    if npk <= 1:
        return True
    cap = tdo.shape[1]
    i = tag % cap
    free = -1
    for _ in range(cap):
        k = tdo[3, i]
        if k == tag:
            tdo[4, i] -= 1
            if tdo[4, i] > 0:
                return False
            tdo[3, i] = -2
            while tdo[3, i] == -2 and tdo[3, (i + 1) % cap] == -1:  # trailing deletions become empty
                tdo[3, i] = -1
                i = (i - 1) % cap
            return True
        if k == -2 and free < 0:
            free = i
        if k == -1:
            if free < 0:
                free = i
            break
        i = (i + 1) % cap
    if free < 0:
        return True
    tdo[3, free], tdo[4, free] = tag, npk - 1
    return False


@njit(cache=True)
def _generate(c, prm, sc, ni, nst, gd, nq):
    """Synthetic packets created at cycle c (geometric gaps drawn ahead by numpy)."""
    qcap = nq.shape[2]
    for n in range(ni.shape[1]):
        if ni[N_NEXTGEN, n] != c:
            continue
        k = ni[N_GENCOUNT, n]
        pos = (ni[N_QHEAD, n] + ni[N_QLEN, n]) % qcap
        nq[Q_CTIME, n, pos] = c
        nq[Q_DEST, n, pos] = gd[1, n, k - ni[N_CHUNK, n]]
        nq[Q_IDX, n, pos] = k
        nq[Q_SIZE, n, pos] = prm[P_PSIZE]
        nq[Q_TAG, n, pos] = -1
        nq[Q_NPK, n, pos] = 0
        nq[Q_COUNT, n, pos] = 1
        nq[Q_LAST, n, pos] = prm[P_PSIZE]
        ni[N_QLEN, n] += 1
        sc[S_QUEUED] += 1
        if prm[P_W0] <= c < prm[P_W1]:
            nst[NS_GENMEAS, n] += 1
        ni[N_GENCOUNT, n] = k + 1
        off = k + 1 - ni[N_CHUNK, n]
        if off >= gd.shape[2]:
            ni[N_NEXTGEN, n] = -1  # Python draws the next chunk before the next cycle
            sc[S_FLAG] |= F_REFILL
        else:
            ni[N_NEXTGEN, n] = c + gd[0, n, off]
        if ni[N_QLEN, n] >= qcap - 1:
            sc[S_FLAG] |= F_QGROW


@njit(cache=True)
def _inject(c, prm, sc, rids, ni, nsv, nq, pool, free, caln, calf):
    """At most one flit per node into its router's local input port."""
    V, B, W = prm[P_V], prm[P_B], prm[P_W]
    qcap = nq.shape[2]
    ok = True
    for n in range(ni.shape[1]):
        if ni[N_QLEN, n] == 0:
            continue
        if ni[N_CURFIDX, n] == 0 and ni[N_CURVC, n] < 0:
            lvc = ni[N_LASTVC, n]
            for t in range(V):
                vc = 0 if lvc < 0 else (lvc + 1 + t) % V
                if nsv[SV_INUSE, n, vc] == 0 and nsv[SV_OCC, n, vc] < B:
                    ni[N_CURVC, n] = vc
                    nsv[SV_INUSE, n, vc] = 1
                    nsv[SV_TAILSENT, n, vc] = 0
                    ni[N_LASTVC, n] = vc
                    break
        vc = ni[N_CURVC, n]
        if vc < 0 or nsv[SV_OCC, n, vc] >= B:
            continue
        h = ni[N_QHEAD, n]
        fidx = ni[N_CURFIDX, n]
        if fidx == 0:
            ni[N_CURHITIME, n] = c
        sc[S_NFREE] -= 1
        slot = free[sc[S_NFREE]]
        size, ctime = nq[Q_SIZE, n, h], nq[Q_CTIME, n, h]
        pool[F_PKT, slot] = (rids[n] << PKT_SHIFT) | nq[Q_IDX, n, h]
        pool[F_FIDX, slot], pool[F_SIZE, slot], pool[F_SRC, slot] = fidx, size, rids[n]
        pool[F_DEST, slot], pool[F_CTIME, slot], pool[F_ITIME, slot] = nq[Q_DEST, n, h], ctime, c
        pool[F_HITIME, slot], pool[F_HOPS, slot] = ni[N_CURHITIME, n], 0
        pool[F_MEAS, slot] = 1 if prm[P_W0] <= ctime < prm[P_W1] else 0
        pool[F_TAG, slot], pool[F_NPK, slot] = nq[Q_TAG, n, h], nq[Q_NPK, n, h]
        nsv[SV_OCC, n, vc] += 1
        if fidx == size - 1:
            nsv[SV_TAILSENT, n, vc] = 1
            if not prm[P_WFT]:
                nsv[SV_INUSE, n, vc] = 0
            ni[N_CURFIDX, n] = 0
            ni[N_CURVC, n] = -1
            if nq[Q_COUNT, n, h] > 1:  # the entry's next packet
                nq[Q_COUNT, n, h] -= 1
                nq[Q_IDX, n, h] += 1
                if nq[Q_COUNT, n, h] == 1:
                    nq[Q_SIZE, n, h] = nq[Q_LAST, n, h]
            else:
                ni[N_QHEAD, n] = (h + 1) % qcap
                ni[N_QLEN, n] -= 1
                sc[S_QUEUED] -= 1
        else:
            ni[N_CURFIDX, n] = fidx + 1
        ok &= _sched(caln, calf, K_FLIT, c + prm[P_LL] + 1, W, n, prm[P_P] - 1, vc, slot)
    if not ok:
        sc[S_FLAG] |= F_ERROR


@njit(cache=True)
def run(horizon, prm, sc, coords, rids, st, rv, buf, rp, rr, ni, nsv, nst, gd, nq, pool, free,
        caln, calf, calc, cals, cale, inf, inc, pko, tdo, outf, outc):
    """Simulate every cycle < horizon that has work; return 0 when done, else the flags that need
    Python (the region's time is then the end of the last simulated cycle). Flits and credits
    for other regions are appended as rows to ``outf`` (cycle read, router, port, vc, FIELDS) and
    ``outc`` (cycle read, router, port, vc); the cycle read excludes the receiver's credit delay."""
    R, P, W = prm[P_R], prm[P_P], prm[P_W]
    scr = np.empty((7, max(P * prm[P_V], P)), dtype=np.int64)
    room = R * P
    while True:
        c = next_event(prm, sc, ni, caln, inf, inc)
        if c >= horizon:
            sc[S_NEXT] = c
            sc[S_CYCLE] = max(sc[S_CYCLE], horizon)
            return 0
        sc[S_RUN] += 1
        b = c % W
        for i in range(caln[b, K_FLIT]):
            _arrive(c, calf[b, i, 0], calf[b, i, 1], calf[b, i, 2], calf[b, i, 3], prm, sc, coords, rids,
                    rv, buf, rr, pool)
        j = sc[S_INF]
        while j < inf.shape[1] and inf[0, j] <= c:
            if inf[0, j] < c:
                sc[S_FLAG] |= F_ERROR
            _arrive(c, inf[1, j], inf[2, j], inf[3, j], inf[4, j], prm, sc, coords, rids, rv, buf, rr, pool)
            j += 1
        sc[S_INF] = j
        for i in range(caln[b, K_CREDIT]):
            _credit(calc[b, i, 0], calc[b, i, 1], calc[b, i, 2], prm, rv)
        j = sc[S_INC]
        while j < inc.shape[1] and inc[0, j] <= c:
            if inc[0, j] < c:
                sc[S_FLAG] |= F_ERROR
            _credit(inc[1, j], inc[2, j], inc[3, j], prm, rv)
            j += 1
        sc[S_INC] = j
        for i in range(caln[b, K_SRC]):
            l, vc = cals[b, i, 0], cals[b, i, 1]
            nsv[SV_OCC, l, vc] -= 1
            if prm[P_WFT] and nsv[SV_OCC, l, vc] == 0 and nsv[SV_TAILSENT, l, vc]:
                nsv[SV_INUSE, l, vc] = 0
        ne = caln[b, K_EJECT]
        caln[b, 0] = caln[b, 1] = caln[b, 2] = caln[b, 3] = 0
        ok = True
        for i in range(ne):
            l, slot, ov = cale[b, i, 0], cale[b, i, 1], cale[b, i, 2]
            _retire(c, l, slot, prm, sc, nst, pool, pko, tdo)
            # the node returns the credit at once (BookSim2 WriteCredit)
            ok &= _sched(caln, calc, K_CREDIT, c + prm[P_LL] + 1 + prm[P_CD], W, l, P - 1, ov, 0)
            free[sc[S_NFREE]] = slot
            sc[S_NFREE] += 1
        if not ok:
            sc[S_FLAG] |= F_ERROR
        if sc[S_BUFFERED] > 0:
            for l in range(R):
                if rr[RR_BUF, l] == 0:
                    continue
                if rr[RR_VA, l] > 0:
                    _vc_alloc(c, l, prm, sc, rv, rr, scr)
                _sw_alloc(c, l, prm, sc, coords, rids, st, rv, buf, rp, rr, pool, free, caln, calf, calc,
                          cals, cale, outf, outc, scr)
        _generate(c, prm, sc, ni, nst, gd, nq)
        _inject(c, prm, sc, rids, ni, nsv, nq, pool, free, caln, calf)
        sc[S_CALN] = 0
        for s in range(W):
            sc[S_CALN] += caln[s, 0] + caln[s, 1] + caln[s, 2] + caln[s, 3]
        sc[S_CYCLE] = c + 1
        if sc[S_NFREE] < R + 1:
            sc[S_FLAG] |= F_POOL
        if (sc[S_PKN] > pko.shape[1] - R or sc[S_TDN] > tdo.shape[1] - R or sc[S_OFN] > outf.shape[0] - room
                or sc[S_OCN] > outc.shape[0] - room):
            sc[S_FLAG] |= F_FLUSH
        if sc[S_FLAG]:
            f = sc[S_FLAG]
            sc[S_FLAG] = 0
            return f


@njit(cache=True)
def merge_inbox(box, ptr, new):
    """The unread columns of ``box`` (from ``ptr``) and ``new``, stably sorted by row 0 (cycle)."""
    rest = box.shape[1] - ptr
    n = rest + new.shape[1]
    out = np.empty((box.shape[0], n), dtype=np.int64)
    out[:, :rest] = box[:, ptr:]
    out[:, rest:] = new
    order = np.argsort(out[0], kind="mergesort")
    res = np.empty_like(out)
    for i in range(n):
        res[:, i] = out[:, order[i]]
    return res


@njit(cache=True)
def absorb_flits(cycle, rows, g2l, pool, free, sc, box):
    """Flits from other regions (rows: router, port, vc, FIELDS) into free pool slots and the
    inbox ``box`` (cycle, local router, port, vc, slot); returns the new inbox. The caller has
    made sure the pool has room."""
    n = rows.shape[0]
    new = np.empty((5, n), dtype=np.int64)
    for i in range(n):
        sc[S_NFREE] -= 1
        slot = free[sc[S_NFREE]]
        for f in range(pool.shape[0]):
            pool[f, slot] = rows[i, 3 + f]
        new[0, i], new[1, i], new[2, i], new[3, i], new[4, i] = cycle[i], g2l[rows[i, 0]], rows[i, 1], rows[i, 2], slot
    out = merge_inbox(box, sc[S_INF], new)
    sc[S_INF] = 0
    return out


@njit(cache=True)
def absorb_credits(cycle, rows, g2l, delay, sc, box):
    """Credits from other regions (rows: router, port, vc), read ``delay`` cycles after ``cycle``."""
    n = rows.shape[0]
    new = np.empty((4, n), dtype=np.int64)
    for i in range(n):
        new[0, i], new[1, i], new[2, i], new[3, i] = cycle[i] + delay, g2l[rows[i, 0]], rows[i, 1], rows[i, 2]
    out = merge_inbox(box, sc[S_INC], new)
    sc[S_INC] = 0
    return out

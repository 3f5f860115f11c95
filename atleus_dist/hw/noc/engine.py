"""The compiled cycle loop of a NoC region (numba): routers, network interfaces and the event
calendar, advanced cycle by cycle up to a horizon, skipping idle cycles.

The state lives in plain int64 numpy arrays owned by :class:`Region`, :class:`RouterArray` and
:class:`Interfaces`; rows of the 2-D arrays are named by the constants below. The loop returns
to Python (a non-zero flag, at the end of a cycle) whenever Python must act: refill a node's
random stream (the draws are computed by numpy, so they stay bit-identical), grow a queue or the
flit pool, or drain an output buffer. Semantics are BookSim2's ``iq_router`` and
``TrafficManager::_Step`` as in the numpy version this replaced (same digests): per cycle, read
flits and credits, VC allocation then switch allocation router by router (separable input-first,
round-robin, pointers read before any grant of the cycle), generate, inject one flit per NI port
(a router's local ports: ``interface.ni_ports`` for its core, ``mc_ports`` for a memory controller).
Everything is an integer, so the result does not depend on the machine. Knows nothing of LPs,
messages or picoseconds.
"""

from __future__ import annotations

from atleus_dist.hw.noc import engine_cache

engine_cache.drop_if_stale()
engine_cache.fast_cache_loads()  # a warm run loads the compiled engine without numba's ~0.2 s refresh

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from atleus_dist.hw.noc.engine_layout import *  # noqa: E402,F401,F403 - re-exported: E.<name>
from atleus_dist.hw.noc.engine_router import _arrive, _credit, _sched, _sw_alloc, _vc_alloc  # noqa: E402


@njit(cache=True, inline="always", _nrt=False)
def next_event(prm, sc, caln, inf, inc, gmin):
    """First cycle >= the region's time with something to do (NEVER if none); ``gmin`` is the
    earliest synthetic generation cycle of any node."""
    c = sc[S_CYCLE]
    if sc[S_BUFFERED] > 0 or sc[S_QUEUED] > 0:
        return c
    t = NEVER
    W = prm[P_W]
    if sc[S_CALN] > 0:
        for d in range(W):
            b = (c + d) & (W - 1)
            if caln[b, 0] + caln[b, 1] + caln[b, 2] + caln[b, 3] > 0:
                t = c + d
                break
    if sc[S_INF] < inf.shape[1]:
        t = min(t, inf[0, sc[S_INF]])
    if sc[S_INC] < inc.shape[1]:
        t = min(t, inc[0, sc[S_INC]])
    t = min(t, gmin)
    return max(t, c)


@njit(cache=True, inline="always", _nrt=False)
def _col0(prm, n):
    """The ``ni`` column of node n's first port (node n: NI n % NN of local router n // NN)."""
    l = n // prm[P_NN]
    return l * prm[P_L] + (0 if n == l * prm[P_NN] else prm[P_NP])


@njit(cache=True, inline="always", _nrt=False)
def _join(prm, ni, n):
    """The port a new packet run of node n joins: the one with the fewest flits queued."""
    c0 = _col0(prm, n)
    k = prm[P_NP] if c0 == (n // prm[P_NN]) * prm[P_L] else prm[P_MP]
    best = c0
    for col in range(c0 + 1, c0 + k):
        if ni[N_QFLITS, col] < ni[N_QFLITS, best]:
            best = col
    return best


@njit(cache=True, _nrt=False)
def _gen_min(ni):
    t = NEVER  # only a node's first column generates; the others hold NEVER
    for n in range(ni.shape[1]):
        t = min(t, ni[N_NEXTGEN, n])
    return t


@njit(cache=True, inline="always", _nrt=False)
def _retire(a, l, slot, prm, sc, nst, pool, pko, tdo):
    """A flit reaches its destination at router l (local) at cycle a: statistics of the node it
    enters (the router's core NI, or its memory controller's for a destination ``n_routers +
    router``: statistics and packet rows are per node, so a controller's traffic is never counted
    as its router's core's), packet row, transfer tail."""
    d = pool[slot, F_DEST]
    node = l * prm[P_NN] + (1 if d >= prm[P_NR] else 0)
    if prm[P_W0] <= a < prm[P_W1]:
        nst[NS_ACC, node] += 1
    tail = pool[slot, F_FIDX] == pool[slot, F_SIZE] - 1
    if pool[slot, F_MEAS] == 1:
        lat = a - pool[slot, F_ITIME]
        nst[NS_FLATN, node] += 1
        nst[NS_FLATSUM, node] += lat
        nst[NS_FLATSUMSQ, node] += lat * lat
        if tail:
            j = sc[S_PKN]
            pko[0, j], pko[1, j], pko[2, j] = pool[slot, F_PKT], pool[slot, F_SRC], d
            pko[3, j], pko[4, j], pko[5, j] = pool[slot, F_CTIME], pool[slot, F_HITIME], a
            pko[6, j], pko[7, j] = pool[slot, F_HOPS], pool[slot, F_SIZE]
            sc[S_PKN] = j + 1
    if tail and pool[slot, F_TAG] >= 0:
        j = sc[S_TDN]
        tdo[0, j], tdo[1, j], tdo[2, j] = pool[slot, F_TAG], pool[slot, F_NPK], a
        sc[S_TDN] = j + 1
        if _last_tail(tdo, pool[slot, F_TAG], pool[slot, F_NPK]) and sc[S_STOP]:
            sc[S_FLAG] |= F_TAIL


@njit(cache=True, _nrt=False)
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


@njit(cache=True, inline="always", _nrt=False)
def _generate(c, prm, sc, ni, nst, gd, nq):
    """Synthetic packets created at cycle c (geometric gaps drawn ahead by numpy) at the core NIs;
    returns the next generation cycle of any node."""
    qcap = nq.shape[2]
    gmin = NEVER
    NN = prm[P_NN]
    for r in range(gd.shape[1]):
        n = r * NN
        c0 = _col0(prm, n)
        g = ni[N_NEXTGEN, c0]
        if g != c:
            gmin = min(gmin, g)
            continue
        k = ni[N_GENCOUNT, c0]
        q = _join(prm, ni, n)
        pos = (ni[N_QHEAD, q] + ni[N_QLEN, q]) % qcap
        nq[Q_CTIME, q, pos] = c
        nq[Q_DEST, q, pos] = gd[1, r, k - ni[N_CHUNK, c0]]
        nq[Q_IDX, q, pos] = k
        nq[Q_SIZE, q, pos] = prm[P_PSIZE]
        nq[Q_TAG, q, pos] = -1
        nq[Q_NPK, q, pos] = 0
        nq[Q_COUNT, q, pos] = 1
        nq[Q_LAST, q, pos] = prm[P_PSIZE]
        ni[N_QLEN, q] += 1
        ni[N_QFLITS, q] += prm[P_PSIZE]
        sc[S_QUEUED] += 1
        if prm[P_W0] <= c < prm[P_W1]:
            nst[NS_GENMEAS, n] += 1
        ni[N_GENCOUNT, c0] = k + 1
        off = k + 1 - ni[N_CHUNK, c0]
        if off >= gd.shape[2]:
            ni[N_NEXTGEN, c0] = -1  # Python draws the next chunk before the next cycle
            sc[S_FLAG] |= F_REFILL
        else:
            ni[N_NEXTGEN, c0] = c + gd[0, r, off]
        gmin = min(gmin, ni[N_NEXTGEN, c0])
        if ni[N_QLEN, q] >= qcap - 1:
            sc[S_FLAG] |= F_QGROW
    return gmin


@njit(cache=True, inline="always", _nrt=False)
def _inject(c, prm, sc, rids, ni, nsv, nq, pool, free, caln, calf):
    """At most one flit per NI port into its local input port, from the port's own queue."""
    V, B, W = prm[P_V], prm[P_B], prm[P_W]
    L, L0 = prm[P_L], prm[P_L0]
    qcap = nq.shape[2]
    ok = True
    for n in range(ni.shape[1]):  # n: an NI port (column)
        if ni[N_QLEN, n] == 0:
            continue
        if ni[N_CURFIDX, n] == 0 and ni[N_CURVC, n] < 0:
            lvc = ni[N_LASTVC, n]
            for t in range(V):
                vc = 0 if lvc < 0 else (lvc + 1 + t if lvc + 1 + t < V else lvc + 1 + t - V)
                if nsv[SV_INUSE, n, vc] == 0 and nsv[SV_OCC, n, vc] < B:
                    ni[N_CURVC, n] = vc
                    nsv[SV_INUSE, n, vc] = 1
                    nsv[SV_TAILSENT, n, vc] = 0
                    ni[N_LASTVC, n] = vc
                    break
        vc = ni[N_CURVC, n]
        if vc < 0 or nsv[SV_OCC, n, vc] >= B:
            continue
        l = n // L
        h = ni[N_QHEAD, n]
        fidx = ni[N_CURFIDX, n]
        if fidx == 0:
            ni[N_CURHITIME, n] = c
        sc[S_NFREE] -= 1
        slot = free[sc[S_NFREE]]
        size, ctime = nq[Q_SIZE, n, h], nq[Q_CTIME, n, h]
        pool[slot, F_PKT] = (rids[l] << PKT_SHIFT) | nq[Q_IDX, n, h]
        pool[slot, F_FIDX], pool[slot, F_SIZE] = fidx, size
        pool[slot, F_SRC] = rids[l] + (prm[P_NR] if n - l * L >= prm[P_NP] else 0)  # the source node
        pool[slot, F_DEST], pool[slot, F_CTIME], pool[slot, F_ITIME] = nq[Q_DEST, n, h], ctime, c
        pool[slot, F_HITIME], pool[slot, F_HOPS] = ni[N_CURHITIME, n], 0
        pool[slot, F_MEAS] = 1 if prm[P_W0] <= ctime < prm[P_W1] else 0
        pool[slot, F_TAG], pool[slot, F_NPK] = nq[Q_TAG, n, h], nq[Q_NPK, n, h]
        nsv[SV_OCC, n, vc] += 1
        ni[N_QFLITS, n] -= 1
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
        ok &= _sched(sc, caln, calf, K_FLIT, c + prm[P_LL] + 1, W, l, L0 + n - l * L, vc, slot)
    if not ok:
        sc[S_FLAG] |= F_ERROR


@njit(cache=True, nogil=True, _nrt=False)
def run(horizon, prm, sc, coords, rids, st, rv, buf, rp, rr, ni, nsv, nst, gd, nq, pool, free,
        caln, calf, calc, cals, cale, inf, inc, pko, tdo, outf, outc, scr):
    """Simulate every cycle < horizon that has work; return 0 when done, else the flags that need
    Python (the region's time is then the end of the last simulated cycle). Flits and credits
    for other regions are appended as rows to ``outf`` (cycle read, router, port, vc, FIELDS) and
    ``outc`` (cycle read, router, port, vc); the cycle read excludes the receiver's credit delay.
    ``scr`` is the allocators' scratch (7 x max(P * V, P)). The helpers are inlined and nothing
    is reference-counted (``_nrt=False``): numba would otherwise incref and decref every array
    argument of every helper call, which cost about as much as the simulation itself."""
    R, P, W = prm[P_R], prm[P_P], prm[P_W]
    room = R * P
    gmin = _gen_min(ni)
    while True:
        c = next_event(prm, sc, caln, inf, inc, gmin)
        if c >= horizon:
            sc[S_NEXT] = c
            sc[S_CYCLE] = max(sc[S_CYCLE], horizon)
            return 0
        sc[S_RUN] += 1
        b = c & (W - 1)
        for i in range(caln[b, K_FLIT]):
            _arrive(c, calf[b, i, 0], calf[b, i, 1], calf[b, i, 2], calf[b, i, 3], prm, sc, coords, rids,
                    rv, buf, rp, rr, pool)
        j = sc[S_INF]
        while j < inf.shape[1] and inf[0, j] <= c:
            if inf[0, j] < c:
                sc[S_FLAG] |= F_ERROR
            _arrive(c, inf[1, j], inf[2, j], inf[3, j], inf[4, j], prm, sc, coords, rids, rv, buf, rp, rr, pool)
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
            col, vc = cals[b, i, 0], cals[b, i, 1]  # an NI port's credit
            nsv[SV_OCC, col, vc] -= 1
            if prm[P_WFT] and nsv[SV_OCC, col, vc] == 0 and nsv[SV_TAILSENT, col, vc]:
                nsv[SV_INUSE, col, vc] = 0
        ne = caln[b, K_EJECT]
        sc[S_CALN] -= caln[b, 0] + caln[b, 1] + caln[b, 2] + caln[b, 3]
        caln[b, 0] = caln[b, 1] = caln[b, 2] = caln[b, 3] = 0
        ok = True
        for i in range(ne):
            l, slot, ov, o = cale[b, i, 0], cale[b, i, 1], cale[b, i, 2], cale[b, i, 3]
            _retire(c, l, slot, prm, sc, nst, pool, pko, tdo)
            # the node returns the credit at once (BookSim2 WriteCredit) to its ejection port o
            ok &= _sched(sc, caln, calc, K_CREDIT, c + prm[P_LL] + 1 + prm[P_CD], W, l, o, ov, 0)
            free[sc[S_NFREE]] = slot
            sc[S_NFREE] += 1
        if not ok:
            sc[S_FLAG] |= F_ERROR
        if sc[S_BUFFERED] > 0:
            for l in range(R):
                if rr[l, RR_BUF] == 0:
                    continue
                if rr[l, RR_VA] > 0:
                    _vc_alloc(c, l, prm, sc, rv, rp, rr, scr, pool, buf)
                _sw_alloc(c, l, prm, sc, coords, rids, st, rv, buf, rp, rr, pool, free, caln, calf, calc,
                          cals, cale, outf, outc, scr)
        if gmin <= c:
            gmin = _generate(c, prm, sc, ni, nst, gd, nq)
        if sc[S_QUEUED] > 0:
            _inject(c, prm, sc, rids, ni, nsv, nq, pool, free, caln, calf)
        sc[S_CYCLE] = c + 1
        if sc[S_NFREE] < R * prm[P_L] + 1:  # the next cycle injects at most one flit per NI port
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
        for f in range(pool.shape[1]):
            pool[slot, f] = rows[i, 3 + f]
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

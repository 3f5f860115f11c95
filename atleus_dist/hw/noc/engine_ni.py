"""Compiled network interfaces of the NoC engine: synthetic generation, injection from the source
queues (one flit per NI port per cycle) and ejection (statistics, packet rows, transfer tails).

The NI ports with a queue entry are a bit set (``Nis.queued``), so injection visits only those,
in ascending column order (the order a scan of every port gives). Knows nothing of routers'
allocators, LPs or picoseconds; called from ``engine.run``.
"""

from __future__ import annotations

from numba import njit

from atleus_dist.hw.noc.engine_layout import *  # noqa: F401,F403 - row names of the state arrays
from atleus_dist.hw.noc.engine_router import _sched, clear_bit, lowest, set_bit


@njit(cache=True, inline="always", _nrt=False)
def col0(prm, n):
    """The ``ni`` column of node n's first port (node n: NI n % NN of local router n // NN)."""
    l = n // prm[P_NN]
    return l * prm[P_L] + (0 if n == l * prm[P_NN] else prm[P_NP])


@njit(cache=True, inline="always", _nrt=False)
def _join(prm, ni, n):
    """The port a new packet run of node n joins: the one with the fewest flits queued."""
    c0 = col0(prm, n)
    k = prm[P_NP] if c0 == (n // prm[P_NN]) * prm[P_L] else prm[P_MP]
    best = c0
    for col in range(c0 + 1, c0 + k):
        if ni[N_QFLITS, col] < ni[N_QFLITS, best]:
            best = col
    return best


@njit(cache=True, _nrt=False)
def gen_min(ni):
    """The earliest synthetic generation cycle of any node."""
    t = NEVER  # only a node's first column generates; the others hold NEVER
    for n in range(ni.shape[1]):
        t = min(t, ni[N_NEXTGEN, n])
    return t


@njit(cache=True, _nrt=False)
def _last_tail(tdo, tag, npk):
    """Count a transfer's tails down in an open-addressing table (rows TD_KEY, TD_LEFT of ``tdo``)
    so the loop stops only when a transfer completes, not at every tail; Python's own count stays
    the authority. A full table answers True (stop and look)."""
    if npk <= 1:
        return True
    cap = tdo.shape[1]
    i = tag % cap
    free = -1
    for _ in range(cap):
        k = tdo[TD_KEY, i]
        if k == tag:
            tdo[TD_LEFT, i] -= 1
            if tdo[TD_LEFT, i] > 0:
                return False
            tdo[TD_KEY, i] = TD_DELETED
            while tdo[TD_KEY, i] == TD_DELETED and tdo[TD_KEY, (i + 1) % cap] == TD_EMPTY:
                tdo[TD_KEY, i] = TD_EMPTY  # trailing deletions become empty
                i = (i - 1) % cap
            return True
        if k == TD_DELETED and free < 0:
            free = i
        if k == TD_EMPTY:
            if free < 0:
                free = i
            break
        i = (i + 1) % cap
    if free < 0:
        return True
    tdo[TD_KEY, free], tdo[TD_LEFT, free] = tag, npk - 1
    return False


@njit(cache=True, inline="always", _nrt=False)
def retire(a, l, slot, ctl, nis, pool, rec):
    """A flit reaches its destination at router l (local) at cycle a: statistics of the node it
    enters (the router's core NI, or its memory controller's for a destination ``n_routers +
    router``: statistics and packet rows are per node, so a controller's traffic is never counted
    as its router's core's), packet row, transfer tail."""
    prm, sc, nst = ctl.prm, ctl.sc, nis.nst
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
            pko, j = rec.pko, sc[S_PKN]
            pko[0, j], pko[1, j], pko[2, j] = pool[slot, F_PKT], pool[slot, F_SRC], d
            pko[3, j], pko[4, j], pko[5, j] = pool[slot, F_CTIME], pool[slot, F_HITIME], a
            pko[6, j], pko[7, j] = pool[slot, F_HOPS], pool[slot, F_SIZE]
            sc[S_PKN] = j + 1
    if tail and pool[slot, F_TAG] >= 0:
        tdo, j = rec.tdo, sc[S_TDN]
        tdo[TD_TAG, j], tdo[TD_NPK, j], tdo[TD_CYCLE, j] = pool[slot, F_TAG], pool[slot, F_NPK], a
        sc[S_TDN] = j + 1
        if _last_tail(tdo, pool[slot, F_TAG], pool[slot, F_NPK]) and sc[S_STOP]:
            sc[S_FLAG] |= FLAG_TAIL


@njit(cache=True, inline="always", _nrt=False)
def generate(c, ctl, nis):
    """Synthetic packets created at cycle c (geometric gaps drawn ahead by numpy) at the core NIs;
    returns the next generation cycle of any node."""
    prm, sc, ni, nq, gd = ctl.prm, ctl.sc, nis.ni, nis.nq, nis.gd
    qcap = nq.shape[2]
    gmin = NEVER
    NN = prm[P_NN]
    for r in range(gd.shape[1]):
        n = r * NN
        c0 = col0(prm, n)
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
        set_bit(nis.queued, q)
        sc[S_QUEUED] += 1
        if prm[P_W0] <= c < prm[P_W1]:
            nis.nst[NS_GENMEAS, n] += 1
        ni[N_GENCOUNT, c0] = k + 1
        off = k + 1 - ni[N_CHUNK, c0]
        if off >= gd.shape[2]:
            ni[N_NEXTGEN, c0] = -1  # Python draws the next chunk before the next cycle
            sc[S_FLAG] |= FLAG_REFILL
        else:
            ni[N_NEXTGEN, c0] = c + gd[0, r, off]
        gmin = min(gmin, ni[N_NEXTGEN, c0])
        if ni[N_QLEN, q] >= qcap - 1:
            sc[S_FLAG] |= FLAG_QGROW
    return gmin


@njit(cache=True, inline="always", _nrt=False)
def inject(c, ctl, rids, nis, fl, cal):
    """At most one flit per NI port into its local input port, from the port's own queue."""
    prm, sc, ni, nsv, nq, pool = ctl.prm, ctl.sc, nis.ni, nis.nsv, nis.nq, fl.pool
    V, B, W = prm[P_V], prm[P_B], prm[P_W]
    L, L0 = prm[P_L], prm[P_L0]
    qcap = nq.shape[2]
    ok = True
    for w in range(nis.queued.shape[0]):
        m = nis.queued[w]
        while m != 0:
            n = (w << 6) + lowest(m)  # n: an NI port (column) with a queue entry
            m &= m - 1
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
            slot = fl.free[sc[S_NFREE]]
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
                    if ni[N_QLEN, n] == 0:
                        clear_bit(nis.queued, n)
            else:
                ni[N_CURFIDX, n] = fidx + 1
            ok &= _sched(sc, cal.counts, cal.flit, K_FLIT, c + prm[P_LL] + 1, W, l, L0 + n - l * L, vc, slot)
    if not ok:
        sc[S_FLAG] |= FLAG_ERROR

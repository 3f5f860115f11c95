"""The compiled cycle loop of a NoC region (numba): routers, network interfaces and the event
calendar, advanced cycle by cycle up to a horizon, skipping idle cycles.

The state lives in int64 numpy arrays owned by :class:`Region`, :class:`RouterArray` and
:class:`Interfaces`, handed over as the named groups of ``engine_state`` (rows and columns named
in ``engine_layout``). The loop returns to Python (a non-zero flag, at the end of a cycle)
whenever Python must act: refill a node's random stream (the draws are computed by numpy, so
they stay bit-identical), grow a queue or the flit pool, or drain an output buffer. Semantics
are BookSim2's ``iq_router`` and ``TrafficManager::_Step`` as in the numpy version this replaced
(same digests): per cycle, read flits and credits, VC allocation then switch allocation router
by router (separable input-first, round-robin, pointers read before any grant of the cycle),
generate, inject one flit per NI port (a router's local ports: ``interface.ni_ports`` for its
core, ``mc_ports`` for a memory controller). Only routers holding a flit and NI ports holding a
queue entry are visited (bit sets kept by the kernels). Everything is an integer, so the result
does not depend on the machine. Knows nothing of LPs, messages or picoseconds.
"""

from __future__ import annotations

from atleus_dist.hw.noc import engine_cache

engine_cache.drop_if_stale()
engine_cache.fast_cache_loads()  # a warm run loads the compiled engine without numba's ~0.2 s refresh

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from atleus_dist.hw.noc.engine_layout import *  # noqa: E402,F401,F403 - re-exported: E.<name>
from atleus_dist.hw.noc.engine_ni import gen_min, generate, inject, retire  # noqa: E402
from atleus_dist.hw.noc.engine_router import (_arrive, _credit, _sched, _sw_alloc, _vc_alloc, lowest,  # noqa: E402
                                              rebuild_masks)


@njit(cache=True, inline="always", _nrt=False)
def next_event(sc, prm, cal, inb, gmin):
    """First cycle >= the region's time with something to do (NEVER if none); ``gmin`` is the
    earliest synthetic generation cycle of any node."""
    c = sc[S_CYCLE]
    if sc[S_BUFFERED] > 0 or sc[S_QUEUED] > 0:
        return c
    t = NEVER
    W = prm[P_W]
    counts = cal.counts
    if sc[S_CALN] > 0:
        for d in range(W):
            b = (c + d) & (W - 1)
            if counts[b, K_FLIT] + counts[b, K_CREDIT] + counts[b, K_SRC] + counts[b, K_EJECT] > 0:
                t = c + d
                break
    if sc[S_INF] < inb.flits.shape[1]:
        t = min(t, inb.flits[0, sc[S_INF]])
    if sc[S_INC] < inb.credits.shape[1]:
        t = min(t, inb.credits[0, sc[S_INC]])
    t = min(t, gmin)
    return max(t, c)


@njit(cache=True, inline="always", _nrt=False)
def _read_inputs(c, b, ctl, rt, nis, fl, cal, inb):
    """Flits and credits due at cycle c (calendar slot b and the inboxes) into the routers and NIs."""
    prm, sc = ctl.prm, ctl.sc
    counts, pool = cal.counts, fl.pool
    for i in range(counts[b, K_FLIT]):
        f = cal.flit
        _arrive(c, f[b, i, 0], f[b, i, 1], f[b, i, 2], f[b, i, 3], ctl, rt, pool)
    inf = inb.flits
    j = sc[S_INF]
    while j < inf.shape[1] and inf[0, j] <= c:
        if inf[0, j] < c:
            sc[S_FLAG] |= FLAG_ERROR
        _arrive(c, inf[1, j], inf[2, j], inf[3, j], inf[4, j], ctl, rt, pool)
        j += 1
    sc[S_INF] = j
    for i in range(counts[b, K_CREDIT]):
        cr = cal.credit
        _credit(cr[b, i, 0], cr[b, i, 1], cr[b, i, 2], prm, rt)
    inc = inb.credits
    j = sc[S_INC]
    while j < inc.shape[1] and inc[0, j] <= c:
        if inc[0, j] < c:
            sc[S_FLAG] |= FLAG_ERROR
        _credit(inc[1, j], inc[2, j], inc[3, j], prm, rt)
        j += 1
    sc[S_INC] = j
    nsv = nis.nsv
    for i in range(counts[b, K_SRC]):
        col, vc = cal.src[b, i, 0], cal.src[b, i, 1]  # an NI port's credit
        nsv[SV_OCC, col, vc] -= 1
        if prm[P_WFT] and nsv[SV_OCC, col, vc] == 0 and nsv[SV_TAILSENT, col, vc]:
            nsv[SV_INUSE, col, vc] = 0


@njit(cache=True, inline="always", _nrt=False)
def _eject(c, b, ctl, nis, fl, cal, rec):
    """Flits reaching their NI at cycle c: retired, their credits sent back, their slots freed."""
    prm, sc, counts = ctl.prm, ctl.sc, cal.counts
    ne = counts[b, K_EJECT]
    sc[S_CALN] -= counts[b, K_FLIT] + counts[b, K_CREDIT] + counts[b, K_SRC] + ne
    counts[b, K_FLIT] = counts[b, K_CREDIT] = counts[b, K_SRC] = counts[b, K_EJECT] = 0
    ok = True
    for i in range(ne):
        e = cal.eject
        l, slot, ov, o = e[b, i, 0], e[b, i, 1], e[b, i, 2], e[b, i, 3]
        retire(c, l, slot, ctl, nis, fl.pool, rec)
        # the node returns the credit at once (BookSim2 WriteCredit) to its ejection port o
        ok &= _sched(sc, counts, cal.credit, K_CREDIT, c + prm[P_LL] + 1 + prm[P_CD], prm[P_W], l, o, ov, 0)
        fl.free[sc[S_NFREE]] = slot
        sc[S_NFREE] += 1
    if not ok:
        sc[S_FLAG] |= FLAG_ERROR


@njit(cache=True, nogil=True, _nrt=False)
def run(horizon, ctl, rt, nis, fl, cal, inb, rec):
    """Simulate every cycle < horizon that has work; return 0 when done, else the FLAG_* bits that
    need Python (the region's time is then the end of the last simulated cycle). Flits and
    credits for other regions are appended to ``rec.outf`` / ``rec.outc``; the cycle read
    excludes the receiver's credit delay. The helpers are inlined and nothing is
    reference-counted (``_nrt=False``): numba would otherwise incref and decref every array
    argument of every helper call, which cost about as much as the simulation itself."""
    prm, sc = ctl.prm, ctl.sc
    if sc[S_MASKS_OK] == 0:
        rebuild_masks(ctl, rt, nis)
    R, P, W = prm[P_R], prm[P_P], prm[P_W]
    room = R * P
    gmin = gen_min(nis.ni)
    busy = rt.busy
    while True:
        c = next_event(sc, prm, cal, inb, gmin)
        if c >= horizon:
            sc[S_NEXT] = c
            sc[S_CYCLE] = max(sc[S_CYCLE], horizon)
            return 0
        sc[S_RUN] += 1
        b = c & (W - 1)
        _read_inputs(c, b, ctl, rt, nis, fl, cal, inb)
        _eject(c, b, ctl, nis, fl, cal, rec)
        if sc[S_BUFFERED] > 0:  # routers holding a flit, ascending
            for w in range(busy.shape[0]):
                m = busy[w]
                while m != 0:
                    l = (w << 6) + lowest(m)
                    m &= m - 1
                    if rt.va_ports[l] != 0:
                        _vc_alloc(c, l, ctl, rt, fl.pool)
                    if rt.sa_ports[l] != 0:
                        _sw_alloc(c, l, ctl, rt, fl, cal, rec)
        if gmin <= c:
            gmin = generate(c, ctl, nis)
        if sc[S_QUEUED] > 0:
            inject(c, ctl, rt.rids, nis, fl, cal)
        sc[S_CYCLE] = c + 1
        if sc[S_NFREE] < R * prm[P_L] + 1:  # the next cycle injects at most one flit per NI port
            sc[S_FLAG] |= FLAG_POOL
        if (sc[S_PKN] > rec.pko.shape[1] - R or sc[S_TDN] > rec.tdo.shape[1] - R
                or sc[S_OFN] > rec.outf.shape[0] - room or sc[S_OCN] > rec.outc.shape[0] - room):
            sc[S_FLAG] |= FLAG_FLUSH
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


@njit(cache=True)
def group_tails(td):
    """Tail records (rows TD_TAG, TD_NPK, TD_CYCLE) grouped by tag, ascending: (tags, records,
    last cycle, packets of the first record) - ``np.unique`` and friends in one pass, which cost
    ~0.1 ms a call in Python (a chip run drains tails some 30,000 times)."""
    n = td.shape[1]
    order = np.argsort(td[TD_TAG], kind="mergesort")
    tags, cnt = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    last, npk = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    k = -1
    for i in range(n):
        j = order[i]
        t = td[TD_TAG, j]
        if k < 0 or tags[k] != t:
            k += 1
            tags[k], cnt[k], last[k], npk[k] = t, 0, td[TD_CYCLE, j], td[TD_NPK, j]
        cnt[k] += 1
        last[k] = max(last[k], td[TD_CYCLE, j])
    return tags[:k + 1], cnt[:k + 1], last[:k + 1], npk[:k + 1]

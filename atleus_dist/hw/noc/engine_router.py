"""Compiled router pipeline of the NoC engine: dimension-order routing, flit and credit
arrival, the event calendar, and BookSim2's separable input-first VC and switch allocators.

The allocators visit only what can act: the VCs of an input port waiting for VC allocation
(``Routers.va_vcs``) or holding a flit with an output VC (``sa_vcs``), found with bit scans, and
an output port's free VCs are a bit set (``free_vcs``), so a round-robin pick is a mask and a
count of trailing zeros. Every arbiter sees the same requests in the same order as a scan of all
ports and VCs would give (ascending port, then VC), so the grants are BookSim2's. ``scr`` rows:
VC allocation 0-1 the requests (input VC, output port * V + VC), 2-3 per output VC the best
round-robin distance and its input VC; switch allocation 4-5 the input arbiters' winners (input
port, VC), 2-3 per output port the best distance and the winner's index in rows 4-5.

Knows nothing of network interfaces, LPs or picoseconds; called from ``engine.run``.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

from atleus_dist.hw.noc.engine_layout import *  # noqa: F401,F403 - row names of the state arrays


@intrinsic
def popcount(typingctx, x):
    """Set bits of an int64 (LLVM ``ctpop``)."""
    sig = types.int64(types.int64)

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), [ir.IntType(64)]),
                                            "llvm.ctpop.i64")
        return builder.call(fn, args)

    return sig, codegen


@njit(cache=True, inline="always", _nrt=False)
def lowest(m):
    """Index of the lowest set bit of a non-zero int64."""
    return trailing_zeros(m)


@njit(cache=True, inline="always", _nrt=False)
def set_bit(words, i):
    words[i >> 6] |= 1 << (i & 63)


@njit(cache=True, inline="always", _nrt=False)
def clear_bit(words, i):
    words[i >> 6] &= ~(1 << (i & 63))


@njit(cache=True, inline="always", _nrt=False)
def _mark(vcs, ports, busy, l, P, ip, v):
    """VC ``v`` of input port ``ip`` of router ``l`` joins the bit set ``vcs`` (and its port ``ports``)."""
    vcs[l * P + ip] |= 1 << v
    ports[l] |= 1 << ip
    busy[l >> 6] |= 1 << (l & 63)


@njit(cache=True, inline="always", _nrt=False)
def _unmark(rt, vcs, ports, l, P, ip, v):
    """VC ``v`` of input port ``ip`` of router ``l`` leaves the bit set ``vcs``."""
    rpi = l * P + ip
    vcs[rpi] &= ~(1 << v)
    if vcs[rpi] == 0:
        ports[l] &= ~(1 << ip)
        if rt.va_ports[l] == 0 and rt.sa_ports[l] == 0:
            rt.busy[l >> 6] &= ~(1 << (l & 63))


@njit(cache=True, inline="always", _nrt=False)
def _wake_va(rt, l, P, V, rpo):
    """Output port ``rpo`` of router ``l`` has a free VC again: the heads parked on it go back to
    VC allocation (those still waiting; a wake that finds nothing to do is harmless)."""
    w = rt.va_wait[rpo]
    if w == 0:
        return
    rt.va_wait[rpo] = 0
    base = l * P * V
    while w != 0:
        iv = lowest(w)
        w &= w - 1
        if rt.rv[base + iv, V_STATE] == VA:
            _mark(rt.va_vcs, rt.va_ports, rt.busy, l, P, iv // V, iv % V)


@njit(cache=True, inline="always", _nrt=False)
def _wake_sa(rt, l, P, V, oq):
    """Output VC ``oq`` got a credit: the input VC parked on it goes back to switch allocation."""
    q = rt.sa_wait[oq]
    if q < 0:
        return
    rt.sa_wait[oq] = -1
    if rt.rv[q, V_STATE] == ACTIVE and rt.rv[q, V_CNT] > 0:
        _mark(rt.sa_vcs, rt.sa_ports, rt.busy, l, P, (q // V) % P, q % V)


@njit(cache=True, _nrt=False)
def rebuild_masks(ctl, rt, nis):
    """Every bit set of ``rt`` and ``nis`` recomputed from the rows (after Python wrote them: a
    fresh region, a re-slice); sets ``S_MASKS_OK``."""
    prm, rv = ctl.prm, rt.rv
    R, P, V = prm[P_R], prm[P_P], prm[P_V]
    rt.busy[:] = 0
    rt.va_wait[:] = 0  # every parked VC is back in its set: tried again, parked again if need be
    rt.sa_wait[:] = -1
    for l in range(R):
        rt.va_ports[l] = 0
        rt.sa_ports[l] = 0
        for p in range(P):
            rpi = l * P + p
            va = sa = free = 0
            for v in range(V):
                q = rpi * V + v
                if rv[q, V_STATE] == VA:
                    va |= 1 << v
                elif rv[q, V_STATE] == ACTIVE and rv[q, V_CNT] > 0:
                    sa |= 1 << v
                if rv[q, V_INUSE] == 0:
                    free |= 1 << v
            rt.va_vcs[rpi], rt.sa_vcs[rpi], rt.free_vcs[rpi] = va, sa, free
            if va:
                rt.va_ports[l] |= 1 << p
            if sa:
                rt.sa_ports[l] |= 1 << p
        if rt.va_ports[l] or rt.sa_ports[l]:
            set_bit(rt.busy, l)
    nis.queued[:] = 0
    for col in range(nis.ni.shape[1]):
        if nis.ni[N_QLEN, col] > 0:
            set_bit(nis.queued, col)
    ctl.sc[S_MASKS_OK] = 1


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
def _free_vc(rt, l, op, q, P, V):
    """Output port ``op`` of router ``l`` for the head at input VC ``q``: its next free VC after
    the input's last grant (round-robin over port * V + VC; -1: none free), and how many of its
    VCs are allocated."""
    m = rt.free_vcs[l * P + op]
    used = V - popcount(m)
    if m == 0:
        return -1, used
    k = rt.rv[q, V_VAIN] - op * V  # the pointer inside this port: its VCs >= k come first
    if 0 <= k < V:
        hi = m & -(1 << k)
        if hi != 0:
            return lowest(hi), used
    return lowest(m), used


@njit(cache=True, inline="always", _nrt=False)
def _eject_vc(prm, rt, l, o, q, pool):
    """(port * V + VC) of the free output VC a head at input VC ``q`` routed to ``o`` asks for,
    or -1: on a link or an NI of one port, the next free VC round-robin (BookSim2); on an NI of
    several, first the port with the fewest VCs allocated (ties: from the packet's index plus
    its input port, mod ports, on - so one source's stream spreads over them and heads from
    different inputs in one cycle start apart), then round-robin within it."""
    P, V = prm[P_P], prm[P_V]
    n = 1
    if o >= prm[P_L0]:
        n = prm[P_NP] if o < prm[P_L0] + prm[P_NP] else prm[P_MP]
    if n == 1:
        pk, _ = _free_vc(rt, l, o, q, P, V)
        return o * V + pk if pk >= 0 else -1
    k = ((pool[rt.buf[q, rt.rv[q, V_HEAD]], F_PKT] & 0xffffffff) + (q // V) % P) % n  # + the input port
    best_used, bov = V + 1, -1
    for _ in range(n):
        op = o + k
        pk, used = _free_vc(rt, l, op, q, P, V)
        if pk >= 0 and used < best_used:
            best_used, bov = used, op * V + pk
        k = k + 1 if k + 1 < n else 0
    return bov


@njit(cache=True, inline="always", _nrt=False)
def _arrive(c, l, ip, vc, slot, ctl, rt, pool):
    """A flit in ``slot`` enters input VC ``vc`` of port ``ip`` of router ``l`` at cycle c."""
    prm, sc, rv = ctl.prm, ctl.sc, rt.rv
    P, V, B = prm[P_P], prm[P_V], prm[P_B]
    rpi = l * P + ip
    q = rpi * V + vc
    rt.rp[rpi, RP_BUF] += 1
    cnt = rv[q, V_CNT]
    t = rv[q, V_HEAD] + cnt  # < 2B: ring position without a division
    rt.buf[q, t - B if t >= B else t] = slot
    rv[q, V_CNT] = cnt + 1
    sc[S_BUFFERED] += 1
    rt.rr[l, RR_BUF] += 1
    state = rv[q, V_STATE]
    if state == IDLE:
        rv[q, V_STATE] = VA
        rv[q, V_READY] = c + prm[P_RD]
        rv[q, V_ROUTE] = _route(prm, rt.coords, rt.rids, l, pool, slot)
        sc[S_VA] += 1
        rt.rr[l, RR_VA] += 1
        _mark(rt.va_vcs, rt.va_ports, rt.busy, l, P, ip, vc)
    elif state == ACTIVE and cnt == 0:
        _mark(rt.sa_vcs, rt.sa_ports, rt.busy, l, P, ip, vc)


@njit(cache=True, inline="always", _nrt=False)
def _credit(l, op, vc, prm, rt):
    """A credit for output VC ``vc`` of port ``op`` of router ``l``."""
    P, V = prm[P_P], prm[P_V]
    oq = (l * P + op) * V + vc
    rv = rt.rv
    rv[oq, V_OCC] -= 1
    _wake_sa(rt, l, P, V, oq)
    if prm[P_WFT] and rv[oq, V_OCC] == 0 and rv[oq, V_TAILSENT]:
        rv[oq, V_INUSE] = 0
        rt.free_vcs[l * P + op] |= 1 << vc
        _wake_va(rt, l, P, V, l * P + op)


@njit(cache=True, inline="always", _nrt=False)
def _sched(sc, counts, items, kind, t, W, a, b, x, slot):
    """Schedule one item of ``kind`` with fields (a, b, x, slot) for cycle t (t - now < W by
    construction; W a power of two). False if the calendar slot is full (a bug)."""
    s = t & (W - 1)
    i = counts[s, kind]
    if i >= items.shape[1]:
        return False
    items[s, i, 0], items[s, i, 1], items[s, i, 2], items[s, i, 3] = a, b, x, slot
    counts[s, kind] = i + 1
    sc[S_CALN] += 1
    return True


@njit(cache=True, inline="always", _nrt=False)
def _vc_alloc(c, l, ctl, rt, pool):
    """VC allocation at router ``l``: each head whose routing is done asks for one free output
    VC; each output VC grants the request nearest after its pointer."""
    prm, sc, scr, rv = ctl.prm, ctl.sc, ctl.scr, rt.rv
    P, V = prm[P_P], prm[P_V]
    PV = P * V
    # a failed request changes nothing but the ready cycle; with a one-cycle allocator that is
    # due again at every cycle, so the head may wait out of the set (va_wait: PV bits)
    park = prm[P_VAD] == 1 and PV <= 64
    nreq = 0
    pm = rt.va_ports[l]
    while pm != 0:
        ip = lowest(pm)
        pm &= pm - 1
        vm = rt.va_vcs[l * P + ip]
        while vm != 0:
            v = lowest(vm)
            vm &= vm - 1
            iv = ip * V + v
            q = l * PV + iv
            if rv[q, V_READY] > c:
                continue
            rv[q, V_READY] = c + prm[P_VAD]
            o = rv[q, V_ROUTE]
            loc = _eject_vc(prm, rt, l, o, q, pool)
            if loc >= 0:
                scr[0, nreq] = iv
                scr[1, nreq] = loc
                nreq += 1
            elif park:  # no free VC at any port it may take: parked until one frees
                _unmark(rt, rt.va_vcs, rt.va_ports, l, P, ip, v)
                n = 1
                if o >= prm[P_L0]:
                    n = prm[P_NP] if o < prm[P_L0] + prm[P_NP] else prm[P_MP]
                for op in range(o, o + n):
                    rt.va_wait[l * P + op] |= 1 << iv
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
        rt.free_vcs[l * P + loc // V] &= ~(1 << (loc % V))
        rv[q, V_STATE] = ACTIVE
        rv[q, V_ROUTE] = loc // V  # the ejection port chosen, on an NI of several
        rv[q, V_OVC] = loc % V
        rv[q, V_VAIN] = loc + 1 if loc + 1 < PV else 0
        rv[oq, V_VAOUT] = iv + 1 if iv + 1 < PV else 0
        sc[S_VA] -= 1
        rt.rr[l, RR_VA] -= 1
        ip, v = iv // V, iv % V
        _unmark(rt, rt.va_vcs, rt.va_ports, l, P, ip, v)
        _mark(rt.sa_vcs, rt.sa_ports, rt.busy, l, P, ip, v)  # a head in VA holds a flit


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

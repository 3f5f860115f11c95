"""Compiled router pipeline of the NoC engine: dimension-order routing, flit and credit
arrival, the event calendar, the bit sets and BookSim2's separable input-first VC allocator (the
switch allocator, built on these, is ``engine_switch``).

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

"""Rounds of a NoC region in compiled code: the kernel's round protocol without Python.

One call of :func:`rounds` runs round after round for one region LP: wait at the epoch barrier
(:mod:`atleus_dist.kernel.compiled_sync`), compute every LP's next time and this LP's horizon
from what the others published, absorb the flits and credits they wrote into this LP's
mailboxes, run the cycle loop to the horizon, write the flits and credits that leave the region
into the mailboxes of their LPs, publish the next event time, the earliest time sent to each
LP and - with forecasts on - the earliest time its state can cause a message to each LP
(:func:`forecast`), bump the epoch. It returns to Python only when Python must act (codes ``RET_*``): the run is
over, the pool needs room, the cycle loop raised a flag (refill, queue or pool growth, rows to
flush, a transfer completed), Python has an event inside the window (a compute event, a transfer
created for a later cycle, a loopback) - then Python runs that window with the generic code and
posts its outbox with :func:`post_rows` - or ``rows_every`` rounds passed (a ``windows`` row).
The message times are the generic path's; horizons are the generic ones widened by the
forecasts (never narrowed: :func:`~atleus_dist.kernel.compiled_sync.horizon_forecast`), so both
paths give the same results. Knows the engine's arrays and the board layout; nothing of Python objects or processes.

Mailboxes (one per parity, sender and receiver): ``mbf[p, src, dst, k]`` flit rows as the engine
writes them (cycle read, router, port, vc, FIELDS); ``mbc[p, src, dst, k]`` credit rows (cycle
applied, router, port, vc). Their counts and ``sent_min`` live in the sender's head row.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from atleus_dist.hw.noc import engine as E
from atleus_dist.hw.noc.engine_state import Inbox
from atleus_dist.kernel.compiled_sync import H_NEXT, H_SENT, NEVER, STRIDE, atomic_store, cycle_counter, \
    horizon_forecast, wait_round

# board: what the LPs of one run share (lp_compiled.CompiledPlane and the kernel's board): epoch
# (the barrier), head (per parity and LP: next time, sent minima, row counts), mbf / mbc (the
# flit and credit mailboxes), la / dist (n, n) direct lookahead and shortest lookahead path in ps,
# lp_of_router (global router -> LP)
Board = namedtuple("Board", "epoch head mbf mbc la dist lp_of_router")
# mail: this LP's inboxes, absorbed into in place: infbox (5, cap) flits, incbox (4, cap) credits
# (engine_state.Inbox's rows), lens (2,) their used columns, g2l (routers,) global -> local router
Mail = namedtuple("Mail", "infbox incbox lens g2l")
# forecast tables (forecast.ForecastTables, same fields)
Forecast = namedtuple("Forecast", "path to_lp cred_lp cred_cycles min_path")
# call: the scalars of one call of rounds (int64 array)
(C_END_PS,          # the run's end (ps)
 C_MAX_WINDOW_PS,   # the widest window allowed (ps; NEVER: no limit)
 C_CLK,             # the router clock period (ps)
 C_END_CYCLE,       # the region's last cycle + 1
 C_CREDIT_DELAY,    # cycles added to a credit that leaves the region (read -> applied)
 C_PY_CYCLE,        # first cycle with a Python-held NoC event (NEVER: none)
 C_TC_PS,           # the next compute event (ps; NEVER: none)
 N_CALL) = range(8)

# rs: the state of one LP's compiled rounds, kept across calls
(R_PHASE, R_ROUND, R_HPS, R_HCYC, R_WAIT, R_BUSY, R_MSGS, R_NEED, R_SINCE, R_FLAG, R_FRONTIER, R_ROWS_EVERY,
 R_FORECAST, R_REACT, R_GAIN, R_GAIN_N, N_RS) = range(17)
GAIN_CAP_CYCLES = 1024  # a forecast's gain counted at most this much (NEVER: nothing to send)
PH_WAIT, PH_ABSORB, PH_RUN, PH_PUBLISH = range(4)
RET_DONE, RET_POOL, RET_FLAG, RET_PYWIN, RET_STATS, RET_ABORT, RET_OVERFLOW, RET_LATE = range(8)


@njit(cache=True, nogil=True)
def post_rows(mb, head, q, i, n, lp_of_router, rows, nrows, clk, count_col):
    """Append ``rows[:nrows]`` (column 0: cycle read, 1: global router) to the mailboxes of
    parity q from LP i, per destination LP; ``count_col``: H_SENT + n (flits) or + 2n (credits).
    Returns False if a mailbox is full."""
    cap = mb.shape[3]
    w = rows.shape[1]
    for k in range(nrows):
        d = lp_of_router[rows[k, 1]]
        c = head[q, i, count_col + d]
        if c >= cap:
            return False
        for f in range(w):
            mb[q, i, d, c, f] = rows[k, f]
        head[q, i, count_col + d] = c + 1
        t = rows[k, 0] * clk
        if t < head[q, i, H_SENT + d]:
            head[q, i, H_SENT + d] = t
    return True


@njit(cache=True, nogil=True, inline="always")
def _absorb(box, length, sc, ptr_at, rows, nrows, g2l, pool, free):
    """Append ``rows[:nrows]`` (cycle, router, port, vc[, FIELDS]) to the inbox ``box[:, :length]``
    (unread from ``sc[ptr_at]``) in place, kept sorted by cycle: the unread part moves to the
    front, each row is inserted behind those of its cycle or earlier (rows arrive nearly in order,
    so this is short). Flits (``pool`` given a row width > 4) take a pool slot. No allocation:
    the generic path's ``absorb_flits`` sorts into new arrays, which cost ~1 us a round here.
    Returns the new length, or -1 if the box is full."""
    ptr = sc[ptr_at]
    rest = length - ptr
    if ptr > 0:
        for col in range(rest):
            for f in range(box.shape[0]):
                box[f, col] = box[f, ptr + col]
        sc[ptr_at] = 0
    length = rest
    flits = rows.shape[1] > 4
    for k in range(nrows):
        if length >= box.shape[1]:
            return -1
        c = rows[k, 0]
        j = length
        while j > 0 and box[0, j - 1] > c:
            for f in range(box.shape[0]):
                box[f, j] = box[f, j - 1]
            j -= 1
        box[0, j], box[1, j], box[2, j], box[3, j] = c, g2l[rows[k, 1]], rows[k, 2], rows[k, 3]
        if flits:
            sc[E.S_NFREE] -= 1
            slot = free[sc[E.S_NFREE]]
            for f in range(pool.shape[1]):
                pool[slot, f] = rows[k, 4 + f]
            box[4, j] = slot
        length += 1
    return length


@njit(cache=True, nogil=True, inline="always")
def _flit_eot(eot, fpath, flp, l, d, t, lcl, anyv):
    """A flit that can be granted at local router ``l`` from cycle ``t`` on, headed to ``d``."""
    pth = fpath[l, d]
    if pth != NEVER:
        j = flp[l, d]
        if t + pth < eot[j]:
            eot[j] = t + pth
    elif lcl != NEVER and t + lcl < anyv:
        return t + lcl
    return anyv


@njit(cache=True, nogil=True)
def forecast(now, ctl, rt, nis, fl, cal, mail, fc, react, py_cycle, tc_cycle, eot):
    """``eot[j]``: the least cycle at which anything this region holds at cycle ``now`` can be
    read across a cut into LP j, given no further input (NEVER: nothing can) - the tables ``fc``
    of :mod:`atleus_dist.hw.noc.forecast`. Flits in buffers are granted at >= now, flits on links
    and in the inbox at >= their arrival, queued packets are read at their router >= LL + 1 after
    injection; credits leave only for flits in cut input ports. Python's events (``py_cycle``: a
    transfer due or a loopback; ``tc_cycle``: a compute event, as the cycle its transfer would be
    created) and synthetic generation may send anywhere from any of their routers; a tail ejected
    here may cause a transfer ``react`` cycles later (NEVER: it causes none)."""
    prm, sc = ctl.prm, ctl.sc
    rv, buf, rp, rr, pool = rt.rv, rt.buf, rt.rp, rt.rr, fl.pool
    fpath, flp, clp, ccyc, minpath = fc.path, fc.to_lp, fc.cred_lp, fc.cred_cycles, fc.min_path
    R, P, V, B, W, LL = prm[E.P_R], prm[E.P_P], prm[E.P_V], prm[E.P_B], prm[E.P_W], prm[E.P_LL]
    n = eot.shape[0]
    for j in range(n):
        eot[j] = NEVER
    gmin = NEVER
    for l in range(R):
        gmin = min(gmin, minpath[l])
    lcl = NEVER if (react == NEVER or gmin == NEVER) else react + LL + 1 + gmin
    anyv = NEVER
    if sc[E.S_BUFFERED] > 0:
        for l in range(R):
            if rr[l, E.RR_BUF] == 0:
                continue
            for ip in range(P):
                rpi = l * P + ip
                if rp[rpi, E.RP_BUF] == 0:
                    continue
                for v in range(V):
                    q = rpi * V + v
                    cnt = rv[q, E.V_CNT]
                    if cnt == 0:
                        continue
                    if clp[rpi] >= 0 and now + ccyc[rpi] < eot[clp[rpi]]:
                        eot[clp[rpi]] = now + ccyc[rpi]
                    h = rv[q, E.V_HEAD]
                    for k in range(cnt):
                        t = h + k
                        slot = buf[q, t - B if t >= B else t]
                        anyv = _flit_eot(eot, fpath, flp, l, pool[slot, E.F_DEST], now, lcl, anyv)
    if sc[E.S_CALN] > 0:
        for b in range(W):
            a = now + ((b - now) & (W - 1))  # items due at cycle c sit in slot c & (W - 1), now <= c < now + W
            for it in range(cal.counts[b, E.K_FLIT]):
                f = cal.flit
                anyv = _flit_eot(eot, fpath, flp, f[b, it, 0], pool[f[b, it, 3], E.F_DEST], a, lcl, anyv)
            if lcl != NEVER and cal.counts[b, E.K_EJECT] > 0 and a + lcl < anyv:
                anyv = a + lcl
    infbox = mail.infbox
    for k in range(sc[E.S_INF], mail.lens[0]):
        a, l, ip = infbox[0, k], infbox[1, k], infbox[2, k]
        rpi = l * P + ip
        if clp[rpi] >= 0 and a + ccyc[rpi] < eot[clp[rpi]]:
            eot[clp[rpi]] = a + ccyc[rpi]
        anyv = _flit_eot(eot, fpath, flp, l, pool[infbox[4, k], E.F_DEST], a, lcl, anyv)
    ni, nq = nis.ni, nis.nq
    qcap = nq.shape[2]
    L = prm[E.P_L]
    for l in range(R):
        t = now + LL + 1
        for c in range(l * L, (l + 1) * L):  # the router's NI ports (engine_layout: column l * L + k)
            for k in range(ni[E.N_QLEN, c]):
                pos = ni[E.N_QHEAD, c] + k
                anyv = _flit_eot(eot, fpath, flp, l, nq[E.Q_DEST, c, pos % qcap], t, lcl, anyv)
        g = ni[E.N_NEXTGEN, l * L]  # generation rows: the core NI's first port only
        if g != NEVER:
            t = max(g, now) + LL + 1  # -1: a chunk to draw, i.e. now
            if minpath[l] != NEVER and t + minpath[l] < anyv:
                anyv = t + minpath[l]
            if lcl != NEVER and t + lcl < anyv:
                anyv = t + lcl
    if gmin != NEVER:
        for t in (py_cycle, tc_cycle):
            if t != NEVER and max(t, now) + LL + 1 + gmin < anyv:
                anyv = max(t, now) + LL + 1 + gmin
    for j in range(n):
        eot[j] = min(eot[j], anyv)


@njit(cache=True, nogil=True, inline="always")
def _take(box, lens, which, sc, ptr_at, rows, nrows, g2l, pool, free):
    """One mailbox (flits or credits) into its inbox ``box[:, :lens[which]]``: -1 when done,
    else the ``RET_*`` code to return (a row for a cycle already simulated; a full inbox)."""
    if nrows == 0:
        return -1
    first = rows[:nrows, 0].min()
    if first < sc[E.S_CYCLE]:
        return RET_LATE
    lens[which] = _absorb(box, lens[which], sc, ptr_at, rows, nrows, g2l, pool, free)
    if lens[which] < 0:
        return RET_OVERFLOW
    sc[E.S_NEXT] = min(sc[E.S_NEXT], first)
    return -1


@njit(cache=True, nogil=True)
def rounds(i, rs, board, call, ctl, rt, nis, fl, cal, mail, rec, fc):
    """Run LP i's rounds until Python must act; returns a ``RET_*`` code. The inboxes are
    ``mail.infbox[:, :lens[0]]`` and ``mail.incbox[:, :lens[1]]`` (absorbed into in place).
    ``call[C_PY_CYCLE]``: the first cycle at which Python has something of its own (a transfer
    due later, a loopback; NEVER if none); ``call[C_TC_PS]``: the time of its next compute event
    (NEVER if none). Both stay valid until this returns. With ``rs[R_FORECAST]`` the LP publishes
    its earliest-output forecast per LP (:func:`forecast`, tables ``fc``) and takes its horizon
    from the others' (:func:`horizon_forecast`); ``board.la`` is the direct lookahead of every
    channel."""
    epoch, head, mbf, mbc, la, dist = board.epoch, board.head, board.mbf, board.mbc, board.la, board.dist
    end_ps, max_window_ps, clk, end_cycle = call[C_END_PS], call[C_MAX_WINDOW_PS], call[C_CLK], call[C_END_CYCLE]
    credit_delay, py_cycle, tc_ps = call[C_CREDIT_DELAY], call[C_PY_CYCLE], call[C_TC_PS]
    sc, pool, free, g2l, lens = ctl.sc, fl.pool, fl.free, mail.g2l, mail.lens
    infbox, incbox, outf, outc = mail.infbox, mail.incbox, rec.outf, rec.outc
    n = epoch.shape[0] // STRIDE - 1
    abort_at = n * STRIDE
    nxt = np.empty(n, dtype=np.int64)
    nextv = np.empty(n, dtype=np.int64)
    insent = np.empty(n, dtype=np.int64)
    eot = np.empty(n, dtype=np.int64)
    t_enter = cycle_counter()
    while True:
        r = rs[R_ROUND]
        p = r & 1
        q = 1 - p
        ph = rs[R_PHASE]
        if ph == PH_WAIT:
            w = wait_round(epoch, n, r, abort_at)
            if w < 0:
                return RET_ABORT
            rs[R_WAIT] += w
            for j in range(n):
                nextv[j] = head[p, j, H_NEXT]
                insent[j] = NEVER
            for k in range(n):
                for j in range(n):
                    insent[j] = min(insent[j], head[p, k, H_SENT + j])
            for j in range(n):
                nxt[j] = min(nextv[j], insent[j])
            m = NEVER
            for j in range(n):
                m = min(m, nxt[j])
            rs[R_FRONTIER] = min(m, end_ps)
            if m >= end_ps:
                rs[R_BUSY] += cycle_counter() - t_enter
                return RET_DONE
            h = horizon_forecast(i, head, p, nextv, insent, la, dist, end_ps, max_window_ps, nxt)
            rs[R_HPS] = h
            rs[R_HCYC] = min(-(-h // clk), end_cycle)
            for j in range(n):
                head[q, i, H_SENT + j] = NEVER
                head[q, i, H_SENT + n + j] = 0
                head[q, i, H_SENT + 2 * n + j] = 0
            rs[R_PHASE] = PH_ABSORB
            continue
        if ph == PH_ABSORB:
            need = 0
            for k in range(n):
                if k != i:
                    need += head[p, k, H_SENT + n + i]
            if sc[E.S_NFREE] < need + 1:
                rs[R_NEED] = need + 1
                rs[R_BUSY] += cycle_counter() - t_enter
                return RET_POOL
            for k in range(n):
                if k == i:
                    continue
                nf = head[p, k, H_SENT + n + i]
                nc = head[p, k, H_SENT + 2 * n + i]
                code = _take(infbox, lens, 0, sc, E.S_INF, mbf[p, k, i], nf, g2l, pool, free)
                if code < 0:
                    code = _take(incbox, lens, 1, sc, E.S_INC, mbc[p, k, i], nc, g2l, pool, free)
                if code >= 0:
                    return code
            rs[R_PHASE] = PH_RUN
            continue
        if ph == PH_RUN:
            if tc_ps < rs[R_HPS] or py_cycle < rs[R_HCYC]:
                rs[R_BUSY] += cycle_counter() - t_enter
                return RET_PYWIN
            f = E.run(rs[R_HCYC], ctl, rt, nis, fl, cal, Inbox(infbox[:, :lens[0]], incbox[:, :lens[1]]), rec)
            nof, noc = sc[E.S_OFN], sc[E.S_OCN]
            rs[R_MSGS] += nof + noc
            for k in range(noc):  # credits travel stamped with the cycle they are applied
                outc[k, 0] += credit_delay
            ok = post_rows(mbf, head, q, i, n, board.lp_of_router, outf, nof, clk, H_SENT + n)
            ok &= post_rows(mbc, head, q, i, n, board.lp_of_router, outc, noc, clk, H_SENT + 2 * n)
            sc[E.S_OFN] = 0
            sc[E.S_OCN] = 0
            if not ok:
                return RET_OVERFLOW
            if f != 0:
                rs[R_FLAG] = f
                rs[R_BUSY] += cycle_counter() - t_enter
                return RET_FLAG
            rs[R_PHASE] = PH_PUBLISH
            continue
        # PH_PUBLISH
        rn = max(min(sc[E.S_NEXT], py_cycle), sc[E.S_CYCLE])
        nps = NEVER if rn >= end_cycle else rn * clk
        head[q, i, H_NEXT] = min(nps, tc_ps)
        if rs[R_FORECAST]:
            now = sc[E.S_CYCLE]
            forecast(now, ctl, rt, nis, fl, cal, mail, fc, rs[R_REACT], py_cycle,
                     NEVER if tc_ps == NEVER else -(-tc_ps // clk), eot)
            gen = NEVER if head[q, i, H_NEXT] == NEVER else head[q, i, H_NEXT] // clk  # the generic bound's base
            for j in range(n):
                head[q, i, H_SENT + 3 * n + j] = NEVER if eot[j] == NEVER else eot[j] * clk
                if j != i and la[i, j] != NEVER:  # what the others' horizons gain, in cycles
                    base = NEVER if gen == NEVER else gen + la[i, j] // clk
                    g = min(eot[j], now + GAIN_CAP_CYCLES) - min(base, now + GAIN_CAP_CYCLES)
                    rs[R_GAIN] += max(g, 0)
                    rs[R_GAIN_N] += 1
        else:
            for j in range(n):
                head[q, i, H_SENT + 3 * n + j] = 0
        atomic_store(epoch, i * STRIDE, r + 1)
        rs[R_ROUND] = r + 1
        rs[R_PHASE] = PH_WAIT
        rs[R_SINCE] += 1
        if rs[R_SINCE] >= rs[R_ROWS_EVERY]:
            rs[R_BUSY] += cycle_counter() - t_enter
            return RET_STATS

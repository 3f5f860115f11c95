"""Re-slicing NoC regions: the state of the regions of one partition, taken at a checkpoint,
written into the (freshly built) regions of another partition, so a run can resume on it.

Done in two steps. :func:`gather` merges the regions into one partition-independent
:class:`NocState`: every per-router, per-port, per-VC and per-NI-port row under its global index
(local router ``l`` of a region is router ``rids[l]``; port rows ``l * P + p``, VC rows
``(l * P + p) * V + v``, NI columns ``l * L + k``, nodes - per-NI statistics, explicit packet
indices - ``l * NN + j``), every flit in flight
under a global flit id (pool slots are per region: the VC buffers, the calendar and the inbox
refer to them), every pending item - flit arrival, router credit, NI credit, ejection - as a
record with its absolute cycle and global router, whether it sat in the event calendar (due at
the cycle congruent to its slot mod ``W`` in ``[cycle, cycle + W)``) or in the inbox of a cut
link (a flit stamped with the cycle it is read, a credit with the cycle it is applied - the same
cycles the calendar uses). :func:`scatter` writes the part of that state a new region owns into
it: rows by global index, flits into fresh pool slots, every item into the calendar of the
region that owns its router. The engine processes calendar and inbox items of one cycle alike
(per key (router, port, VC), at most one a cycle), so an item on a link that became a cut may sit
in the calendar and one on a link that stopped being a cut needed no inbox; inboxes start empty.

Python-side state moves by owner too: transfers not yet due (``future``) with their source node,
loopbacks, completions not yet taken and packets still in flight per tag (``remaining``) with the
region of their destination node (the LP that counts the tails and reports the completion; where
that node is not known - a scripted transfer that only the ``transfers`` table records - the first
region, as any LP may write that row), packet rows already
recorded by the region owning their destination router. Counts that only describe work done
(cycles run, flit hops) go to the first new region, so their sums stay. The engine's table of
tails counted down (``tdo`` rows 3-4) is rebuilt from ``remaining`` (the same counts: Python
drains the engine's tail records after every call). Knows the engine's array layout; nothing of
the kernel, files or backends.
"""

from __future__ import annotations

import dataclasses
import heapq

import numpy as np

from atleus_dist.hw.noc import engine_layout as E
from atleus_dist.kernel.snapshot import SnapshotError


@dataclasses.dataclass
class NocState:
    """The NoC at a cycle boundary, indexed globally (see the module docstring)."""

    cycle: int
    rv: np.ndarray        # (routers * P * V, N_RV)
    buf: np.ndarray       # (routers * P * V, B) global flit ids (-1: no flit)
    rp: np.ndarray        # (routers * P, N_RP)
    rr: np.ndarray        # (routers, N_RR)
    ni: np.ndarray        # (N_NI, routers * L)
    nsv: np.ndarray       # (N_SV, routers * L, V)
    nst: np.ndarray       # (N_NS, routers * NN) per node
    gd: np.ndarray        # (2, routers, K)
    explicit: np.ndarray  # (routers * NN,)
    nq: np.ndarray        # (N_Q, routers * L, cap), every ring unrolled (head at 0)
    flits: np.ndarray     # (flits, len(FIELDS))
    arrivals: np.ndarray  # (n, 5) cycle, router, input port, vc, flit
    credits: np.ndarray   # (n, 4) cycle applied, router, output port, vc
    src_credits: np.ndarray  # (n, 4) cycle, router, NI port k, vc
    ejects: np.ndarray    # (n, 5) cycle, router, flit, output vc, output port
    future: list          # (cycle, order, global node row, dest, size, count, last, tag, base)
    loopback: list        # (cycle, tag, router or -1 when unknown)
    completed: list       # (tag, cycle, router or -1 when unknown): completions not yet taken
    remaining: dict       # tag -> (packets left, last cycle, destination router)
    packets: list         # column chunks of packets ejected, not yet written
    hops: int
    cycles_run: int


def _rows(rids: np.ndarray, k: int) -> np.ndarray:
    """Global rows of per-router blocks of ``k`` rows (local block l is router rids[l])."""
    return (rids[:, None] * k + np.arange(k)).ravel()


def _calendar(reg, kind: int) -> np.ndarray:
    """(n, 5): due cycle and the 4 fields of every item of ``kind`` in the region's calendar."""
    W, c0 = int(reg.prm[E.P_W]), reg.cycle
    out = []
    for s in range(W):
        n = int(reg.caln[s, kind])
        if n:
            t = c0 + (s - c0) % W
            out.append(np.column_stack([np.full(n, t, dtype=np.int64), reg.cal[kind][s, :n]]))
    return np.concatenate(out) if out else np.zeros((0, 5), dtype=np.int64)


def _node_router(node: int, n_routers: int) -> int:
    return node - n_routers if node >= n_routers else node


def gather(regions: list, cycle: int, node_of_tag=None) -> NocState:
    """Merge the regions (of one partition, each at most at ``cycle`` with nothing pending
    before it) into a :class:`NocState`. ``node_of_tag(tag)``: the destination node of a
    transfer (None: found from its packets still in flight or queued)."""
    r0 = regions[0]
    topo, nis0 = r0.topo, r0.nis
    NR, P, V, B = topo.n_routers, r0.routers.P, r0.routers.V, r0.routers.B
    L, NN, K = nis0.L, nis0.nn, nis0.K
    cap = max(int(r.nis.nq.shape[2]) for r in regions)
    st = NocState(
        cycle=cycle, rv=np.zeros((NR * P * V, E.N_RV), np.int64), buf=np.full((NR * P * V, B), -1, np.int64),
        rp=np.zeros((NR * P, E.N_RP), np.int64), rr=np.zeros((NR, E.N_RR), np.int64),
        ni=np.zeros((E.N_NI, NR * L), np.int64), nsv=np.zeros((E.N_SV, NR * L, V), np.int64),
        nst=np.zeros((E.N_NS, NR * NN), np.int64), gd=np.zeros((2, NR, K), np.int64),
        explicit=np.zeros(NR * NN, np.int64), nq=np.zeros((E.N_Q, NR * L, cap), np.int64),
        flits=np.zeros((0, len(E.FIELDS)), np.int64), arrivals=np.zeros((0, 5), np.int64),
        credits=np.zeros((0, 4), np.int64), src_credits=np.zeros((0, 4), np.int64),
        ejects=np.zeros((0, 5), np.int64), future=[], loopback=[], completed=[], remaining={}, packets=[], hops=0,
        cycles_run=0)
    flits, arrivals, credits, src_credits, ejects = [], [], [], [], []
    pending_tags: list[tuple[int, int, int]] = []  # (tag, packets left, last), destination to find
    dest_of_tag: dict[int, int] = {}
    n_flits = 0
    for reg in regions:
        sc, ra, ni = reg.sc, reg.routers, reg.nis
        for name, idx in (("flits leaving", E.S_OFN), ("credits leaving", E.S_OCN), ("tail records", E.S_TDN)):
            if sc[idx]:
                raise SnapshotError(f"NoC region {reg.lp_id}: {name} not drained at the checkpoint")
        if reg.out:
            raise SnapshotError(f"NoC region {reg.lp_id}: messages not taken at the checkpoint")
        if reg.cycle > cycle:
            raise SnapshotError(f"NoC region {reg.lp_id} is at cycle {reg.cycle}, past the checkpoint's {cycle}")
        rids = reg.rids
        vrows = _rows(_rows(rids, P), V)
        # the flits this region holds, by pool slot -> global flit id
        head, cnt = ra.rv[:, E.V_HEAD], ra.rv[:, E.V_CNT]
        pos = (head[:, None] + np.arange(B)) % B
        valid = np.arange(B)[None, :] < cnt[:, None]
        cal_f, cal_c, cal_s, cal_e = (_calendar(reg, k) for k in (E.K_FLIT, E.K_CREDIT, E.K_SRC, E.K_EJECT))
        inf = reg.inf[:, int(sc[E.S_INF]):].T
        inc = reg.inc[:, int(sc[E.S_INC]):].T
        ring = np.take_along_axis(ra.buf, pos, axis=1)
        used = np.concatenate([ring[valid], cal_f[:, 4], cal_e[:, 2], inf[:, 4]])
        slots = np.unique(used)
        if len(slots) != len(used):
            raise SnapshotError(f"NoC region {reg.lp_id}: a flit slot is referenced twice")
        gid = np.full(reg.pool.data.shape[0], -1, np.int64)
        gid[slots] = n_flits + np.arange(len(slots))
        n_flits += len(slots)
        flits.append(reg.pool.data[slots])
        # rows by global index (a VC's ring keeps its head; slots become global flit ids)
        st.rv[vrows] = ra.rv
        gbuf = np.full(ra.buf.shape, -1, np.int64)
        np.put_along_axis(gbuf, pos, np.where(valid, gid[ring], -1), axis=1)
        st.buf[vrows] = gbuf
        st.rp[_rows(rids, P)] = ra.rp
        st.rr[rids] = ra.rr
        cols = _rows(rids, L)
        st.ni[:, cols] = ni.ni
        st.nsv[:, cols] = ni.nsv
        st.nst[:, _rows(rids, NN)] = ni.nst
        st.gd[:, rids] = ni.gd
        st.explicit[_rows(rids, NN)] = ni.explicit
        qn = ni.nq.shape[2]
        order = (ni.ni[E.N_QHEAD][:, None] + np.arange(qn)) % qn
        for q in range(E.N_Q):
            st.nq[q, cols, :qn] = np.take_along_axis(ni.nq[q], order, axis=1)
        st.ni[E.N_QHEAD, cols] = 0
        # pending items with global routers and flit ids
        arrivals += [np.column_stack([cal_f[:, 0], rids[cal_f[:, 1]], cal_f[:, 2], cal_f[:, 3], gid[cal_f[:, 4]]]),
                     np.column_stack([inf[:, 0], rids[inf[:, 1]], inf[:, 2], inf[:, 3], gid[inf[:, 4]]])]
        credits += [np.column_stack([cal_c[:, 0], rids[cal_c[:, 1]], cal_c[:, 2], cal_c[:, 3]]),
                    np.column_stack([inc[:, 0], rids[inc[:, 1]], inc[:, 2], inc[:, 3]])]
        src_credits.append(np.column_stack([cal_s[:, 0], rids[cal_s[:, 1] // L], cal_s[:, 1] % L, cal_s[:, 2]]))
        ejects.append(np.column_stack([cal_e[:, 0], rids[cal_e[:, 1]], gid[cal_e[:, 2]], cal_e[:, 3], cal_e[:, 4]]))
        # Python's side
        for c, seq, l, dest, size, count, last, tag, base in reg.future:
            st.future.append((c, len(st.future), int(rids[l // NN]) * NN + l % NN, dest, size, count, last, tag, base))
            dest_of_tag.setdefault(tag, dest)
        for c, tag in reg.loopback:
            st.loopback.append((c, tag, -1 if node_of_tag is None else _node_router(node_of_tag(tag), NR)))
        for tag, c in reg.completed:  # completions the LP has not taken yet (it does at its next window)
            st.completed.append((tag, c, -1 if node_of_tag is None else _node_router(node_of_tag(tag), NR)))
        for tag, (left, last) in reg.remaining.items():
            pending_tags.append((tag, left, last))
        ni.flush_packets()
        st.packets += ni._packets
        pool = reg.pool.data[slots]
        for t, d in zip(pool[:, E.F_TAG].tolist(), pool[:, E.F_DEST].tolist()):
            dest_of_tag.setdefault(t, d)
        live = np.arange(qn)[None, :] < ni.ni[E.N_QLEN][:, None]  # queue entries, head first
        qtag = np.take_along_axis(ni.nq[E.Q_TAG], order, axis=1)[live]
        qdest = np.take_along_axis(ni.nq[E.Q_DEST], order, axis=1)[live]
        for t, d in zip(qtag.tolist(), qdest.tolist()):
            dest_of_tag.setdefault(t, d)
        st.hops += int(sc[E.S_HOPS])
        st.cycles_run += int(sc[E.S_RUN])
    for tag, left, last in pending_tags:
        node = node_of_tag(tag) if node_of_tag is not None else dest_of_tag.get(tag)
        if node is None:
            raise SnapshotError(f"transfer {tag}: packets left to eject but none in flight or queued (a bug)")
        st.remaining[tag] = (left, last, _node_router(int(node), NR))
    st.flits = np.concatenate(flits)
    st.arrivals, st.credits = np.concatenate(arrivals), np.concatenate(credits)
    st.src_credits, st.ejects = np.concatenate(src_credits), np.concatenate(ejects)
    for name in ("arrivals", "credits", "src_credits", "ejects"):
        items = getattr(st, name)
        if len(items) and int(items[:, 0].min()) < cycle:
            raise SnapshotError(f"NoC {name} due at cycle {int(items[:, 0].min())}, before the checkpoint's {cycle}")
    return st


def _sorted(items: np.ndarray) -> np.ndarray:
    """Items in a fixed order (by every column, cycle first): the state written does not depend
    on the old partition's."""
    return items[np.lexsort(items.T[::-1])] if len(items) else items


def _next_event(reg) -> int:
    """The engine's ``next_event`` of a region just written (first cycle with work, >= its cycle)."""
    sc, c = reg.sc, reg.cycle
    if sc[E.S_BUFFERED] > 0 or sc[E.S_QUEUED] > 0:
        return c
    t = E.NEVER
    W = int(reg.prm[E.P_W])
    for d in range(W):
        if reg.caln[(c + d) & (W - 1)].sum() > 0:
            t = c + d
            break
    gen = reg.nis.ni[E.N_NEXTGEN]
    if len(gen) and int(gen.min()) < 0:  # a node waits for its next chunk of draws: at once
        return c
    return max(min(t, int(gen.min()) if len(gen) else E.NEVER), c)


def scatter(st: NocState, reg, first: bool) -> None:
    """Write the part of ``st`` that region ``reg`` (fresh from its constructor, of the new
    partition) owns into it; ``first``: the region that takes the partition-wide counts."""
    ra, ni, sc, pool = reg.routers, reg.nis, reg.sc, reg.pool
    rids, P, V, L, NN = reg.rids, ra.P, ra.V, ni.L, ni.nn
    own = np.zeros(reg.topo.n_routers, dtype=bool)
    own[rids] = True
    vrows, cols = _rows(_rows(rids, P), V), _rows(rids, L)
    ra.rv[...] = st.rv[vrows]
    ra.rp[...] = st.rp[_rows(rids, P)]
    ra.rr[...] = st.rr[rids]
    ni.ni[...] = st.ni[:, cols]
    ni.nsv[...] = st.nsv[:, cols]
    ni.nst[...] = st.nst[:, _rows(rids, NN)]
    ni.gd[...] = st.gd[:, rids]
    ni.explicit[...] = st.explicit[_rows(rids, NN)]
    ni.nq = np.ascontiguousarray(st.nq[:, cols])
    # scalars: everything but the pool's free count is recounted from the rows
    cap = pool.data.shape[0]
    sc[...] = 0
    sc[E.S_CYCLE] = st.cycle
    sc[E.S_BUFFERED], sc[E.S_VA] = int(ra.rr[:, E.RR_BUF].sum()), int(ra.rr[:, E.RR_VA].sum())
    sc[E.S_QUEUED] = int(ni.ni[E.N_QLEN].sum())
    if first:
        sc[E.S_HOPS], sc[E.S_RUN] = st.hops, st.cycles_run
    # flits into fresh pool slots
    pool.data[...] = 0
    pool.free = np.arange(cap - 1, -1, -1, dtype=np.int64)
    sc[E.S_NFREE] = cap
    arr = _sorted(st.arrivals[own[st.arrivals[:, 1]]])
    cre = _sorted(st.credits[own[st.credits[:, 1]]])
    src = _sorted(st.src_credits[own[st.src_credits[:, 1]]])
    ej = _sorted(st.ejects[own[st.ejects[:, 1]]])
    gbuf = st.buf[vrows]
    need = np.unique(np.concatenate([gbuf[gbuf >= 0], arr[:, 4], ej[:, 2]]))
    slot_of = np.full(len(st.flits), -1, dtype=np.int64)
    if len(need):
        pool.grow(len(need) + pool.min_free)
        slots = pool.alloc(len(need))
        pool.data[slots] = st.flits[need]
        slot_of[need] = slots
    ra.buf[...] = np.where(gbuf >= 0, slot_of[np.maximum(gbuf, 0)], 0) if len(slot_of) else 0
    # every pending item into the calendar of this region (inboxes start empty)
    reg.caln[...] = 0
    for c in reg.cal:
        c[...] = 0
    g2l, W = reg.g2l, int(reg.prm[E.P_W])
    kinds = ((E.K_FLIT, arr, lambda r: (g2l[r[1]], r[2], r[3], slot_of[r[4]])),
             (E.K_CREDIT, cre, lambda r: (g2l[r[1]], r[2], r[3], 0)),
             (E.K_SRC, src, lambda r: (g2l[r[1]] * L + r[2], r[3], 0, 0)),
             (E.K_EJECT, ej, lambda r: (g2l[r[1]], slot_of[r[2]], r[3], r[4])))
    for kind, items, fields in kinds:
        if len(items) and int(items[:, 0].max()) >= st.cycle + W:
            raise SnapshotError(f"a NoC item due at cycle {int(items[:, 0].max())}, beyond the calendar")
        for row in items.tolist():
            s = row[0] & (W - 1)
            i = int(reg.caln[s, kind])
            if i >= reg.cal[kind].shape[1]:
                raise SnapshotError(f"NoC region {reg.lp_id}: more items in one calendar slot than it holds")
            reg.cal[kind][s, i] = fields(row)
            reg.caln[s, kind] = i + 1
        sc[E.S_CALN] += len(items)
    reg.inf = np.zeros((5, 0), dtype=np.int64)
    reg.inc = np.zeros((4, 0), dtype=np.int64)
    # transfers: not yet due (by source node), loopbacks and tails to count (by destination)
    reg.future = []
    for c, _order, node, dest, size, count, last, tag, base in sorted(st.future, key=lambda f: f[:2]):
        if own[node // NN]:
            reg.future.append((c, len(reg.future), int(g2l[node // NN]) * NN + node % NN, dest, size, count,
                               last, tag, base))
    heapq.heapify(reg.future)
    reg._seq = len(reg.future)
    reg.loopback = [(c, tag) for c, tag, r in st.loopback if (own[r] if r >= 0 else first)]
    heapq.heapify(reg.loopback)
    reg.completed = [(tag, c) for tag, c, r in st.completed if (own[r] if r >= 0 else first)]
    reg.out = {}
    reg.remaining = {}
    tdo = reg.tdo
    tdo[...] = 0
    tdo[3] = -1
    cap_t = tdo.shape[1]
    for tag, (left, last, r) in sorted(st.remaining.items()):
        if not own[r]:
            continue
        reg.remaining[tag] = [left, last]
        i = tag % cap_t
        for _ in range(cap_t):
            if tdo[3, i] == -1:
                break
            i = (i + 1) % cap_t
        else:
            raise SnapshotError(f"NoC region {reg.lp_id}: more transfers in flight than its tail table holds")
        tdo[3, i], tdo[4, i] = tag, left
    # packet rows already recorded go with their destination router
    ni._packets = []
    for chunk in st.packets:
        keep = own[chunk["dest"] % reg.topo.n_routers]  # a node: its router, or n_routers + router
        if keep.any():
            ni._packets.append({k: v[keep].copy() for k, v in chunk.items()})
    ni.pko[...] = 0
    sc[E.S_NEXT] = _next_event(reg)


def reslice_lps(old: dict, new: dict, t_ps: int, node_of_tag=None) -> None:
    """Move the state of NoC-region LPs ``old`` (every LP of one partition, restored from a
    checkpoint at ``t_ps``) into ``new`` (every LP of another partition, fresh from the run's
    factory): the regions (:func:`gather`, :func:`scatter`), then each LP's own counters - its
    time (``t_ps``: every event before it was processed), message sequence (continued past the
    highest used), the events and completed scripted transfers so far (to the first LP)."""
    first = min(new)
    clk = new[first].clk
    cycle = -(-t_ps // clk)
    late = [i for i, lp in old.items() if lp.now_ps > t_ps]
    if late:
        raise SnapshotError(f"LP {late[0]} is at {old[late[0]].now_ps} ps, past the checkpoint's {t_ps} ps")
    st = gather([old[i].region for i in sorted(old)], cycle, node_of_tag)
    for j in sorted(new):
        scatter(st, new[j].region, j == first)
    seq = max(lp.seq for lp in old.values())
    for j, lp in new.items():
        lp.now_ps, lp.seq = t_ps, seq
        lp.events_committed = sum(o.events_committed for o in old.values()) if j == first else 0
        lp.done_tags, lp.done_cycles = [], []
    new[first].done_tags = [a for i in sorted(old) for a in old[i].done_tags]
    new[first].done_cycles = [a for i in sorted(old) for a in old[i].done_cycles]

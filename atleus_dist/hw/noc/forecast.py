"""Earliest-output forecasts of a NoC region (Manifold's FNM idea, made exact for this router):
the tables that let a region say, from its own state, the least time at which anything it holds
can cause a message on a cut link to each other LP - usually later than ``next event + cut
lookahead``, which is all the kernel assumes.

Flits follow dimension-order routes, so a flit's remaining route to a cut is known from its
router and destination. Between a switch grant at one router and the next grant a flit needs at
least ``SAD + CB + BUSY + LAT - 1`` cycles (the flit lookahead of that link,
:func:`partition.channels`; a body flit of an active VC can be granted the cycle it is read), so
a flit granted at ``c`` at local router ``l`` cannot be read across the cut before
``c + path[l, dest]``, the sum of those lookaheads along its route up to and including the first
link that leaves the region. Credits leave only for flits in cut input ports, ``SAD + LAT + CD``
after their grant. Everything else a region can do (a queued packet: read at its router
``LL + 1`` cycles after injection; a completion that releases compute: ``react`` cycles later)
is bounded with the same tables. The compiled rounds use them in
:func:`engine_rounds.forecast`. Knows the topology and the router's delays; nothing of LPs'
state or of backends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atleus_dist.kernel.time import NEVER_PS as NEVER


@dataclass
class ForecastTables:
    """Per local router ``l`` and global destination ``d``: ``path[l, d]`` cycles from a grant at
    ``l`` to the read of the first cut link on the route (NEVER: the route stays in the region),
    ``to_lp[l, d]`` the LP that link enters; per local input port (``l * P + ip``): ``cred_lp``
    (the LP its credits go to, -1: inside) and ``cred_cycles``; ``min_path[l]`` the least
    ``path[l, :]`` (a packet of unknown destination at ``l``)."""

    path: np.ndarray
    to_lp: np.ndarray
    cred_lp: np.ndarray
    cred_cycles: np.ndarray
    min_path: np.ndarray


def dor_port(coords: np.ndarray, cur: np.ndarray, dest: np.ndarray, local: int) -> np.ndarray:
    """``engine_router._route`` on arrays: the first differing coordinate, + before -."""
    port = np.full(cur.shape, local, dtype=np.int64)
    done = np.zeros(cur.shape, dtype=bool)
    for d in range(coords.shape[1]):
        a, b = coords[cur, d], coords[dest, d]
        m = ~done & (a != b)
        port[m] = 2 * d + np.where(a[m] < b[m], 0, 1)
        done |= m
    return port


def build(topo, lp_of_router: np.ndarray, rids: np.ndarray, lp_id: int, router) -> ForecastTables:
    coords = np.asarray(topo.coords, dtype=np.int64)
    P = topo.n_ports
    local = P - 1
    n = topo.n_routers
    R = len(rids)
    flit_la = (router.sw_alloc_delay_cycles + router.crossbar_delay_cycles + topo.busy_cycles
               + topo.latency_cycles - 1).astype(np.int64)
    cur = np.repeat(np.asarray(rids, dtype=np.int64), n)
    dest = np.tile(np.arange(n, dtype=np.int64), R)
    acc = np.zeros(len(cur), dtype=np.int64)
    path = np.full(len(cur), NEVER, dtype=np.int64)
    to_lp = np.full(len(cur), -1, dtype=np.int64)
    live = cur != dest
    for _ in range(int(np.asarray(topo.dims).sum()) + 1):  # a DOR route is at most sum(dims) hops
        idx = np.flatnonzero(live)
        if not len(idx):
            break
        c = cur[idx]
        port = dor_port(coords, c, dest[idx], local)
        nxt = topo.out_router[c, port]
        assert (nxt >= 0).all(), "a DOR route left the mesh"
        acc[idx] += flit_la[c, port]
        out = lp_of_router[nxt] != lp_id
        path[idx[out]] = acc[idx[out]]
        to_lp[idx[out]] = lp_of_router[nxt[out]]
        cur[idx] = nxt
        live[idx[out]] = False
        live[idx] &= cur[idx] != dest[idx]
    # destinations are nodes: 0..n-1 the core NIs, n..2n-1 the memory controllers' NIs of the
    # same routers (topology.n_nodes) - a route to either is the route to its router
    cols = np.arange(topo.n_nodes) % n
    path = path.reshape(R, n)[:, cols]
    to_lp = to_lp.reshape(R, n)[:, cols]
    up = topo.out_router[rids]  # (R, P): the neighbour feeding input port ip
    cred_lp = np.where((up >= 0) & (lp_of_router[np.maximum(up, 0)] != lp_id), lp_of_router[np.maximum(up, 0)], -1)
    cred_lp[:, topo.local_port:] = -1  # every NI port of the router (a core's and a controller's)
    cred_cycles = (router.sw_alloc_delay_cycles + topo.latency_cycles[rids] + router.credit_delay_cycles)
    return ForecastTables(path=np.ascontiguousarray(path), to_lp=np.ascontiguousarray(to_lp),
                          cred_lp=np.ascontiguousarray(cred_lp.reshape(-1), dtype=np.int64),
                          cred_cycles=np.ascontiguousarray(cred_cycles.reshape(-1), dtype=np.int64),
                          min_path=path.min(axis=1) if n else np.zeros(R, dtype=np.int64))

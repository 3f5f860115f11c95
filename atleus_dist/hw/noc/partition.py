"""Partitions of the NoC into regions (one LP each) and the channels/lookaheads between them.

``single`` (one LP), ``by-tier`` (one LP per tier), ``tiers:g0,g1,...`` (tier z in LP g_z),
``blocks:AxB`` (A x B column blocks through all tiers) or ``map:l0,l1,...`` (an explicit LP per
router); ``auto`` is resolved before this by :mod:`atleus_dist.hw.noc.plan`. Channels and their
exact lookaheads: :func:`channels`. Knows nothing of how regions are simulated.
"""

from __future__ import annotations

import numpy as np

from atleus_dist.kernel.errors import ConfigError

PARTITIONS = "auto, single, by-tier, tiers:<lp per tier>, blocks:AxB, map:<lp per router, comma separated>"


def partition_map(spec: str, topo) -> np.ndarray:
    """LP id of every router (LP ids 0..n-1, every LP non-empty)."""
    n = topo.n_routers
    if not isinstance(spec, str):
        raise ConfigError("partition", f"must be a string, got {spec!r}", allowed=PARTITIONS)
    if spec == "single":
        lp = np.zeros(n, dtype=np.int64)
    elif spec == "by-tier":
        lp = topo.coords[:, 2].astype(np.int64)
    elif spec.startswith("tiers:"):
        try:
            group = np.array([int(x) for x in spec[6:].split(",")], dtype=np.int64)
        except ValueError:
            raise ConfigError("partition", f"tiers must look like tiers:0,0,1,1, got {spec!r}") from None
        z = topo.coords[:, 2].astype(np.int64)
        if len(group) != int(z.max()) + 1:
            raise ConfigError("partition", f"tiers needs {int(z.max()) + 1} entries (one per tier), got {len(group)}")
        if group.min() < 0 or sorted(set(group.tolist())) != list(range(group.max() + 1)):
            raise ConfigError("partition", "tiers LP ids must be 0..n-1 with none empty")
        lp = group[z]
    elif spec == "auto":
        raise ConfigError("partition", "auto must be resolved by the planner before the run is built")
    elif spec.startswith("blocks:"):
        try:
            a, b = (int(x) for x in spec[7:].lower().split("x"))
        except ValueError:
            raise ConfigError("partition", f"blocks must look like blocks:2x2, got {spec!r}") from None
        X, Y = topo.dims[0], topo.dims[1]
        if not (1 <= a <= X and 1 <= b <= Y):
            raise ConfigError("partition", f"blocks:{a}x{b} does not fit a {X}x{Y} tier")
        bx = topo.coords[:, 0] * a // X
        by = topo.coords[:, 1] * b // Y
        lp = (bx + a * by).astype(np.int64)
    elif spec.startswith("map:"):
        try:
            lp = np.array([int(x) for x in spec[4:].split(",")], dtype=np.int64)
        except ValueError:
            raise ConfigError("partition", "map must be comma-separated integers") from None
        if len(lp) != n:
            raise ConfigError("partition", f"map needs {n} entries (one per router), got {len(lp)}")
        if lp.min() < 0 or sorted(set(lp.tolist())) != list(range(lp.max() + 1)):
            raise ConfigError("partition", "map LP ids must be 0..n-1 with none empty")
    else:
        raise ConfigError("partition", f"unknown partition {spec!r}", allowed=PARTITIONS)
    return lp


def channels(topo, lp_of_router: np.ndarray, clock_period_ps: int, router=None) -> list[tuple[int, int, int]]:
    """Kernel channels (src LP, dst LP, lookahead ps) for every pair of LPs joined by a link.

    The lookahead of a cut link is the least delay from an event of the sending region to the
    time of a message it causes on that link (``engine_router._sw_alloc``, the only place that
    writes cut rows). Every message is caused by a switch-allocation grant at some cycle c >= the
    sender's next event, and

    * a flit granted at c leaves the crossbar at ``x = c + SAD + CB - 1 + BUSY - 1`` and is read
      downstream at ``x + LAT + 1``: lookahead ``SAD + CB + BUSY + LAT - 1`` cycles
      (defaults 1 + 1 + 1 + 1 - 1 = 3; the link alone, LAT + 1, is 2);
    * the credit of the buffer slot that grant frees is sent at ``u = c + SAD - 1``, read upstream
      at ``u + LAT + 1`` and applied ``credit_delay`` (CD) cycles later; nothing of the upstream
      router reads it before then, so the message carries the cycle it is applied:
      lookahead ``SAD + LAT + CD`` (defaults 1 + 1 + 2 = 4).

    No grant happens before the sender's next event (the first cycle at which anything - a
    buffered flit, an arrival, a generation - exists to grant), so no message is earlier than
    ``next + lookahead``: horizons stay conservative and results byte-identical to one LP
    (tests/test_parallel.py, tests/test_noc_determinism.py). ``router=None`` gives the link-only
    bound ``LAT + 1``."""
    r, p = np.nonzero(topo.out_router >= 0)
    nb = topo.out_router[r, p]
    a, b = lp_of_router[r], lp_of_router[nb]
    cut = a != b
    lat = topo.latency_cycles[r, p][cut]
    if router is None:
        la_cycles = lat + 1
    else:
        busy = topo.busy_cycles[r, p][cut]
        flit = router.sw_alloc_delay_cycles + router.crossbar_delay_cycles + busy + lat - 1
        credit = router.sw_alloc_delay_cycles + lat + router.credit_delay_cycles
        la_cycles = np.minimum(flit, credit)
    best: dict[tuple[int, int], int] = {}
    for s, d, la in zip(a[cut].tolist(), b[cut].tolist(), (la_cycles * clock_period_ps).tolist()):
        best[(s, d)] = min(best.get((s, d), la), la)
    return [(s, d, la) for (s, d), la in sorted(best.items())]

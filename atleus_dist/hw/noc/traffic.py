"""Synthetic traffic like BookSim2's: destination patterns and Bernoulli packet generation.

Random numbers come from a counter-based hash of (run seed, node id, draw index), so a node's
stream does not depend on which LP simulates it or in what order nodes are visited. Generation is
expressed as geometric gaps between packets, which lets idle cycles be skipped. Knows nothing of
routers, LPs or time in picoseconds.
"""

from __future__ import annotations

import numpy as np

from atleus_dist.kernel.errors import ConfigError

PATTERNS = ("uniform", "transpose", "bitcomp", "neighbor", "hotspot")

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
STREAM_GAP, STREAM_DEST, STREAM_HOT = 1, 2, 3


def hash_uniform(seed: int, stream: int, node: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Uniform floats in (0, 1] from splitmix64 of (seed, stream, node, index); vectorised."""
    with np.errstate(over="ignore"):
        x = (np.uint64(seed) * _GOLD) ^ (np.uint64(stream) << np.uint64(56))
        x = x ^ (np.asarray(node, dtype=np.uint64) * _M1) ^ (np.asarray(index, dtype=np.uint64) * _GOLD)
        x = x + _GOLD
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        x = x ^ (x >> np.uint64(31))
    return ((x >> np.uint64(11)).astype(np.float64) + 1.0) * (1.0 / 9007199254740992.0)


def geometric_gaps(seed: int, rate: float, node: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Cycles until the next packet (>= 1) for Bernoulli(rate) trials once per cycle."""
    if rate >= 1.0:
        return np.ones(len(node), dtype=np.int64)
    u = hash_uniform(seed, STREAM_GAP, node, index)
    gaps = np.floor(np.log(u) / np.log1p(-rate)).astype(np.int64) + 1
    return np.maximum(gaps, 1)


def check_pattern(traffic, topo) -> None:
    """Reject patterns that do not fit the topology, naming the field."""
    n = topo.n_routers
    bits = n.bit_length() - 1
    if traffic.pattern in ("transpose", "bitcomp") and (1 << bits) != n:
        raise ConfigError("traffic", f"{traffic.pattern} needs a power-of-two node count, got {n}")
    if traffic.pattern == "transpose" and bits % 2:
        raise ConfigError("traffic", f"transpose needs an even power of two nodes (BookSim2), got {n}")
    if traffic.pattern == "hotspot":
        bad = [h for h in traffic.hotspots if not 0 <= int(h) < n]
        if bad:
            raise ConfigError("hotspots", f"node ids must be in 0..{n - 1}, got {bad}")


def destinations(traffic, topo, seed: int, src: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Destination node of the ``index``-th packet of each node in ``src`` (vectorised)."""
    n = topo.n_routers
    src = np.asarray(src, dtype=np.int64)
    pattern = traffic.pattern
    if pattern == "uniform":  # BookSim2 RandomInt(nodes - 1): the source itself included
        u = hash_uniform(seed, STREAM_DEST, src, index)
        return np.minimum((u * n).astype(np.int64), n - 1)
    if pattern == "bitcomp":
        return (~src) & (n - 1)
    if pattern == "transpose":
        shift = (n.bit_length() - 1) // 2
        lo = (1 << shift) - 1
        return ((src >> shift) & lo) | ((src << shift) & (lo << shift))
    if pattern == "neighbor":  # +1 (mod size) in every dimension, BookSim2 NeighborTrafficPattern
        c = topo.coords[src]
        dims = np.asarray(topo.dims)
        nb = (c + 1) % dims
        return nb[:, 0] + dims[0] * nb[:, 1] + dims[0] * dims[1] * nb[:, 2]
    if pattern == "hotspot":
        hot = np.asarray(traffic.hotspots, dtype=np.int64)
        u = hash_uniform(seed, STREAM_HOT, src, index)
        v = hash_uniform(seed, STREAM_DEST, src, index)
        pick = hot[np.minimum((v * len(hot)).astype(np.int64), len(hot) - 1)]
        uni = np.minimum((v * n).astype(np.int64), n - 1)
        return np.where(u <= traffic.hotspot_fraction, pick, uni)
    raise ConfigError("traffic", f"unknown pattern {pattern!r}", allowed=", ".join(PATTERNS))

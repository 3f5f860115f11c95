"""Counter-based randomness: SplitMix64 on uint64 arrays.

A random value is a hash of (seed, component id, counter), so it does not depend on which LP or
process draws it - the basis of partition-independent models and of deterministic sampling.
"""

from __future__ import annotations

import numpy as np

_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_C3 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = (np.uint64(s) for s in (30, 27, 31, 11))
_TO_UNIT = 2.0 ** -53


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = np.asarray(x).astype(np.uint64) + _C1
    x = (x ^ (x >> _S30)) * _C2
    x = (x ^ (x >> _S27)) * _C3
    return x ^ (x >> _S31)


def unit(h: np.ndarray) -> np.ndarray:
    """Uniform floats in (0, 1) from uint64 hashes."""
    return ((h >> _S11).astype(np.float64) + 0.5) * _TO_UNIT


def keep_one_in(ids: np.ndarray, every: int, seed: int = 0) -> np.ndarray:
    """Boolean mask keeping about one id in ``every``, chosen by a hash of the id alone."""
    if every <= 1:
        return np.ones(len(ids), dtype=bool)
    return mix64(np.asarray(ids, dtype=np.int64).astype(np.uint64) ^ np.uint64(seed)) % np.uint64(every) == 0

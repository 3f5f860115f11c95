"""Simulated time: an int64 count of picoseconds everywhere.

``NEVER_PS`` stands for "no pending event"; arithmetic near it saturates instead of wrapping.
"""

from __future__ import annotations

import numbers

import numpy as np

from atleus_dist.kernel.errors import ConfigError

TIME_DTYPE = np.int64
NEVER_PS: int = int(np.iinfo(np.int64).max)


def check_time_ps(field: str, value: object, *, minimum: int = 0, positive: bool = False) -> int:
    """Validate a user-supplied time in picoseconds and return it as a Python int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        else:
            raise ConfigError(field, f"must be an integer number of picoseconds, got {value!r}")
    value = int(value)
    if positive and value <= 0:
        raise ConfigError(field, f"must be > 0 ps, got {value}")
    if value < minimum:
        raise ConfigError(field, f"must be >= {minimum} ps, got {value}")
    if value >= NEVER_PS:
        raise ConfigError(field, f"must be < {NEVER_PS} ps")
    return value


def add_sat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b`` on int64 arrays, saturating at NEVER_PS (``a`` may already be NEVER_PS)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    out = a + b
    out[(a >= NEVER_PS - b)] = NEVER_PS
    return out

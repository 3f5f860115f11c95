"""Energy as action counts times a per-action energy table (Accelergy style), apart from timing.

A tally is a plain dict ``{action: count}``; tables are dicts ``{action: pJ}`` built from the
component configs. Knows nothing of timing, the op graph, LPs, files, processes or Ray.
"""

from __future__ import annotations

from atleus_dist.kernel.errors import ConfigError


def energy_pj(counts: dict[str, float], table: dict[str, float]) -> float:
    """Sum of count x energy; every counted action must be in the table."""
    total = 0.0
    for action, n in sorted(counts.items()):
        if action not in table:
            raise ConfigError("action", f"no energy for {action!r}", allowed=", ".join(sorted(table)))
        total += n * table[action]
    return total


def merge(*tallies: dict[str, float]) -> dict[str, float]:
    """Add tallies (e.g. per-op counts into per-tier totals)."""
    out: dict[str, float] = {}
    for t in tallies:
        for k, v in t.items():
            out[k] = out.get(k, 0) + v
    return out

"""Backends: run a :class:`~atleus_dist.kernel.RunSpec` inline, on local processes or on Ray.

All three drive the same LP groups with the same rounds; ``ray`` is imported only when chosen.
"""

from __future__ import annotations

import importlib

from atleus_dist.backends.base import Progress, RunStats
from atleus_dist.kernel import ConfigError, RunSpec

BACKENDS = {"inline": "inline", "local": "local", "ray": "ray_backend"}


def run(spec: RunSpec, backend: str, progress: Progress | None = None, **options) -> RunStats:
    if backend not in BACKENDS:
        raise ConfigError("backend", f"unknown backend {backend!r}", allowed=", ".join(BACKENDS))
    module = importlib.import_module(f"atleus_dist.backends.{BACKENDS[backend]}")
    stats = module.run(spec, progress=progress, **options)
    plan = spec.meta.get("plan")
    if plan:  # the manifest's figures say which plan ran and why
        stats.extra.update(plan=plan["partition"], plan_reason=plan["reason"],
                           plan_predicted_speedup=plan.get("predicted_speedup", plan.get("ideal_speedup")))
    clk = spec.meta.get("clock_period_ps")
    last = stats.extra.pop("last_horizon_ps", None)
    if clk and last and stats.rounds and "mean_cycles_per_window" not in stats.extra:
        stats.extra["mean_cycles_per_window"] = last / clk / stats.rounds
    return stats


__all__ = ["BACKENDS", "Progress", "RunStats", "run"]

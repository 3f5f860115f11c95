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
    return module.run(spec, progress=progress, **options)


__all__ = ["BACKENDS", "Progress", "RunStats", "run"]

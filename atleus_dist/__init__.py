"""atleus-dist: a parallel discrete-event simulator of the Atleus 3D transformer accelerator.

The public surface is small on purpose; everything else lives in private-by-convention modules
below ``atleus_dist.kernel``, ``backends``, ``results``, ``hw``, ``workload`` and ``run``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

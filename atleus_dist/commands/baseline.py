"""``atleus-dist baseline gpu [SCENARIO] --out DIR``: the scenario's op graph on a GPU roofline
model (A100-class defaults, ``--set key=value`` to change them), written as a run directory that
``report`` and ``compare`` read.

``atleus-dist baseline 3d-tpu|2d-planar [SCENARIO] --out DIR``: the scenario simulated like
``atleus-dist run`` on the 3D-TPU (systolic tiers only) or the planar Atleus (its tiers side by
side in one mesh), with ``--transport stub`` (default: quick) or ``noc`` (the flit-level NoC, to
compare with a ``run`` on the NoC); ``--set`` takes ``run``'s paths. SCENARIO defaults to
``run``'s default scenario. Only argument handling and output live here
(:func:`atleus_dist.api.baseline` does the work).
"""

from __future__ import annotations

import argparse

from atleus_dist.commands.common import add_backend_flags, emit, run_lines
from atleus_dist.commands.run import add_config_flags

KINDS = ("gpu", "jetson-orin", "3d-tpu", "2d-planar")


def register(subs) -> None:
    p = subs.add_parser("baseline", help="evaluate a scenario on a baseline (gpu roofline, 3d-tpu, 2d-planar)")
    p.add_argument("kind", choices=KINDS, help="baseline model")
    p.add_argument("scenario", nargs="?", default=None,
                   help="a scenario in workloads/scenarios or a YAML file (default: run's default scenario)")
    p.add_argument("--seq", type=int, default=None, help="override the scenario's sequence length")
    p.add_argument("--batch", type=int, default=None, help="override the scenario's batch")
    add_config_flags(p)
    p.add_argument("--transport", choices=("stub", "noc"), default="stub",
                   help="3d-tpu/2d-planar: stub (fixed latency, default) or noc (flit-level, as run)")
    p.add_argument("--partition", default=None, help="3d-tpu/2d-planar: LPs (as run)")
    add_backend_flags(p, default_backend="inline")
    p.epilog = "gpu: --set takes GpuConfig fields, e.g. compute_efficiency=0.7, launch_overhead_ps=4000000"
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from atleus_dist import api

    gpu = args.kind in ("gpu", "jetson-orin")
    r = api.baseline(args.kind, args.scenario, seq=args.seq, batch=args.batch, sets=args.set, arch=args.arch,
                     out=args.out, transport=None if gpu else args.transport,
                     backend=None if gpu else args.backend, workers=None if gpu else args.workers,
                     partition=args.partition, progress=not args.quiet)
    fig = r.figures
    if not gpu:
        emit(args, fig, run_lines(fig, r.stats, f"{fig['scenario']} on {args.kind}"))
        return 0
    emit(args, fig, [
        f"{fig['scenario']} on {fig['gpu']} roofline: step {fig['step_latency_ps'] / 1e9:.4g} ms, "
        f"{fig.get('tokens_per_s', 0):,.0f} tokens/s, energy {fig['energy_j']:.4g} J "
        f"({fig.get('energy_per_token_j', 0):.3g} J/token), EDP {fig['edp_j_s']:.4g} J*s",
        f"{fig['ops']:,} ops, {fig['macs']:,} MACs, {fig['op_bytes']:,} bytes; results in {fig['out']}",
    ])
    return 0

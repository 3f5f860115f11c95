"""``atleus-dist resume RUN``: continue a killed or interrupted run from its newest checkpoint,
on the same or another backend, worker count and partition (:mod:`atleus_dist.run.checkpoint_resume`).
Only argument handling and output live here."""

from __future__ import annotations

import argparse

from atleus_dist.commands.common import add_output_flags, emit, run_lines
from atleus_dist.config.run_config import BACKEND_NAMES


def register(subs) -> None:
    p = subs.add_parser("resume", help="continue a killed or interrupted run from its newest checkpoint")
    p.add_argument("run", help="run directory of a run started with --checkpoint-every-ps")
    p.add_argument("--backend", choices=BACKEND_NAMES, default=None, help="backend (default: the run's)")
    p.add_argument("--workers", type=int, default=None, help="LP groups (default: the run's)")
    p.add_argument("--partition", default=None,
                   help="LPs to go on with (default: the checkpoint's): any partition run/noc take, auto included; "
                        "another one re-slices the checkpoint's state onto it (NoC and chip runs; the stub "
                        "runs by-tier only)")
    p.add_argument("--checkpoint", default=None, metavar="NAME",
                   help="resume from this checkpoint (a ckpt-... name under RUN/checkpoints; default: the newest)")
    add_output_flags(p, out=False)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from atleus_dist.api import resume

    r = resume(args.run, backend=args.backend, workers=args.workers, partition=args.partition,
               checkpoint=args.checkpoint, progress=not args.quiet)
    fig = r.figures
    if "scenario" in fig:  # a chip run
        lines = run_lines(fig, r.stats, fig["scenario"])
    else:  # a noc run
        lines = [f"{fig['topology']} {fig['pattern']} rate {fig['rate']}: accepted "
                 f"{fig.get('accepted_flit_rate') or 0:.4f} flits/node/cycle, packet latency "
                 f"{fig.get('packet_latency_mean') or float('nan'):.2f} cycles",
                 f"{fig['lps']} LPs on {fig['workers']} workers ({fig['backend']}); results in {fig['out']}"]
    lines.insert(0, f"resumed from {fig['resumed_from_ps'] / 1e6:,.3f} us")
    emit(args, r.figures, lines)
    return 0

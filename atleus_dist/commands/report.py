"""``atleus-dist report DIR``: step latency, tokens/s, energy, EDP, breakdowns by tier/kind/phase,
NoC latency and link/TSV utilisation of a finished run, and PNG plots in ``DIR/plots``.

Refuses (exit 2, one line) a directory without a manifest or with a malformed one, a run that is
not ``complete`` unless ``--allow-incomplete``, and a run whose files do not verify (the readers
check every file against the manifest). Only argument handling and output live here.
"""

from __future__ import annotations

import argparse

from atleus_dist.commands.common import emit


def register(subs) -> None:
    p = subs.add_parser("report", help="figures, breakdowns and plots of a run directory")
    p.add_argument("run_dir", metavar="DIR", help="a run directory (or a baseline result)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True,
                   help="write PNG plots into DIR/plots (default: yes)")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="read a run whose manifest is not 'complete' (its tables may be partial)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from atleus_dist.results import read_manifest
    from atleus_dist.results.report import build_report, format_report
    from atleus_dist.results.sweep_report import build_sweep_report, format_sweep_report, is_sweep, resolve_point
    from atleus_dist.run.run_graph import op_deps_of_run

    if is_sweep(args.run_dir):  # a sweep directory: its table and plots
        rep = build_sweep_report(args.run_dir, plots=args.plots)
        emit(args, rep, format_sweep_report(rep))
        return 0
    run_dir = resolve_point(args.run_dir, "run_dir")
    read_manifest(run_dir, "run_dir")  # a malformed manifest: one line naming it
    rep = build_report(run_dir, args.allow_incomplete, plots=args.plots, deps_of=op_deps_of_run)
    emit(args, rep, format_report(rep))
    return 0

"""``atleus-dist compare DIR_A DIR_B``: A's speed-up, energy-efficiency and EDP ratios over B
(overall, per phase, per op kind, per tier), like the Atleus paper's tables. Either directory may be
a baseline result (``atleus-dist baseline gpu``). Files that do not verify, or a malformed manifest,
are refused (exit 2, naming the file). Only argument handling and output live here.
"""

from __future__ import annotations

import argparse

from atleus_dist.commands.common import emit


def register(subs) -> None:
    p = subs.add_parser("compare", help="speed-up and energy-efficiency ratios of run A over run B")
    p.add_argument("dir_a", metavar="DIR_A", help="run directory A (e.g. Atleus)")
    p.add_argument("dir_b", metavar="DIR_B", help="run directory B (e.g. a GPU baseline)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="read runs whose manifest is not 'complete' (their tables may be partial)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from atleus_dist.results.report import compare_runs, format_compare
    from atleus_dist.results.sweep_report import resolve_point
    from atleus_dist.results.verify import check_run
    from atleus_dist.run.run_graph import op_deps_of_run

    # a point of a sweep may be named SWEEP_DIR@key=value,... (or by its directory, SWEEP_DIR/points/<id>)
    dirs = {field: resolve_point(getattr(args, field), field) for field in ("dir_a", "dir_b")}
    for field, path in dirs.items():  # a bad manifest or file: one line naming it and the argument
        check_run(path, field)
    c = compare_runs(dirs["dir_a"], dirs["dir_b"], args.allow_incomplete, deps_of=op_deps_of_run)
    emit(args, c, format_compare(c))
    return 0

"""``atleus-dist digest RUN_DIR``: one SHA-256 over all result tables, to compare runs.

Refuses (exit 2) a run that is not ``complete`` unless ``--partial``, a run with no result tables,
and a run whose files do not verify. Only argument handling and output live here.
"""

from __future__ import annotations

import argparse

from atleus_dist.commands.common import emit
from atleus_dist.results.digest import run_digest


def register(subs) -> None:
    p = subs.add_parser("digest", help="print one SHA-256 over a run's result tables")
    p.add_argument("run_dir")
    p.add_argument("--tables", action="store_true", help="also print one digest per table")
    p.add_argument("--partial", action="store_true",
                   help="digest what is readable of a run that is not complete (and say so)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    d = run_digest(args.run_dir, partial=args.partial)
    first = d["digest"] + (f"  (partial: run status {d['status']!r}, readable rows only)" if d["partial"] else "")
    lines = [first] + ([f"  {name} {h}" for name, h in d["tables"].items()] if args.tables else [])
    emit(args, d, lines)
    return 0

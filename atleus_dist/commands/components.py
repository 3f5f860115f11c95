"""``atleus-dist components [--json|--markdown]``: every configurable field of every command -
path, type, unit, default, allowed range and the default's source - from the declarations
(:mod:`atleus_dist.config.docs`); ``--markdown`` prints docs/configuration.md."""

from __future__ import annotations

import argparse
import sys


def register(subs) -> None:
    p = subs.add_parser("components", help="every configurable field: path, type, unit, default, range, source")
    p.add_argument("--json", action="store_true", help="one JSON list of fields on stdout")
    p.add_argument("--markdown", action="store_true", help="the docs/configuration.md page")
    p.add_argument("--command", dest="only", default=None, choices=("run", "noc", "gpu", "phold"),
                   help="only the fields of one command")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from atleus_dist.config import docs

    if args.markdown:
        sys.stdout.write(docs.markdown())
        return 0
    rows = [r for r in docs.rows() if args.only in (None, r["command"])]
    if args.json:
        import json

        sys.stdout.write(json.dumps(rows, default=str) + "\n")
        return 0
    for r in rows:
        unit = f" {r['unit']}" if r["unit"] else ""
        sys.stdout.write(f"{r['command']:5} {r['path']:44} {r['default']!s:>24}{unit}  [{r['allowed']}]  {r['source']}\n")
    return 0

"""``atleus-dist digest RUN_DIR``: one SHA-256 over all result tables, to compare runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from atleus_dist.commands.common import emit
from atleus_dist.kernel import ConfigError
from atleus_dist.results import digest, read_manifest


def register(subs) -> None:
    p = subs.add_parser("digest", help="print one SHA-256 over a run's result tables")
    p.add_argument("run_dir")
    p.add_argument("--tables", action="store_true", help="also print one digest per table")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    path = Path(args.run_dir)
    if not path.is_dir():
        raise ConfigError("run_dir", f"{args.run_dir!r} is not a directory")
    try:
        status = read_manifest(path).get("status")
    except FileNotFoundError:
        raise ConfigError("run_dir", f"{args.run_dir!r} has no manifest.json") from None
    total, tables = digest(path)
    lines = [total] + ([f"  {name} {h}" for name, h in tables.items()] if args.tables else [])
    emit(args, {"digest": total, "tables": tables, "status": status}, lines)
    return 0

"""Flags shared by every command that runs a simulation, and JSON/human output."""

from __future__ import annotations

import argparse
import json
import sys

from atleus_dist.backends import BACKENDS


def add_backend_flags(p: argparse.ArgumentParser, default_backend: str = "local") -> None:
    p.add_argument("--backend", choices=sorted(BACKENDS), default=default_backend,
                   help=f"where LP groups run (default {default_backend})")
    p.add_argument("--workers", type=int, default=2,
                   help="LP groups = worker processes or actors (default 2; at most one per LP)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address, e.g. auto (ray backend only; default starts Ray locally)")
    p.add_argument("--placement", default="spread", help="Ray actor placement: spread or pack")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def backend_options(args: argparse.Namespace) -> dict:
    if args.backend == "ray":
        return {"address": args.address, "placement": args.placement}
    return {}


def emit(args: argparse.Namespace, figures: dict, lines: list[str]) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(figures, sort_keys=True, default=str) + "\n")
    else:
        sys.stdout.write("\n".join(lines) + "\n")

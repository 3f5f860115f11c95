"""Flags shared by every command that runs a simulation, and JSON/human output. The flags only
collect what the user typed: :mod:`atleus_dist.api` checks it."""

from __future__ import annotations

import argparse
import json
import sys

from atleus_dist.config.run_config import BACKEND_NAMES, PLACEMENTS


def add_backend_flags(p: argparse.ArgumentParser, default_backend: str = "local") -> None:
    p.add_argument("--backend", choices=BACKEND_NAMES, default=default_backend,
                   help=f"where LP groups run (default {default_backend})")
    p.add_argument("--workers", type=int, default=2,
                   help="LP groups = worker processes or actors (default 2; at most one per LP)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address, e.g. auto (ray backend only; default starts Ray locally)")
    p.add_argument("--placement", choices=PLACEMENTS, default="spread", help="Ray actor placement")
    add_output_flags(p)


def add_output_flags(p: argparse.ArgumentParser, out: bool = True) -> None:
    if out:
        p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def emit(args: argparse.Namespace, figures: dict, lines: list[str]) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(figures, sort_keys=True, default=str) + "\n")
    else:
        sys.stdout.write("\n".join(lines) + "\n")


def run_lines(fig: dict, stats, label: str) -> list[str]:
    """The human summary of a simulated run (``run`` and the simulated baselines)."""
    how = f" (stub {fig['stub_latency_ps']:,} ps)" if "stub_latency_ps" in fig else ""
    return [
        f"{label}: step latency {fig.get('step_latency_ps', 0) / 1e9:,.4g} ms, "
        f"energy {fig.get('energy_pj', 0) / 1e12:,.4g} J{how}",
        f"{fig['model']} {fig['mode']} seq {fig['seq']} batch {fig['batch']}, transport {fig['transport']}; "
        f"{stats.backend} x{stats.groups}: {stats.events:,} events in {stats.rounds:,} rounds, "
        f"{stats.run_s:.2f} s (sync share {stats.sync_share:.1%})",
        f"results in {fig['out']}  (atleus-dist report {fig['out']})",
    ]

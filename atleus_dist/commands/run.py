"""``atleus-dist run [SCENARIO]``: one fine-tuning step (or inference pass) of a real model on a
configured Atleus, simulated in parallel, results as Arrow tables plus a summary. Only argument
handling and output live here (:func:`atleus_dist.api.simulate` does the work)."""

from __future__ import annotations

import argparse
import sys

from atleus_dist.commands.common import add_backend_flags, emit, run_lines
from atleus_dist.config.run_config import TRANSPORTS


def add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default=None, help="architecture YAML (chip fields, noc section; any config path)")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override any config path (atleus-dist components): scenario.seq=256, reram_tiers=4, "
                        "reram.xbar_rows=64, noc.mesh=4x4, noc.router.num_vcs=2, stub.latency_ps=20000")


def register(subs) -> None:
    p = subs.add_parser("run", help="simulate one step of a scenario on Atleus")
    p.add_argument("scenario", nargs="?", default=None,
                   help="scenario name (workloads/scenarios) or YAML file; default: GPT-2 Medium LoRA r32, seq 128")
    add_config_flags(p)
    p.add_argument("--transport", choices=TRANSPORTS, default="noc",
                   help="how results move between cores: noc (flit-level 3D NoC, default) or stub "
                        "(a fixed latency, for quick estimates)")
    p.add_argument("--partition", default=None,
                   help="LPs (noc): auto (default: the planner's fastest plan, never predicted slower than one LP), "
                        "single, by-tier, tiers:g0,g1,..., blocks:AxB, map:l0,l1,...; the stub runs by-tier; "
                        "a system of chips (system.chips > 1): auto, single, chips, chips:<chip partition>")
    p.add_argument("--checkpoint-every-ps", type=int, default=None, metavar="N",
                   help="write a checkpoint at every N ps of simulated time (the last two are kept; "
                        "atleus-dist resume RUN continues from the newest)")
    add_backend_flags(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from atleus_dist import api

    r = api.simulate(args.scenario, sets=args.set, arch=args.arch, out=args.out, transport=args.transport,
                     backend=args.backend, workers=args.workers, partition=args.partition,
                     address=args.address, placement=args.placement, progress=not args.quiet,
                     checkpoint_every_ps=args.checkpoint_every_ps)
    warning = ((r.manifest.get("config") or {}).get("plan") or {}).get("warning")
    if warning and not args.quiet:
        print(f"warning: {warning}", file=sys.stderr)
    emit(args, r.figures, run_lines(r.figures, r.stats, r.figures["scenario"]))
    return 0

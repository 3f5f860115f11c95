"""``atleus-dist run [SCENARIO]``: one fine-tuning step (or inference pass) of a real model on a
configured Atleus, simulated in parallel, results as Arrow tables plus a summary."""

from __future__ import annotations

import argparse

from atleus_dist.commands.common import add_backend_flags, backend_options, emit
from atleus_dist.kernel import ConfigError
from atleus_dist.results import SinkFactory
from atleus_dist.results.summary import summary_figures, write_summary
from atleus_dist.run import execute, prepare_out_dir
from atleus_dist.run.scenario_run import TRANSPORTS, build


def register(subs) -> None:
    p = subs.add_parser("run", help="simulate one step of a scenario on Atleus")
    p.add_argument("scenario", nargs="?", default=None,
                   help="scenario name (workloads/scenarios) or YAML file; default: GPT-2 Medium LoRA r32, seq 128")
    p.add_argument("--arch", default=None, help="architecture YAML (fields of AtleusArchConfig)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override: reram.xbar_rows=64, reram_tiers=4, scenario.seq=256, noc.*, stub.latency_ps")
    p.add_argument("--transport", choices=TRANSPORTS, default="noc",
                   help="how results move between cores: noc (flit-level 3D NoC, default) or stub "
                        "(a fixed latency, for quick estimates)")
    p.add_argument("--partition", default=None,
                   help="LPs: auto, single, by-tier, tiers:g0,g1,..., blocks:AxB, map:l0,l1,... (noc; default "
                        "auto: the planner's fastest) or by-tier (stub)")
    add_backend_flags(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.workers <= 0:
        raise ConfigError("workers", f"must be a positive integer, got {args.workers}")
    # validate everything before the output directory exists, so bad input leaves nothing behind
    built = build(args.scenario, args.arch, args.set, args.transport, args.workers, args.partition,
                  SinkFactory(str(args.out)), backend=args.backend)
    out = prepare_out_dir(args.out)

    def finalize(run_dir, manifest, _figures):
        fig = summary_figures(run_dir, dict(manifest, config=built.config))
        write_summary(run_dir, fig)
        fig.pop("absent_tables", None)
        return fig

    stats, manifest = execute("run", built.config, built.spec, args.backend, out,
                              progress=not args.quiet, finalize=finalize, **backend_options(args))
    fig = dict(manifest["figures"], out=str(out))
    emit(args, fig, [
        f"{built.scenario.name}: step latency {fig.get('step_latency_ps', 0) / 1e9:,.3f} ms, "
        f"energy {fig.get('energy_pj', 0) / 1e12:,.4f} J",
        f"{stats.backend} x{stats.groups}: {stats.events:,} events in {stats.rounds:,} rounds, "
        f"{stats.run_s:.2f} s (sync share {stats.sync_share:.1%})",
        f"results in {out}  (atleus-dist report {out})",
    ])
    return 0

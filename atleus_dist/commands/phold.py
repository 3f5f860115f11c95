"""``atleus-dist phold``: the PHOLD benchmark on any backend."""

from __future__ import annotations

import argparse

from atleus_dist.commands.common import add_backend_flags, emit
from atleus_dist.kernel import LPFactory, RunSpec, contiguous_groups
from atleus_dist.models.phold import PholdConfig, PholdLP
from atleus_dist.results import SinkFactory
from atleus_dist.run import execute, prepare_out_dir


def register(subs) -> None:
    p = subs.add_parser("phold", help="run the PHOLD parallel-simulation benchmark")
    p.add_argument("--lps", type=int, default=8, help="logical processes")
    p.add_argument("--objects", type=int, default=64, help="objects per LP")
    p.add_argument("--events-per-object", type=int, default=1, help="initial events per object")
    p.add_argument("--mean-ps", type=int, default=1000, help="mean of the exponential increment")
    p.add_argument("--lookahead-ps", type=int, default=1000, help="minimum increment = lookahead")
    p.add_argument("--remote", type=float, default=0.5, help="fraction of events sent to other LPs")
    p.add_argument("--end-ps", type=int, default=1_000_000, help="simulated end time")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--trace", action="store_true", help="also write every committed event")
    add_backend_flags(p)
    p.set_defaults(func=main)


def build(args: argparse.Namespace) -> tuple[PholdConfig, RunSpec, str]:
    """The config and spec of ``args`` (every value checked) and the checked output path."""
    from atleus_dist.api import _out_dir
    from atleus_dist.config.load import load_section
    from atleus_dist.config.run_config import ExecutionConfig

    names = ("lps", "objects", "events_per_object", "mean_ps", "lookahead_ps", "remote", "end_ps", "seed", "trace")
    cfg = load_section(PholdConfig, None, {n: (n, getattr(args, n)) for n in names})
    ex = load_section(ExecutionConfig, None, {n: (n, getattr(args, n))
                                              for n in ("backend", "workers", "address", "placement")})
    out = _out_dir(args.out)
    spec = RunSpec(n_lps=cfg.lps, channels=cfg.channels(), end_ps=cfg.end_ps,
                   lp_factory=LPFactory(PholdLP, (cfg,)), groups=contiguous_groups(cfg.lps, ex.workers),
                   sink_factory=SinkFactory(out))
    return cfg, spec, out


def main(args: argparse.Namespace) -> int:
    cfg, spec, out = build(args)
    out = prepare_out_dir(out)
    options = {"address": args.address, "placement": args.placement} if args.backend == "ray" else {}
    stats, _manifest = execute("phold", cfg.to_dict(), spec, args.backend, out,
                               progress=not args.quiet, **options)
    fig = stats.figures()
    fig["out"] = str(out)
    emit(args, fig, [
        f"backend {stats.backend} groups {stats.groups}: {stats.events:,} events, "
        f"{stats.messages:,} messages in {stats.rounds:,} rounds",
        f"simulated to {stats.end_time_ps:,} ps in {stats.run_s:.3f} s "
        f"({fig['events_per_s']:,.0f} events/s, {fig['rounds_per_s']:,.0f} rounds/s, "
        f"sync share {stats.sync_share:.1%})",
        f"results in {out}",
    ])
    return 0

"""``atleus-dist baseline gpu SCENARIO --out DIR``: the scenario's op graph on a GPU roofline model
(A100-class defaults, ``--set key=value`` to change them), written as a run directory that
``report`` and ``compare`` read.

``atleus-dist baseline 3d-tpu|2d-planar SCENARIO --out DIR``: the scenario simulated like
``atleus-dist run`` on the 3D-TPU (systolic tiers only) or the planar Atleus (its tiers side by
side in one mesh), with ``--transport stub`` (default: quick) or ``noc`` (the flit-level NoC, to
compare with a ``run`` on the NoC); ``--set`` takes ``run``'s keys (``scenario.seq=64``,
``stub.latency_ps=...``, ``noc.*``, arch fields).
Only argument handling and output live here.
"""

from __future__ import annotations

import argparse
import dataclasses

from atleus_dist.backends import BACKENDS
from atleus_dist.commands.common import emit
from atleus_dist.kernel.errors import ConfigError

KINDS = ("gpu", "3d-tpu", "2d-planar")


def register(subs) -> None:
    p = subs.add_parser("baseline", help="evaluate a scenario on a baseline (gpu roofline) as a run directory")
    p.add_argument("kind", choices=KINDS, help="baseline model")
    p.add_argument("scenario", help="a scenario in workloads/scenarios (e.g. gpt2-medium-lora32-s1024)")
    p.add_argument("--seq", type=int, default=None, help="override the scenario's sequence length")
    p.add_argument("--batch", type=int, default=None, help="override the scenario's batch")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="GPU parameter, e.g. compute_efficiency=0.7, launch_overhead_ps=4000000, "
                        "hbm_bytes_per_s=1.555e12")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--arch", default=None, help="3d-tpu/2d-planar: architecture YAML (as for run)")
    p.add_argument("--backend", choices=sorted(BACKENDS), default="inline", help="3d-tpu/2d-planar: backend")
    p.add_argument("--workers", type=int, default=2, help="3d-tpu/2d-planar: LP groups (at most one per LP)")
    p.add_argument("--transport", choices=("stub", "noc"), default="stub",
                   help="3d-tpu/2d-planar: stub (fixed latency, default) or noc (flit-level, as run)")
    p.add_argument("--partition", default=None, help="3d-tpu/2d-planar: LPs (as run)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=main)


def _sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError("set", f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def simulated(args: argparse.Namespace) -> int:
    """3d-tpu / 2d-planar: ``run``'s build and execute with ``kind``, marked as a baseline."""
    from atleus_dist.results import SinkFactory
    from atleus_dist.results.summary import summary_figures, write_summary
    from atleus_dist.run import execute, prepare_out_dir
    from atleus_dist.run.scenario_run import build

    if args.workers <= 0:
        raise ConfigError("workers", f"must be a positive integer, got {args.workers}")
    sets = list(args.set) + [f"scenario.{k}={getattr(args, k)}" for k in ("seq", "batch")
                             if getattr(args, k) is not None]
    built = build(args.scenario, args.arch, sets, args.transport, args.workers, args.partition,
                  SinkFactory(str(args.out)), kind=args.kind, backend=args.backend)
    out = prepare_out_dir(args.out)  # after validation: bad input leaves no directory

    def finalize(run_dir, manifest, _figures):
        manifest["baseline"] = args.kind  # the manifest execute() completes: report/compare label it
        fig = summary_figures(run_dir, dict(manifest, config=built.config))
        write_summary(run_dir, fig)
        fig.pop("absent_tables", None)
        return fig

    stats, manifest = execute(f"baseline {args.kind}", built.config, built.spec, args.backend, out,
                              progress=not args.quiet, finalize=finalize)
    fig = dict(manifest["figures"], out=str(out), baseline=args.kind, transport=args.transport)
    if "stub" in built.config:
        fig["stub_latency_ps"] = built.config["stub"]["latency_ps"]
    how = f"stub {fig['stub_latency_ps']:,} ps" if "stub_latency_ps" in fig else "flit-level NoC"
    emit(args, fig, [
        f"{built.scenario.name} on {args.kind}: step latency {fig.get('step_latency_ps', 0) / 1e9:,.4g} ms, "
        f"energy {fig.get('energy_pj', 0) / 1e12:,.4g} J ({how})",
        f"{stats.backend} x{stats.groups}: {stats.events:,} events in {stats.rounds:,} rounds, "
        f"{stats.run_s:.2f} s; results in {out}",
    ])
    return 0


def main(args: argparse.Namespace) -> int:
    if args.kind != "gpu":
        return simulated(args)
    from atleus_dist.run.baselines import gpu_config, write_gpu_baseline
    from atleus_dist.workload import load_scenario

    cfg = gpu_config(_sets(args.set))
    sc = load_scenario(args.scenario)
    changes = {k: getattr(args, k) for k in ("seq", "batch") if getattr(args, k) is not None}
    if changes:
        sc = dataclasses.replace(sc, **changes)
    manifest = write_gpu_baseline(sc, args.out, cfg)
    fig = dict(manifest["figures"], out=str(args.out), baseline="gpu", gpu=cfg.name)
    emit(args, fig, [
        f"{sc.name or sc.model.name} on {cfg.name} roofline: step {fig['step_latency_ps'] / 1e9:.4g} ms, "
        f"{fig.get('tokens_per_s', 0):,.0f} tokens/s, energy {fig['energy_j']:.4g} J "
        f"({fig.get('energy_per_token_j', 0):.3g} J/token), EDP {fig['edp_j_s']:.4g} J*s",
        f"{fig['ops']:,} ops, {fig['macs']:,} MACs, {fig['op_bytes']:,} bytes; results in {args.out}",
    ])
    return 0

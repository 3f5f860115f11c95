"""``atleus-dist baseline gpu SCENARIO --out DIR``: the scenario's op graph on a GPU roofline model
(A100-class defaults, ``--set key=value`` to change them), written as a run directory that
``report`` and ``compare`` read. Only argument handling and output live here.
"""

from __future__ import annotations

import argparse
import dataclasses

from atleus_dist.commands.common import emit
from atleus_dist.kernel.errors import ConfigError

KINDS = ("gpu",)


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
    p.set_defaults(func=main)


def _sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError("set", f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def main(args: argparse.Namespace) -> int:
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

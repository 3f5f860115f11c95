"""``atleus-dist noc``: a synthetic-traffic run of the flit-level 3D NoC on any backend/partition.

Every parameter has a flag and a config key (``--config noc.yaml`` with the nested keys of
:class:`NocConfig`); flags override the file. Prints BookSim2-style figures, writes Arrow tables
(``packets``, ``nodes``, ``links``) under ``--out``; ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import math
import sys

from atleus_dist.commands.common import add_backend_flags, backend_options, emit
from atleus_dist.kernel import ConfigError

# flag -> (section, key, type)
FLAGS = {
    "vcs": ("router", "num_vcs", int), "vc_buf": ("router", "vc_buf_size_flits", int),
    "routing_delay": ("router", "routing_delay_cycles", int),
    "vc_alloc_delay": ("router", "vc_alloc_delay_cycles", int),
    "sw_alloc_delay": ("router", "sw_alloc_delay_cycles", int),
    "crossbar_delay": ("router", "crossbar_delay_cycles", int),
    "credit_delay": ("router", "credit_delay_cycles", int),
    "wait_for_tail_credit": ("router", "wait_for_tail_credit", int),
    "vc_allocator": ("router", "vc_allocator", str), "sw_allocator": ("router", "sw_allocator", str),
    "routing": ("router", "routing", str), "clock_ps": ("router", "clock_period_ps", int),
    "planar_latency": ("planar", "latency_cycles", int), "planar_width": ("planar", "width_bits", int),
    "tsv_latency": ("tsv", "latency_cycles", int), "tsv_width": ("tsv", "width_bits", int),
    "flit_bits": ("interface", "flit_bits", int), "packet_flits": ("interface", "packet_flits", int),
    "traffic": ("traffic", "pattern", str), "rate": ("traffic", "rate", float),
    "hotspot_fraction": ("traffic", "hotspot_fraction", float),
    "warmup": ("phases", "warmup_cycles", int), "measure": ("phases", "measure_cycles", int),
    "drain": ("phases", "drain_cycles", int), "latency_thres": ("phases", "latency_thres_cycles", int),
}


def register(subs) -> None:
    p = subs.add_parser("noc", help="flit-level 3D NoC with synthetic traffic (BookSim2-style figures)")
    p.add_argument("--config", default=None, help="YAML file with NocConfig keys")
    p.add_argument("--mesh", default=None, help="XxYxZ routers (X x Y per tier, Z tiers), e.g. 4x4x4")
    p.add_argument("--topology", default=None, help="registry key, e.g. mesh:4x4x4")
    p.add_argument("--partition", default=None,
                   help="auto (the planner's fastest, default), single, by-tier, tiers:..., blocks:AxB or map:...")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--hotspots", default=None, help="comma-separated node ids for traffic hotspot")
    for flag, (_sec, _key, typ) in FLAGS.items():
        p.add_argument("--" + flag.replace("_", "-"), dest=flag, type=typ, default=None)
    add_backend_flags(p, default_backend="inline")
    p.set_defaults(func=main)


def build_config(args: argparse.Namespace):
    from atleus_dist.hw.noc.config import NocConfig

    data: dict = {}
    if args.config:
        import yaml

        try:
            with open(args.config) as fh:
                data = yaml.safe_load(fh) or {}
        except OSError as exc:
            raise ConfigError("config", f"cannot read {args.config}: {exc.strerror}") from None
        if not isinstance(data, dict):
            raise ConfigError("config", "must be a mapping of NocConfig keys")
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    data.setdefault("partition", "auto")
    if args.mesh is not None:
        data["topology"] = f"mesh:{args.mesh}"
    if args.topology is not None:
        data["topology"] = args.topology
    for name in ("partition", "seed"):
        if getattr(args, name) is not None:
            data[name] = getattr(args, name)
    if args.hotspots is not None:
        try:
            data.setdefault("traffic", {})["hotspots"] = [int(x) for x in args.hotspots.split(",")]
        except ValueError:
            raise ConfigError("hotspots", "must be comma-separated node ids") from None
    for flag, (sec, key, _typ) in FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            if key == "wait_for_tail_credit":
                value = bool(value)
            data.setdefault(sec, {})[key] = value
    return NocConfig.from_dict(data)


def simulate(cfg, backend: str, workers: int, out, progress: bool = False, transfers: tuple = (),
             **options) -> tuple[dict, object]:
    """Run ``cfg`` and return (figures, run stats). Used by the CLI, tests and bench/noc.py.
    ``transfers``: scripted (cycle, src, dest, nbytes, tag) tuples; their completions are written
    to a ``transfers`` table (tag, done_cycle)."""
    from atleus_dist.hw.noc.lp import build_spec
    from atleus_dist.hw.noc.stats import figures
    from atleus_dist.hw.noc.topology import build_topology
    from atleus_dist.results import SinkFactory, read_table
    from atleus_dist.run import execute, prepare_out_dir

    if not isinstance(workers, int) or workers <= 0:
        raise ConfigError("workers", f"must be a positive integer, got {workers!r}")
    out = prepare_out_dir(out)
    spec = build_spec(cfg, workers, SinkFactory(str(out)), transfers, backend=backend)
    stats, _ = execute("noc", cfg.to_dict(), spec, backend, out, progress=progress, **options)
    tables = {name: {c: read_table(out, name).column(c).to_numpy() for c in read_table(out, name).column_names}
              for name in ("packets", "nodes", "links")}
    fig = figures(cfg, build_topology(cfg).n_routers, tables["packets"], tables["nodes"], tables["links"])
    fig.update({"lps": spec.n_lps, "workers": len(spec.groups), "backend": backend,
                "partition": spec.meta["partition"], "wall_s": stats.run_s, "rounds": stats.rounds})
    return fig, stats


def main(args: argparse.Namespace) -> int:
    cfg = build_config(args)
    fig, _stats = simulate(cfg, args.backend, args.workers, args.out, progress=not args.quiet,
                           **backend_options(args))
    fig["out"] = str(args.out)
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in fig.items()}
    status = "SATURATED (unstable, like BookSim2)" if fig["saturated"] else "stable"
    if fig["saturated"]:
        sys.stderr.write("noc: offered load beyond saturation; latencies are not steady-state\n")
    emit(args, clean, [
        f"{cfg.topology} {cfg.traffic.pattern} rate {cfg.traffic.rate} packets/node/cycle: {status}",
        f"packet latency {fig['packet_latency_mean']:.2f} cycles (min {fig['packet_latency_min']:.0f}, "
        f"max {fig['packet_latency_max']:.0f}); network {fig['network_latency_mean']:.2f}; "
        f"flit {fig['flit_latency_mean']:.2f}",
        f"accepted {fig['accepted_flit_rate']:.4f} flits/node/cycle (offered {fig['offered_flit_rate']:.4f}); "
        f"hops {fig['hops_mean']:.3f}",
        f"links: planar util {fig.get('planar_link_utilisation_mean', 0):.4f}, "
        f"tsv util {fig.get('tsv_link_utilisation_mean', 0):.4f}; energy planar "
        f"{fig.get('planar_energy_pj', 0):.3g} pJ, tsv {fig.get('tsv_energy_pj', 0):.3g} pJ",
        f"{fig['lps']} LPs on {fig['workers']} workers ({args.backend}), {fig['wall_s']:.2f} s; results in {args.out}",
    ])
    return 0

"""``atleus-dist noc``: a synthetic-traffic run of the flit-level 3D NoC on any backend/partition.

Every parameter has a flag and a config path (``--config noc.yaml`` with the nested fields of
:class:`~atleus_dist.hw.noc.config.NocConfig`, ``--set router.num_vcs=2``); flags override the
file. Prints BookSim2-style figures, writes Arrow tables (``packets``, ``nodes``, ``links``) under
``--out``; ``--json`` prints one JSON object. Only argument handling and output live here
(:func:`atleus_dist.api.noc` does the work).
"""

from __future__ import annotations

import argparse
import sys

from atleus_dist.commands.common import add_backend_flags, emit

# flag -> config path
FLAGS = {
    "vcs": "router.num_vcs", "vc_buf": "router.vc_buf_size_flits",
    "routing_delay": "router.routing_delay_cycles", "vc_alloc_delay": "router.vc_alloc_delay_cycles",
    "sw_alloc_delay": "router.sw_alloc_delay_cycles", "crossbar_delay": "router.crossbar_delay_cycles",
    "credit_delay": "router.credit_delay_cycles", "wait_for_tail_credit": "router.wait_for_tail_credit",
    "vc_allocator": "router.vc_allocator", "sw_allocator": "router.sw_allocator", "routing": "router.routing",
    "clock_ps": "router.clock_period_ps",
    "planar_latency": "planar.latency_cycles", "planar_width": "planar.width_bits",
    "tsv_latency": "tsv.latency_cycles", "tsv_width": "tsv.width_bits",
    "flit_bits": "interface.flit_bits", "packet_flits": "interface.packet_flits",
    "traffic": "traffic.pattern", "rate": "traffic.rate", "hotspot_fraction": "traffic.hotspot_fraction",
    "hotspots": "traffic.hotspots",
    "warmup": "phases.warmup_cycles", "measure": "phases.measure_cycles", "drain": "phases.drain_cycles",
    "latency_thres": "phases.latency_thres_cycles",
    "topology": "topology", "partition": "partition", "seed": "seed",
}


def register(subs) -> None:
    p = subs.add_parser("noc", help="flit-level 3D NoC with synthetic traffic (BookSim2-style figures)")
    p.add_argument("--config", default=None, help="YAML file with NocConfig fields (nested)")
    p.add_argument("--mesh", default=None, help="XxYxZ routers (X x Y per tier, Z tiers), e.g. 4x4x4")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="any NocConfig path, e.g. router.num_vcs=2, traffic.rate=0.1")
    for flag, path in FLAGS.items():
        help_text = "comma-separated node ids for traffic hotspot" if flag == "hotspots" else path
        p.add_argument("--" + flag.replace("_", "-"), dest=flag, default=None, metavar="VALUE", help=help_text)
    p.add_argument("--checkpoint-every-ps", type=int, default=None, metavar="N",
                   help="write a checkpoint at every N ps of simulated time (atleus-dist resume RUN)")
    add_backend_flags(p, default_backend="inline")
    p.set_defaults(func=main)


def _sets(args: argparse.Namespace) -> list[str]:
    """Flags as ``--set`` items (their values read as YAML, like every other value)."""
    items = list(args.set)
    if args.mesh is not None:
        items.append(f"topology=mesh:{args.mesh}")
    for flag, path in FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            if flag == "hotspots":
                value = f"[{value}]"
            if flag == "wait_for_tail_credit" and value in ("0", "1"):
                value = "true" if value == "1" else "false"
            items.append(f"{path}={value}")
    return items


def main(args: argparse.Namespace) -> int:
    from atleus_dist import api
    from atleus_dist.config.tree import rename
    from atleus_dist.kernel.errors import ConfigError

    try:
        r = api.noc(args.config, sets=_sets(args), out=args.out, backend=args.backend, workers=args.workers,
                    progress=not args.quiet, address=args.address, placement=args.placement,
                    checkpoint_every_ps=args.checkpoint_every_ps)
    except ConfigError as exc:  # name the flag the user typed, not the --set item it became
        path = exc.field.removeprefix("--set ")
        flag = {v: k for k, v in FLAGS.items()}.get(path)
        if path == "topology" and args.mesh is not None and args.topology is None:
            flag = "mesh"
        if flag is not None and exc.field.startswith("--set ") and getattr(args, flag) is not None:
            raise rename(exc, "--" + flag.replace("_", "-")) from None
        raise
    fig = r.figures
    status = "SATURATED (unstable, like BookSim2)" if fig["saturated"] else "stable"
    if fig["saturated"]:
        sys.stderr.write("noc: offered load beyond saturation; latencies are not steady-state\n")

    def f(key: str, spec: str = ".2f") -> str:
        v = fig.get(key)
        return "n/a" if v is None else format(v, spec)

    emit(args, fig, [
        f"{fig['topology']} {fig['pattern']} rate {fig['rate']} packets/node/cycle: {status}",
        f"packet latency {f('packet_latency_mean')} cycles (min {f('packet_latency_min', '.0f')}, "
        f"max {f('packet_latency_max', '.0f')}); network {f('network_latency_mean')}; "
        f"flit {f('flit_latency_mean')}",
        f"accepted {f('accepted_flit_rate', '.4f')} flits/node/cycle (offered {f('offered_flit_rate', '.4f')}); "
        f"hops {f('hops_mean', '.3f')}",
        f"links: planar util {f('planar_link_utilisation_mean', '.4f')}, "
        f"tsv util {f('tsv_link_utilisation_mean', '.4f')}; energy planar "
        f"{f('planar_energy_pj', '.3g')} pJ, tsv {f('tsv_energy_pj', '.3g')} pJ",
        f"{fig['lps']} LPs on {fig['workers']} workers ({fig['backend']}), {fig['wall_s']:.2f} s; "
        f"results in {fig['out']}",
    ])
    return 0

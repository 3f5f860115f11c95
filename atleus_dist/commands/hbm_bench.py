"""``atleus-dist hbm-bench``: stream bytes between the HBM's memory ports and cores over the flit
NoC and print the bandwidth achieved next to the path's bound (:func:`atleus_dist.api.hbm_bench`;
the model is in :mod:`atleus_dist.run.hbm_bench`). Only argument handling and output live here."""

from __future__ import annotations

import argparse

from atleus_dist.commands.common import emit


def register(subparsers) -> None:
    p = subparsers.add_parser("hbm-bench", help="HBM <-> cores bandwidth over the flit NoC vs its bound")
    p.add_argument("--bytes", dest="nbytes", type=int, default=8 << 20, help="bytes per direction (default 8 MiB)")
    p.add_argument("--readers", type=int, default=None, help="cores reading (default one per HBM port)")
    p.add_argument("--writers", type=int, default=None, help="cores writing (default one per HBM port)")
    p.add_argument("--direction", choices=("read", "write", "both"), default="both")
    p.add_argument("--request-bytes", type=int, default=4096, help="bytes per memory request / NoC transfer")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="chip override, e.g. hbm.placement=first, noc.hbm_ports=1")
    p.add_argument("--arch", default=None, help="architecture YAML file")
    p.add_argument("--out", default=None, help="directory for the NoC tables (default: temporary)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from atleus_dist import api

    dirs = ("read", "write") if args.direction == "both" else (args.direction,)
    res = api.hbm_bench(nbytes=args.nbytes, readers=args.readers, writers=args.writers, directions=dirs,
                        request_bytes=args.request_bytes, sets=args.set, arch=args.arch, out=args.out)
    lines = []
    for d, r in res["directions"].items():
        lines.append(f"{d}: {r['bytes']:,} bytes, {len(set(r['ports']))} ports -> {len(set(r['cores']))} cores: "
                     f"achieved {r['achieved_bytes_per_s'] / 1e9:.1f} GB/s of bound {r['bound_bytes_per_s'] / 1e9:.1f}"
                     f" GB/s ({r['achieved_over_bound']:.1%}; bound by {r['bound_by']}; memory peak "
                     f"{r['memory_peak_bytes_per_s'] / 1e9:.0f} GB/s)")
    flat = dict(res)
    if len(res["directions"]) == 1:  # one direction: its figures at the top level too
        flat.update(next(iter(res["directions"].values())))
    emit(args, flat, lines)
    return 0

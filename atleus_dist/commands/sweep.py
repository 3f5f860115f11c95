"""``atleus-dist sweep [SCENARIO] --grid KEY=V1,V2 ... --out DIR``: the cross product of the grids
(``--zip``: keys varied together), each point a complete ``run`` in ``DIR/points/<id>/``, one row
per point in ``DIR/sweep.parquet``. Re-running the same command resumes. Only argument handling and
output live here (:mod:`atleus_dist.run.sweep` does the work).
"""

from __future__ import annotations

import argparse
import sys

from atleus_dist.commands.common import emit


def register(subs) -> None:
    from atleus_dist.run.scenario_run import TRANSPORTS

    p = subs.add_parser("sweep", help="run a grid of configurations (local pool, Ray tasks or inline), resumable")
    p.add_argument("scenario", nargs="?", default=None,
                   help="scenario name (workloads/scenarios) or YAML file; default: GPT-2 Medium LoRA r32, seq 128")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="swept key (a `run --set` path, or scenario / transport) and its values; "
                        "several --grid are crossed")
    p.add_argument("--zip", action="append", default=[], dest="zips", metavar="KEY=V1,V2,KEY2=W1,W2",
                   help="keys varied together (as many values each; several --zip are one axis), crossed with the grids")
    p.add_argument("--arch", default=None, help="architecture YAML (fields of AtleusArchConfig)")
    p.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE",
                   help="override for every point, as in `run --set`")
    p.add_argument("--transport", choices=TRANSPORTS, default="noc", help="noc (default) or stub")
    p.add_argument("--backend", choices=("local", "ray", "inline"), default="local",
                   help="local: a process pool (default); ray: one Ray task per point; inline: one after another")
    p.add_argument("--workers", type=int, default=None,
                   help="local: CPUs for the pool (default: all); ray: points in flight (default: all)")
    p.add_argument("--point-workers", type=int, default=1,
                   help="LP groups of each point (default 1: the point runs in its worker's process)")
    p.add_argument("--address", default=None, help="Ray cluster address, e.g. auto (default: a private local Ray)")
    p.add_argument("--ray-results", choices=("auto", "shared", "driver"), default="auto",
                   help="ray: tasks write DIR themselves (shared filesystem), send files to the driver, "
                        "or auto (shared when the node sees DIR)")
    p.add_argument("--out", required=True, help="sweep directory (created; an existing sweep resumes)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from atleus_dist.run.sweep import run_sweep

    try:
        table = run_sweep(args.out, args.scenario, args.grid, args.zips, args.arch, args.transport, args.sets,
                          args.backend, args.workers, args.point_workers, args.address, args.ray_results,
                          progress=not args.quiet)
    except KeyboardInterrupt:
        sys.stderr.write(f"atleus-dist sweep: interrupted; finished points are kept in {args.out} "
                         "(run the same command again to resume)\n")
        return 130
    status = table.column("status").to_pylist()
    counts = {s: status.count(s) for s in sorted(set(status))}
    fig = {"out": str(args.out), "points": table.num_rows, "counts": counts, "table": f"{args.out}/sweep.parquet"}
    emit(args, fig, [f"sweep: {table.num_rows} points, " + ", ".join(f"{n} {s}" for s, n in counts.items()),
                     f"table {args.out}/sweep.parquet  (atleus-dist report {args.out})"])
    return 0 if counts.get("complete", 0) == table.num_rows else 1

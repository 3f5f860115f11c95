"""``atleus-dist trace RUN [--out FILE] [--packets N]``: the run as a Chrome trace-event JSON file
(``RUN/trace.json.gz`` by default) to open in ui.perfetto.dev or chrome://tracing: a track per core
and HBM port, every op a slice, the critical path as arrows, sampled NoC packets and counters of
HBM bandwidth and NoC link use (see :mod:`atleus_dist.results.trace`).

Refuses (exit 2, one line) what is not a complete, verified run with an ``ops`` table, and an
``--out`` that cannot be written. Only argument handling and output live here.
"""

from __future__ import annotations

import argparse

from atleus_dist.commands.common import emit
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.results.summary import load_manifest
from atleus_dist.results.trace import DEFAULT_PACKETS, write_trace
from atleus_dist.run.run_graph import op_deps_of_run


def register(subs) -> None:
    p = subs.add_parser("trace", help="write a run as a trace for ui.perfetto.dev / chrome://tracing")
    p.add_argument("run_dir", metavar="RUN", help="a complete run directory")
    p.add_argument("--out", default=None, help="the trace file (default RUN/trace.json.gz; .gz: gzipped)")
    p.add_argument("--packets", type=int, default=DEFAULT_PACKETS,
                   help=f"NoC packets drawn as slices, evenly spaced over the packets table (default {DEFAULT_PACKETS})")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.packets < 0:
        raise ConfigError("--packets", f"must be >= 0, got {args.packets}")
    manifest = load_manifest(args.run_dir)  # a complete run (its tables verified as they are read)
    try:
        info = write_trace(args.run_dir, args.out, deps=op_deps_of_run(manifest), packets=args.packets)
    except OSError as exc:
        raise ConfigError("--out", f"cannot write {args.out or 'the trace'}: {exc.strerror or exc}") from None
    cp = info.get("critical_path") or {}
    lines = [f"trace {info['path']}: {info['bytes']:,} bytes in {info['seconds']:.2f} s",
             f"  {info['slices']:,} op slices, {info['packets']:,} packets, {info['flows']:,} critical-path arrows "
             f"({'exact' if cp.get('exact') else 'inferred'}), {info['counters']:,} counter samples",
             "  open it in https://ui.perfetto.dev (Open trace file) or chrome://tracing (Load)"]
    emit(args, info, lines)
    return 0

"""PHOLD throughput of every backend, measured side by side in one run.

    python bench/phold.py                 # default: 8 LPs x 2048 objects x 2 events
    python bench/phold.py --quick         # smaller, for a smoke test
    python bench/phold.py --no-ray

Prints committed events/s, rounds/s, sync share and per-round overhead for: the scalar per-event
heap path (inline), the vectorised model on inline, local (2 workers) and ray (2 actors), each with
its speed-up over vectorised inline from this same run, plus the cost of a near-empty round.
Absolute numbers depend on the machine and its load; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atleus_dist import backends  # noqa: E402
from atleus_dist.kernel import RunSpec, contiguous_groups  # noqa: E402
from atleus_dist.kernel import LPFactory  # noqa: E402
from atleus_dist.models.phold import PholdConfig, PholdLP  # noqa: E402
from atleus_dist.models.phold_scalar import ScalarPholdLP  # noqa: E402
from atleus_dist.results import SinkFactory  # noqa: E402


def measure(cfg: PholdConfig, backend: str, workers: int, lp_class=PholdLP, **opts) -> dict:
    with tempfile.TemporaryDirectory() as out:
        spec = RunSpec(n_lps=cfg.lps, channels=cfg.channels(), end_ps=cfg.end_ps,
                       lp_factory=LPFactory(lp_class, (cfg,)), groups=contiguous_groups(cfg.lps, workers),
                       sink_factory=SinkFactory(out))
        stats = backends.run(spec, backend, **opts)
    fig = stats.figures()
    fig["events_per_round_per_lp"] = stats.events / max(stats.rounds, 1) / cfg.lps
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    big = PholdConfig(lps=8, objects=2048, events_per_object=2, end_ps=2_000_000 if not args.quick else 200_000)
    small = PholdConfig(lps=8, objects=2048, events_per_object=2, end_ps=200_000 if not args.quick else 40_000)
    empty = PholdConfig(lps=4, objects=1, events_per_object=1, end_ps=4_000_000 if not args.quick else 400_000)
    rows = []
    rows.append(("scalar heap, inline", measure(small, "inline", 1, lp_class=ScalarPholdLP)))
    rows.append(("vectorised, inline", measure(big, "inline", 2)))
    rows.append(("vectorised, local x2", measure(big, "local", 2)))
    if not args.no_ray:
        rows.append(("vectorised, ray x2", measure(big, "ray", 2)))
    base = rows[1][1]["events_per_s"]
    overhead = [("empty rounds, inline", measure(empty, "inline", 2)),
                ("empty rounds, local x2", measure(empty, "local", 2))]
    if not args.no_ray:
        overhead.append(("empty rounds, ray x2", measure(empty, "ray", 2)))
    if args.json:
        print(json.dumps({name: fig for name, fig in rows + overhead}, default=str))
        return
    print(f"{'configuration':24} {'events/s':>12} {'vs inline':>9} {'rounds/s':>9} {'ev/round/LP':>11} "
          f"{'sync':>6} {'round cost':>11}")
    for name, f in rows + overhead:
        print(f"{name:24} {f['events_per_s']:12,.0f} {f['events_per_s'] / base:8.2f}x {f['rounds_per_s']:9,.0f} "
              f"{f['events_per_round_per_lp']:11,.0f} {f['sync_share']:6.1%} {1e6 * f['round_overhead_s']:9.1f}us")


if __name__ == "__main__":
    main()

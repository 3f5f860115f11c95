"""NoC speed benchmark: flit-hops/s and network cycles/s of the issue-3 configuration (4x4x4 mesh,
DOR, 4 VCs x 8 flits, 4-flit packets, routing 0 / VA 1 / SA 1 / credit 2, wait for tail credit)
on one core at several rates, and the local-backend speed-up on 2 workers.

``--booksim PATH`` also times an already-built BookSim2 binary on the same configuration (the
binary is not part of this repository). A flit-hop is one flit through one router; both tools
are counted the same way: accepted flits/node/cycle x nodes x cycles x mean hops.

    python bench/noc.py [--rates 0.02 0.05 0.10] [--booksim /path/to/booksim]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

from atleus_dist.commands.noc import simulate
from atleus_dist.hw.noc.config import NocConfig, PhaseConfig, TrafficConfig

BOOKSIM_CFG = """topology = mesh; k = 4; n = 3; routing_function = dim_order;
num_vcs = 4; vc_buf_size = 8; packet_size = 4;
routing_delay = 0; vc_alloc_delay = 1; sw_alloc_delay = 1; credit_delay = 2; wait_for_tail_credit = 1;
vc_allocator = separable_input_first; sw_allocator = separable_input_first; alloc_iters = 1;
traffic = uniform; injection_rate = {rate}; sim_type = latency;
"""


def ours(rate: float, partition: str, backend: str, workers: int, phases: PhaseConfig, out: Path) -> dict:
    cfg = NocConfig(traffic=TrafficConfig(rate=rate), phases=phases, partition=partition)
    t0 = time.perf_counter()
    fig, stats = simulate(cfg, backend, workers, out)
    wall = time.perf_counter() - t0
    cycles = cfg.end_cycle
    hops = fig["accepted_flit_rate"] * 64 * cycles * fig["hops_mean"]
    return {"wall_s": stats.run_s, "total_s": wall, "cycles_per_s": cycles / stats.run_s,
            "flit_hops_per_s": hops / stats.run_s, "latency": fig["packet_latency_mean"], "rounds": stats.rounds}


def booksim(binary: str, rate: float) -> dict:
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "noc.cfg"
        cfg.write_text(BOOKSIM_CFG.format(rate=rate))
        t0 = time.perf_counter()
        out = subprocess.run([binary, str(cfg)], capture_output=True, text=True).stdout  # exits 255 on success
        wall = time.perf_counter() - t0
    cycles = int(re.findall(r"Time taken is (\d+) cycles", out)[-1])
    acc = float(re.findall(r"Accepted flit rate average = ([\d.]+)", out)[-1])
    hops = float(re.findall(r"Hops average = ([\d.]+)", out)[-1])
    lat = float(re.findall(r"Packet latency average = ([\d.]+)", out)[-1])
    return {"wall_s": wall, "cycles_per_s": cycles / wall, "flit_hops_per_s": acc * 64 * cycles * hops / wall,
            "latency": lat}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[0.02, 0.05, 0.10])
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--measure", type=int, default=3000)
    ap.add_argument("--drain", type=int, default=500)
    ap.add_argument("--booksim", default=None, help="path to a BookSim2 binary to time side by side")
    ap.add_argument("--out", default=None, help="scratch directory (default: a temporary one)")
    args = ap.parse_args()
    phases = PhaseConfig(warmup_cycles=args.warmup, measure_cycles=args.measure, drain_cycles=args.drain)
    scratch = Path(args.out or tempfile.mkdtemp(prefix="noc-bench-"))
    print(f"4x4x4 mesh, uniform, {phases.warmup_cycles}+{phases.measure_cycles}+{phases.drain_cycles} cycles")
    print(f"{'rate':>6} {'tool':<22} {'cycles/s':>10} {'flit-hops/s':>12} {'latency':>8} {'rounds':>7}")
    for rate in args.rates:
        rows = [("inline single (1 core)", ours(rate, "single", "inline", 1, phases, scratch / f"s{rate}")),
                ("local blocks:2x1 (2 w)", ours(rate, "blocks:2x1", "local", 2, phases, scratch / f"l{rate}"))]
        if args.booksim:
            rows.append(("BookSim2", booksim(args.booksim, rate)))
        for name, r in rows:
            print(f"{rate:>6.3f} {name:<22} {r['cycles_per_s']:>10,.0f} {r['flit_hops_per_s']:>12,.0f} "
                  f"{r['latency']:>8.2f} {r.get('rounds', ''):>7}")
        print(f"{'':>6} local speed-up on 2 workers: {rows[0][1]['wall_s'] / rows[1][1]['wall_s']:.2f}x")


if __name__ == "__main__":
    main()

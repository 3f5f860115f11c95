"""NoC speed benchmark: flit-hops/s and network cycles/s of the issue-3 configuration (4x4x4 mesh,
DOR, 4 VCs x 8 flits, 4-flit packets, routing 0 / VA 1 / SA 1 / credit 2, wait for tail credit)
on one core at several rates, the local-backend speed-up on 2 workers (that mesh and a bigger
one cut by tier, where each round carries more work), and the numba compile time of the cycle
loop (cold, and loaded from the cache as every later process does). The compiled loop is loaded
once before the timings.

``--booksim PATH`` also times an already-built BookSim2 binary on the same configuration (the
binary is not part of this repository). A flit-hop is one flit through one router; both tools
are counted the same way: accepted flits/node/cycle x nodes x cycles x mean hops.

    python bench/noc.py [--rates 0.02 0.05 0.10] [--booksim /path/to/booksim]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from atleus_dist.api import noc as run_noc
from atleus_dist.hw.noc.config import NocConfig, PhaseConfig, TrafficConfig
from atleus_dist.hw.noc.topology import build_topology

BOOKSIM_CFG = """topology = mesh; k = 4; n = 3; routing_function = dim_order;
num_vcs = 4; vc_buf_size = 8; packet_size = 4;
routing_delay = 0; vc_alloc_delay = 1; sw_alloc_delay = 1; credit_delay = 2; wait_for_tail_credit = 1;
vc_allocator = separable_input_first; sw_allocator = separable_input_first; alloc_iters = 1;
traffic = uniform; injection_rate = {rate}; sim_type = latency;
"""


def ours(rate: float, partition: str, backend: str, workers: int, phases: PhaseConfig, out: Path,
         mesh: str = "4x4x4") -> dict:
    cfg = NocConfig(topology=f"mesh:{mesh}", traffic=TrafficConfig(rate=rate), phases=phases, partition=partition)
    t0 = time.perf_counter()
    r = run_noc(cfg, out=out, backend=backend, workers=workers)
    fig, stats = r.figures, r.stats
    wall = time.perf_counter() - t0
    cycles = cfg.end_cycle
    nodes = build_topology(cfg).n_routers
    hops = fig["accepted_flit_rate"] * nodes * cycles * fig["hops_mean"]
    return {"wall_s": stats.run_s, "total_s": wall, "cycles_per_s": cycles / stats.run_s,
            "flit_hops_per_s": hops / stats.run_s, "latency": fig["packet_latency_mean"], "rounds": stats.rounds}


JIT_PROBE = """
import time, numpy as np
t0 = time.perf_counter()
from atleus_dist.hw.noc.config import NocConfig, TrafficConfig
from atleus_dist.hw.noc.region import Region
from atleus_dist.hw.noc.topology import build_topology
cfg = NocConfig(traffic=TrafficConfig(rate=0.05))
topo = build_topology(cfg)
t1 = time.perf_counter()
reg = Region(cfg, topo, np.arange(64), np.zeros(64, dtype=np.int64), 0)
reg.run(5)
flit = np.zeros((1, 15), dtype=np.int64)
from atleus_dist.hw.noc import engine_layout as L
flit[0, 3 + L.F_SIZE], flit[0, 3 + L.F_DEST] = 1, 5  # a one-flit packet to node 5, into router 0 port 1
flit[0, 1] = 1
reg.add_remote_flits(np.array([6]), flit)
reg.add_remote_credits(np.array([6]), np.zeros((1, 3), dtype=np.int64))
reg.run(50)
print(time.perf_counter() - t1)
"""


def jit_seconds() -> tuple[float, float]:
    """First-call time of the compiled loop in a fresh process: with an empty numba cache (cold
    compile) and again with the cache it left (what every later process pays)."""
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, NUMBA_CACHE_DIR=d)
        run = lambda: float(subprocess.run([sys.executable, "-c", JIT_PROBE], env=env, capture_output=True,
                                           text=True, check=True).stdout.split()[-1])
        return run(), run()


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
    ap.add_argument("--local", nargs="+", default=["4x4x4:blocks:2x1", "8x8x4:by-tier"],
                    help="MESH:PARTITION configurations for the 2-worker local comparison")
    ap.add_argument("--no-jit", action="store_true", help="skip the compile-time probe")
    ap.add_argument("--out", default=None, help="scratch directory (default: a temporary one)")
    args = ap.parse_args()
    phases = PhaseConfig(warmup_cycles=args.warmup, measure_cycles=args.measure, drain_cycles=args.drain)
    scratch = Path(args.out or tempfile.mkdtemp(prefix="noc-bench-"))
    if not args.no_jit:
        cold, cached = jit_seconds()
        print(f"JIT: first call {cold:.2f} s with an empty numba cache, {cached:.2f} s from the cache")
    ours(0.01, "by-tier", "inline", 1, PhaseConfig(warmup_cycles=10, measure_cycles=50, drain_cycles=10),
         scratch / "warm")  # load the compiled loop once, outside the timings
    print(f"4x4x4 mesh, uniform, {phases.warmup_cycles}+{phases.measure_cycles}+{phases.drain_cycles} cycles; "
          f"one core unless said")
    print(f"{'rate':>6} {'tool':<28} {'cycles/s':>10} {'flit-hops/s':>12} {'latency':>8} {'rounds':>7}")
    for rate in args.rates:
        rows = [("inline single (1 core)", ours(rate, "single", "inline", 1, phases, scratch / f"s{rate}"))]
        if args.booksim:
            rows.append(("BookSim2", booksim(args.booksim, rate)))
        for name, r in rows:
            print(f"{rate:>6.3f} {name:<28} {r['cycles_per_s']:>10,.0f} {r['flit_hops_per_s']:>12,.0f} "
                  f"{r['latency']:>8.2f} {r.get('rounds', ''):>7}")
        if args.booksim:
            print(f"{'':>6} ours / BookSim2 flit-hops/s: {rows[0][1]['flit_hops_per_s'] / rows[1][1]['flit_hops_per_s']:.2f}x")
    print("local backend, 2 workers vs inline single on one core")
    for item in args.local:
        mesh, part = item.split(":", 1)
        for rate in args.rates:
            tag = f"{mesh}-{part}-{rate}".replace(":", "_")
            one = ours(rate, "single", "inline", 1, phases, scratch / f"1-{tag}", mesh)
            two = ours(rate, part, "local", 2, phases, scratch / f"2-{tag}", mesh)
            for name, r in ((f"{mesh} inline single", one), (f"{mesh} local {part} (2 w)", two)):
                print(f"{rate:>6.3f} {name:<28} {r['cycles_per_s']:>10,.0f} {r['flit_hops_per_s']:>12,.0f} "
                      f"{r['latency']:>8.2f} {r.get('rounds', ''):>7}")
            print(f"{'':>6} local speed-up on 2 workers: {one['wall_s'] / two['wall_s']:.2f}x")


if __name__ == "__main__":
    main()

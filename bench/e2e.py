"""End-to-end step simulations: wall time, rounds, sync share, events/s and local speed-up.

    python bench/e2e.py            # default scenario (stub) inline vs local x2, GPT-2 Medium s1024,
                                   # Llama-2-7B s512 (stub), and a small coupled-NoC step
    python bench/e2e.py --quick    # skip the long ones

Every figure comes from one run of this script; compare the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atleus_dist import backends  # noqa: E402
from atleus_dist.results import SinkFactory, read_table  # noqa: E402
from atleus_dist.run.scenario_run import build  # noqa: E402


def measure(label: str, scenario: str | None, sets: list[str], transport: str, backend: str,
            workers: int, partition: str = "by-tier") -> dict:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        built = build(scenario, None, sets, transport, workers, partition, SinkFactory(out))
        t_build = time.perf_counter() - t0
        stats = backends.run(built.spec, backend)
        step = max(read_table(out, "ops").column("end_ps").to_pylist())
    fig = stats.figures()
    print(f"{label:44} {backend:6} x{workers} {stats.wall_s + t_build:8.2f} s wall ({t_build:5.2f} build) "
          f"{stats.rounds:9,} rounds {fig['events_per_s']:11,.0f} ev/s  sync {stats.sync_share:6.1%}  "
          f"step {step / 1e9:9.3f} ms", flush=True)
    return dict(fig, wall_total_s=stats.wall_s + t_build, step_ps=step)


def peak_rss_mb(args: list[str]) -> float:
    """Peak RSS of a whole `atleus-dist run` in a child process (memory must stay flat)."""
    res = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "atleus_dist.cli", *args],
                         capture_output=True, text=True)
    return int(res.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    a = measure("default scenario (stub)", None, [], "stub", "inline", 1)
    b = measure("default scenario (stub)", None, [], "stub", "local", 2)
    print(f"  local x2 speed-up over inline (run loop): {a['run_s'] / b['run_s']:.2f}x, "
          f"whole run: {a['wall_total_s'] / b['wall_total_s']:.2f}x")
    measure("GPT-2 Medium s32, flit NoC, single LP", "gpt2-medium-lora32-s1024", ["scenario.seq=32"],
            "noc", "inline", 1, "single")
    if args.quick:
        return
    measure("GPT-2 Medium LoRA s1024 (stub)", "gpt2-medium-lora32-s1024", [], "stub", "inline", 1)
    measure("Llama-2-7B LoRA s512, streamed (stub)", "llama-2-7b-lora16-s512", [], "stub", "inline", 1)
    with tempfile.TemporaryDirectory() as out:
        rss = peak_rss_mb(["run", "llama-2-7b-lora16-s512", "--backend", "inline", "--quiet", "--out", out + "/r"])
    print(f"  Llama-2-7B run peak RSS {rss:,.0f} MB")


if __name__ == "__main__":
    main()

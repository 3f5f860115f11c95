"""End-to-end step simulations: wall time, rounds, sync share, events/s, local speed-up, memory.

    python bench/e2e.py            # everything below except the long runs
    python bench/e2e.py --long     # also GPT-2 Medium LoRA s1024 on the flit-level NoC (minutes)

1. The default scenario (GPT-2 Medium LoRA r32, flit-level NoC, one LP) inline and local x1.
2. Parallel speed-up of the local backend (2 workers) over inline on the same partition, for
   the flit-level chip cut by tier (a shrunken GPT-2: by tier, a real step needs a round every
   2 ns) and for the stub transport (one LP per tier) on GPT-2 Medium s1024.
3. Llama-2-7B LoRA s512 with weight streaming (stub transport) and the peak RSS of whole runs:
   memory must not grow with the run (results stream out).

Every figure comes from one run of this script; compare the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atleus_dist import backends  # noqa: E402
from atleus_dist.results import SinkFactory, read_table  # noqa: E402
from atleus_dist.run.scenario_run import build  # noqa: E402


def report(label: str, backend: str, workers: int, stats, t_build: float, step_ps: int) -> dict:
    fig = stats.figures()
    print(f"{label:46} {backend:6} x{workers} {stats.wall_s + t_build:8.2f} s wall ({t_build:5.2f} build) "
          f"{stats.rounds:9,} rounds {fig['events_per_s']:11,.0f} ev/s  sync {stats.sync_share:6.1%}  "
          f"step {step_ps / 1e9:9.3f} ms", flush=True)
    return dict(fig, wall_total_s=stats.wall_s + t_build, step_ps=step_ps)


def measure(label: str, scenario: str | None, sets: list[str], transport: str, backend: str,
            workers: int, partition: str | None = None) -> dict:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        built = build(scenario, None, sets, transport, workers, partition, SinkFactory(out))
        t_build = time.perf_counter() - t0
        stats = backends.run(built.spec, backend)
        step = max(read_table(out, "ops").column("end_ps").to_pylist())
    return report(label, backend, workers, stats, t_build, step)


def measure_small_chip(label: str, backend: str, workers: int, partition: str) -> dict:
    """The shrunken GPT-2 of tests/test_chip.py (1 layer, d_model 128, seq 32) on the flit NoC."""
    from atleus_dist.hw.chip import chip_run_spec
    from atleus_dist.workload import Mapper, compile_step, load_model
    from atleus_dist.workload.scenario import Scenario

    t0 = time.perf_counter()
    model = dataclasses.replace(load_model("gpt2-medium"), layers=2, d_model=256, heads=4, kv_heads=4,
                                d_ff=1024, vocab=512, positions=64)
    sc = Scenario(model, seq=64, lora_rank=4, pipeline_chunk_tokens=16)
    mapping = Mapper().map(sc, compile_step(sc))
    with tempfile.TemporaryDirectory() as out:
        spec, _cfg = chip_run_spec(mapping, {}, partition, workers, SinkFactory(out))
        t_build = time.perf_counter() - t0
        stats = backends.run(spec, backend)
        step = max(read_table(out, "ops").column("end_ps").to_pylist())
    return report(label, backend, workers, stats, t_build, step)


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """Peak RSS (MB) and wall time of a whole `atleus-dist` command in a child process."""
    t0 = time.perf_counter()
    res = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "atleus_dist.cli", *args],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    return int(res.stderr.strip().splitlines()[-1]) / 1024, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--long", action="store_true", help="also GPT-2 Medium s1024 on the flit-level NoC")
    args = ap.parse_args()
    s1024 = "gpt2-medium-lora32-s1024"

    print("== 1. default scenario (GPT-2 Medium LoRA r32 s128, flit-level NoC, one LP)")
    a = measure("default scenario", None, [], "noc", "inline", 1)
    b = measure("default scenario", None, [], "noc", "local", 1)
    print(f"  local x1 / inline whole run: {a['wall_total_s'] / b['wall_total_s']:.2f}x")

    print("== 2. local backend speed-up over inline, same partition")
    a = measure_small_chip("shrunken GPT-2, flit NoC, by-tier", "inline", 2, "by-tier")
    b = measure_small_chip("shrunken GPT-2, flit NoC, by-tier", "local", 2, "by-tier")
    c = measure_small_chip("shrunken GPT-2, flit NoC, single", "inline", 1, "single")
    print(f"  by-tier local x2 over by-tier inline: {a['run_s'] / b['run_s']:.2f}x; "
          f"over single inline: {c['run_s'] / b['run_s']:.2f}x (run loop)")
    a = measure("GPT-2 Medium LoRA s1024, stub, by-tier", s1024, [], "stub", "inline", 1)
    b = measure("GPT-2 Medium LoRA s1024, stub, by-tier", s1024, [], "stub", "local", 2)
    print(f"  local x2 over inline (run loop): {a['run_s'] / b['run_s']:.2f}x, "
          f"whole run: {a['wall_total_s'] / b['wall_total_s']:.2f}x")

    print("== 3. Llama-2-7B with weight streaming; memory")
    measure("Llama-2-7B LoRA s512, streamed, stub", "llama-2-7b-lora16-s512", [], "stub", "inline", 1)
    with tempfile.TemporaryDirectory() as out:
        for i, (label, run) in enumerate((("Llama-2-7B s512 stub", ["llama-2-7b-lora16-s512", "--transport", "stub"]),
                                          ("GPT-2 Medium s32 noc", ["--set", "scenario.seq=32"]),
                                          ("GPT-2 Medium s128 noc", []))):
            rss, wall = peak_rss_mb(["run", *run, "--backend", "inline", "--quiet", "--out", f"{out}/r{i}"])
            print(f"  {label:24} peak RSS {rss:7,.0f} MB  ({wall:6.1f} s)")

    if args.long:
        print("== 4. GPT-2 Medium LoRA r32 s1024, flit-level NoC, one LP")
        measure("GPT-2 Medium LoRA s1024, flit NoC", s1024, [], "noc", "inline", 1)


if __name__ == "__main__":
    main()

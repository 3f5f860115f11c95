"""Sweep speed-up: the whole `atleus-dist sweep` command on the local pool, 2 workers vs 1.

    python bench/sweep.py            # 3 rounds of (workers 1, workers 2), plus a resume
    python bench/sweep.py --ray      # also the same sweep on a private local Ray (2 CPUs)
    python bench/sweep.py --large    # also seq 256..1024: longer points, the pool's own scaling

The sweep is GPT-2 Medium LoRA r32 on the stub transport, seq 32..256 x 4 or 5 ReRAM tiers
(8 points). Each command is a fresh process into a fresh directory, timed from outside, so the
figure includes interpreter start-up, validation of every point and writing sweep.parquet. The
rounds alternate 1 and 2 workers so that drift in machine load hits both alike; the medians are
compared. Run it through /work/measure: the ratio means nothing when other jobs share the cores.

Before timing, the package's bytecode is written (``compileall``), as an installed package has it:
this machine's shells set ``PYTHONDONTWRITEBYTECODE=1``, under which every command compiled the
package's modules from source in the serial part (~0.1 s). ``--no-precompile`` skips that.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--grid", "scenario.seq=32,64,128,256", "--grid", "reram_tiers=4,5"]   # the sweep: 8 points
LARGE = ["--grid", "scenario.seq=256,512,1024", "--grid", "reram_tiers=4,5"]    # 6 longer points
COMMON = ["sweep", "gpt2-medium-lora32-s1024", "--transport", "stub", "--quiet", "--json"]


def point_work(out: Path) -> float:
    """Sum of the points' own wall times (each point's run in its worker, as the sweep manifest
    records them): x2's sum over x1's says how much slower a point runs beside another."""
    man = json.loads((out / "manifest.json").read_text())
    return sum(p.get("wall_s") or 0.0 for p in man["points"])


def timed(args: list[str], out: Path, grid: list[str] = SMALL) -> tuple[float, dict]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "atleus_dist.cli", *COMMON, *grid, *args, "--out", str(out)],
                         capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"sweep failed ({res.returncode}): {res.stderr[-2000:]}")
    return wall, json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ray", action="store_true")
    ap.add_argument("--large", action="store_true", help="also seq 256..1024 (6 points, ~25 s at x1)")
    ap.add_argument("--no-precompile", action="store_true", help="do not write the package's bytecode first")
    opts = ap.parse_args()
    if not opts.no_precompile:
        compileall.compile_dir(str(REPO / "atleus_dist"), quiet=1)
    times: dict[str, list[float]] = {"local x1": [], "local x2": []}
    work: dict[str, list[float]] = {"local x1": [], "local x2": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(opts.rounds):
            for w in (1, 2):
                wall, data = timed(["--backend", "local", "--workers", str(w)], Path(tmp) / f"r{r}w{w}")
                assert data["counts"] == {"complete": 8}, data
                times[f"local x{w}"].append(wall)
                work[f"local x{w}"].append(point_work(Path(tmp) / f"r{r}w{w}"))
                print(f"round {r}: local x{w} {wall:6.2f} s (points' own walls {work[f'local x{w}'][-1]:.2f} s)",
                      flush=True)
        resume, _ = timed(["--backend", "local", "--workers", "2"], Path(tmp) / "r0w2")
        t0 = time.perf_counter()
        # what every sweep command imports before its pool forks, and how the program ends (cli._end_process)
        subprocess.run([sys.executable, "-c", "import atleus_dist.cli, atleus_dist.commands.sweep, atleus_dist.run.sweep; "
                        "getattr(atleus_dist.cli, '_end_process', lambda code: None)(0)"], check=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
        startup = time.perf_counter() - t0
        if opts.large:
            for w in (1, 2):
                wall, data = timed(["--backend", "local", "--workers", str(w)], Path(tmp) / f"large{w}", LARGE)
                assert data["counts"] == {"complete": 6}, data
                times[f"larger points (seq 256-1024, 6 points), local x{w}"] = [wall]
                print(f"larger points: local x{w} {wall:6.2f} s", flush=True)
        if opts.ray:
            wall, _ = timed(["--backend", "ray", "--workers", "2"], Path(tmp) / "ray")
            times["ray x2 (private local Ray, incl. start-up)"] = [wall]
    med = {k: statistics.median(v) for k, v in times.items()}
    print("\n| configuration | whole command (median) | all rounds | vs x1 of the same sweep |\n|---|---|---|---|")
    for k, v in times.items():
        ref = med[k.replace("x2", "x1")] if "larger" in k else med["local x1"]
        print(f"| {k} | {med[k]:.2f} s | {', '.join(f'{x:.2f}' for x in v)} | {ref / med[k]:.2f}x |")
    print(f"| resume (8 of 8 complete, 0 recomputed), local x2 | {resume:.2f} s | | |")
    print(f"| interpreter start-up + imports + exit (serial in every command) | {startup:.2f} s | | |")
    w1, w2 = (statistics.median(work[k]) for k in ("local x1", "local x2"))
    print(f"| points' own walls, summed (median): x1 {w1:.2f} s, x2 {w2:.2f} s | x2/x1 {w2 / w1:.3f} "
          f"(a point beside another runs this much longer) | | |")
    print(f"| outside the points (command - summed point walls / workers): x1 {med['local x1'] - w1:.2f} s, "
          f"x2 {med['local x2'] - w2 / 2:.2f} s | | | |")
    print(f"\nspeed-up local x2 over x1: {med['local x1'] / med['local x2']:.2f}x (target >= 1.8x)")


if __name__ == "__main__":
    main()

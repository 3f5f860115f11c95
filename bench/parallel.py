"""Issue 10's four figures, side by side in one run: is a partitioned run faster than one LP?

    /work/measure python bench/parallel.py [--only chip,chip8x8,noc,readme] [--busy] [--repeat N]
                                           [--no-precompile] [--plans 'tiers:0,0,0,0,1;blocks:2x1']
                                           [--forecast-off]

Each case runs the CLI twice as whole processes (what a user waits for): the reference
(``--partition single --backend inline``, or ``--backend inline`` for the README run) and the
candidate (``--partition auto --backend local --workers 2``), then compares their digests and
prints wall time, the run loop, rounds, mean cycles per window, sync share and the plan the
planner chose. ``--busy`` adds a third busy process (a spinning Python) to the candidate runs,
to check that the barrier's back-off keeps them within 1.5x of single. ``--repeat N`` runs each
pair N times, alternating, and compares the medians (a single pair moves by ~0.1 s with the load).
``--plans`` also times each named partition on local x2 (plans the planner may reject, to see
what they cost), ``--forecast-off`` each of those with and without the compiled rounds'
earliest-output forecasts (``ATLEUS_DIST_FORECAST=1`` / ``0``: same digest, other windows).

Before timing, the package's bytecode is written (``compileall``), as an installed package has it:
this machine's shells set ``PYTHONDONTWRITEBYTECODE=1``, under which every process compiled the
package's ~80 modules from source (~0.1-0.15 s of every figure). ``--no-precompile`` skips that.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import sys
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCH8 = str(ROOT / "workloads" / "arch" / "atleus-8x8.yaml")
AUTO2 = ["--partition", "auto", "--backend", "local", "--workers", "2"]
SINGLE = ["--partition", "single", "--backend", "inline"]
CASES = {
    "chip": ("default chip, run --set scenario.seq=32", 1.3,
             ["run", "--set", "scenario.seq=32"], SINGLE, AUTO2),
    "chip8x8": ("8x8 chip, gpt2-medium-lora32-s1024 seq 32", 1.7,
                ["run", "gpt2-medium-lora32-s1024", "--arch", ARCH8, "--set", "scenario.seq=32"], SINGLE, AUTO2),
    "noc": ("noc --mesh 8x8x4 --traffic uniform --rate 0.05", 1.6,
            ["noc", "--mesh", "8x8x4", "--traffic", "uniform", "--rate", "0.05"], SINGLE, AUTO2),
    "readme": ("README default run (atleus-dist run)", 0.95,
               ["run"], ["--backend", "inline"], ["--backend", "local"]),
}


def _cli(args: list[str], out: str, busy: bool, env_extra: dict | None = None) -> tuple[float, dict, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env_extra or {}))
    hog = None
    if busy:
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "atleus_dist.cli", *args, "--out", out, "--json", "--quiet"],
                              env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    with open(os.path.join(out, "manifest.json")) as fh:
        figures = json.load(fh)["figures"]
    dig = subprocess.run([sys.executable, "-m", "atleus_dist.cli", "digest", out, "--json"], env=env,
                         capture_output=True, text=True, check=True)
    return wall, figures, json.loads(dig.stdout.strip().splitlines()[-1])["digest"]


def _median(runs: list[tuple[float, dict, str]]) -> tuple[float, dict, str]:
    """The run with the median wall time (its figures and digest with it)."""
    walls = [w for w, _, _ in runs]
    return runs[walls.index(statistics.median_low(walls))]


def _line(label: str, wall: float, f: dict) -> str:
    mcw = f.get("mean_cycles_per_window")
    return (f"  {label:<9} {wall:8.2f} s whole  {f.get('run_s', 0):8.2f} s loop  {f.get('rounds', 0):>10,} rounds  "
            f"{(f'{mcw:6.1f}' if mcw else '     -')} cyc/window  sync {f.get('sync_share', 0):5.1%}  "
            f"plan {f.get('plan', f.get('partition', '-'))}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(CASES), help="comma-separated cases: " + ", ".join(CASES))
    ap.add_argument("--busy", action="store_true", help="a third busy process during the candidate runs")
    ap.add_argument("--repeat", type=int, default=1, help="pairs per case (medians compared)")
    ap.add_argument("--no-precompile", action="store_true", help="do not write the package's bytecode first")
    ap.add_argument("--plans", default="", help="';'-separated partitions also timed on local x2 (chip cases)")
    ap.add_argument("--forecast-off", action="store_true", help="each --plans run again without forecasts")
    args = ap.parse_args()
    failed = False
    if not args.no_precompile:
        compileall.compile_dir(str(ROOT / "atleus_dist"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="atleus-warm-") as tmp:  # JIT caches filled before timing
        _cli(["noc", "--mesh", "4x4x2", "--measure", "50", "--drain", "50", "--partition", "blocks:2x1",
              "--backend", "local", "--workers", "2"], os.path.join(tmp, "a"), False)
        _cli(["noc", "--mesh", "4x4x2", "--measure", "50", "--drain", "50"] + SINGLE, os.path.join(tmp, "b"), False)
    for key in args.only.split(","):
        title, target, base, ref_flags, cand_flags = CASES[key]
        refs, news = [], []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="atleus-bench-") as tmp:
                refs.append(_cli(base + ref_flags, os.path.join(tmp, "ref"), False))
                news.append(_cli(base + cand_flags, os.path.join(tmp, "new"), args.busy))
        w_ref, f_ref, d_ref = _median(refs)
        w_new, f_new, d_new = _median(news)
        same = all(d == d_ref for _, _, d in refs + news)
        speed = w_ref / w_new
        loop = f_ref.get("run_s", 0) / f_new["run_s"] if f_new.get("run_s") else float("nan")
        ok = same and (w_new <= 1.5 * w_ref if args.busy else speed >= target)
        failed |= not ok
        print(f"== {title}")
        print(_line(" ".join(ref_flags), w_ref, f_ref))
        print(_line(" ".join(cand_flags), w_new, f_new))
        goal = "<= 1.5x slower" if args.busy else f">= {target}x"
        if args.repeat > 1:
            print(f"  all walls: reference {', '.join(f'{w:.2f}' for w, _, _ in refs)}; "
                  f"candidate {', '.join(f'{w:.2f}' for w, _, _ in news)} (medians above)")
        print(f"  speed-up {speed:.2f}x whole process ({loop:.2f}x run loop), target {goal}: "
              f"{'met' if ok else 'NOT met'}; digests {'identical' if same else 'DIFFER'}")
        if f_new.get("plan_reason"):
            print(f"  plan: {f_new['plan_reason']}")
        for part in [p for p in args.plans.split(";") if p] if key != "readme" else []:
            for off in ((False, True) if args.forecast_off else (False,)):
                flags = ["--partition", part, "--backend", "local", "--workers", "2"]
                with tempfile.TemporaryDirectory(prefix="atleus-bench-") as tmp:
                    w, f, d = _cli(base + flags, os.path.join(tmp, "p"), False,
                                   {"ATLEUS_DIST_FORECAST": "0" if off else "1"})
                label = f"{part}{' no-fc' if off else ''}"
                print(_line(label, w, f) + f"  {w_ref / w:.2f}x whole ({f_ref.get('run_s', 0) / f['run_s']:.2f}x loop)"
                      f"{'' if off else '  fc gain %.1f cyc' % f.get('forecast_gain_cycles', 0)}"
                      f"  digest {'same' if d == d_ref else 'DIFFERS'}")
                failed |= d != d_ref
        sys.stdout.flush()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

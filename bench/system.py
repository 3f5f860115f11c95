"""Issue 20's parallel figures, side by side in one run: a system of chips on one LP group versus
its chips spread over worker processes, and the projection to more workers.

    flock /work/measure.lock python bench/system.py [--only pipe,dp] [--repeat N] [--ray]

Each case runs the CLI as whole processes (what a user waits for): the reference
(``--partition single --backend inline``) and the candidate (``--partition auto --backend local
--workers 2``; ``--ray`` adds ``--backend ray --workers 2`` on one node), alternating ``--repeat``
times, and prints min/median/max wall time, the speed-up of the medians and the digests (equal or
the figure means nothing).

**Scaling model.** From the reference run's ``windows`` table (one row per LP per round: its work
in seconds) and the candidate's measured cost of a round: with W workers and chip c on worker
c mod W, a round costs the largest per-worker sum of its chips' work plus the round's exchange
(``sync_s`` per round of the 2-worker run, taken as constant in W - the barrier is one shared-memory
epoch, so this is optimistic for W > cores and for Ray across nodes, which costs more per round:
bench/ray_rounds.py); T(W) = sum over rounds. T(1) is the single run's loop; the model's T(2) is
checked against the measured 2-worker loop (within 10%) before T(4..64) is printed. Workers
beyond the chip count add nothing (a chip is one LP).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atleus_dist import results  # noqa: E402

SINGLE = ["--partition", "single", "--backend", "inline"]
AUTO2 = ["--partition", "auto", "--backend", "local", "--workers", "2"]
RAY2 = ["--partition", "chips", "--backend", "ray", "--workers", "2"]
CASES = {
    # the shipped GPT-2 XL pipeline (4 chips, 1F1B) at seq 32 with 4 micro-batches of one sequence
    "pipe": ("GPT-2 XL LoRA pipeline, 4 chips, flit NoC", 1.7,
             ["run", "gpt2-xl-lora32-m8f4-pipe4", "--set", "scenario.seq=32", "--set", "scenario.batch=4",
              "--set", "scenario.micro_batches=4"]),
    # the shipped data-parallel system (4 replicas of GPT-2 Medium) at seq 32
    "dp": ("GPT-2 Medium LoRA, 4 data-parallel chips, flit NoC", 1.8,
           ["run", "gpt2-medium-lora32-dp4", "--set", "scenario.seq=32"]),
}


def _cli(args: list[str], out: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "atleus_dist.cli", *args, "--out", str(out), "--json", "--quiet"],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: {proc.stderr.strip()[-400:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def _digest(out: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "atleus_dist.cli", "digest", str(out), "--json"],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)["digest"]


def project(run_dir: Path, lps_of_chip: list[list[int]], round_cost_s: float, workers: list[int]) -> dict:
    """T(W) of the scaling model (module docstring) from the single run's per-LP work per round."""
    w = results.read_table(str(run_dir), "windows")
    rnd = w.column("round").to_numpy()
    lp = w.column("lp").to_numpy()
    work = w.column("work_s").to_numpy()
    chip_of = np.empty(max(max(c) for c in lps_of_chip) + 1, dtype=np.int64)
    for c, lps in enumerate(lps_of_chip):
        chip_of[lps] = c
    rounds = np.unique(rnd)
    idx = np.searchsorted(rounds, rnd)
    per = np.zeros((len(rounds), len(lps_of_chip)))
    np.add.at(per, (idx, chip_of[lp]), work)
    out = {}
    for n in workers:
        k = min(n, len(lps_of_chip))
        load = np.zeros((len(rounds), k))
        for c in range(len(lps_of_chip)):
            load[:, c % k] += per[:, c]
        out[n] = float(load.max(axis=1).sum() + (round_cost_s * len(rounds) if k > 1 else 0.0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(CASES))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--ray", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-system-"))
    for name in a.only.split(","):
        label, target, args = CASES[name]
        kinds = {"single": SINGLE, "auto": AUTO2, **({"ray": RAY2} if a.ray else {})}
        walls: dict[str, list[float]] = {k: [] for k in kinds}
        figs: dict[str, dict] = {}
        digests: dict[str, str] = {}
        for r in range(a.repeat):
            for kind, extra in kinds.items():
                out = tmp / f"{name}-{kind}-{r}"
                wall, fig = _cli(args + extra, out)
                walls[kind].append(wall)
                figs[kind], digests[kind] = fig, _digest(out)
                figs[kind]["dir"] = out
        med = {k: statistics.median(v) for k, v in walls.items()}
        print(f"\n{label}: {' '.join(args)}")
        for kind, v in walls.items():
            f = figs[kind]
            print(f"  {kind:<6} wall min/median/max {min(v):.2f}/{med[kind]:.2f}/{max(v):.2f} s, loop {f['run_s']:.2f} s, "
                  f"rounds {f['rounds']:,}, sync share {f['sync_share']:.1%}, digest {digests[kind][:12]}")
        print(f"  speed-up of the medians: {med['single'] / med['auto']:.2f}x (target >= {target}x); digests "
              f"{'equal' if len(set(digests.values())) == 1 else 'DIFFER'}")
        if a.ray:
            print(f"  ray vs local: {med['ray'] / med['auto']:.2f}x the local wall time")
        man = json.loads((figs["single"]["dir"] / "manifest.json").read_text())
        lps_of_chip = man["config"]["system"]["lps_of_chip"]
        auto = figs["auto"]
        cost = auto["sync_s"] / max(1, auto["rounds"]) / 2  # sync_s sums both workers
        work_w = results.read_table(str(figs["single"]["dir"]), "windows")
        per_window = float(pc.sum(work_w.column("work_s")).as_py()) / max(1, figs["single"]["rounds"])
        t = project(figs["single"]["dir"], lps_of_chip, cost, [1, 2, 4, 8, 16, 32, 64])
        print(f"  work per window (all chips) {per_window * 1e6:.1f} us over {figs['single']['rounds']:,} rounds; "
              f"round cost at 2 workers {cost * 1e6:.1f} us")
        print(f"  model: T(2) {t[2]:.2f} s vs measured loop {auto['run_s']:.2f} s "
              f"({t[2] / auto['run_s'] - 1:+.1%}); speed-up over T(1) {t[1]:.2f} s: "
              + ", ".join(f"{n}: {t[1] / t[n]:.2f}x" for n in sorted(t) if n > 1))


if __name__ == "__main__":
    main()

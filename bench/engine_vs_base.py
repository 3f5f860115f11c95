"""The NoC engine against the commit it started from, side by side in one run (issue 21).

Runs each case with the base tree and with this tree, alternating (base, new, new, base, ...)
so drift in the machine's load hits both alike, after one untimed warm-up each (numba's cache),
and prints per case the minimum and median of the loop time (the run's ``run_s``: the rounds,
engine and Python windows, without set-up and writing) and of the whole process (wall time of
the ``atleus-dist`` process, start-up and numba loading included), their ratios base / new, and
whether every run's digest (``atleus-dist digest``) equals the base's - recomputed here from
the base tree, never taken from stored hashes. Cases: ``noc44`` (``noc --mesh 4x4x4 --traffic
uniform --rate 0.05``), ``noc84`` (``--mesh 8x8x4``), ``run`` (the README's default run), all
``--partition single --backend inline``.

    git worktree add /tmp/base d50c771
    flock /work/measure.lock python bench/engine_vs_base.py --base /tmp/base [--reps 5] [--cases noc44 run]

Hold the machine's measurement lock for the whole run; figures from a loaded machine are not
speed figures. Exit status 1 if any digest differs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
NOC = ["noc", "--traffic", "uniform", "--rate", "0.05", "--partition", "single", "--backend", "inline"]
CASES = {
    "noc44": NOC + ["--mesh", "4x4x4"],
    "noc84": NOC + ["--mesh", "8x8x4"],
    "run": ["run", "--partition", "single", "--backend", "inline"],
}


def _cli(tree: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(tree))
    return subprocess.run([sys.executable, "-m", "atleus_dist.cli", *args], env=env, capture_output=True,
                          text=True, check=True)


def one(tree: Path, case: str, out: Path) -> dict:
    """One run of ``case`` with ``tree``: loop and whole-process seconds, digest, flit-hops."""
    t0 = time.perf_counter()
    _cli(tree, CASES[case] + ["--out", str(out), "--quiet"])
    whole = time.perf_counter() - t0
    fig = json.loads((out / "manifest.json").read_text())["figures"]
    digest = _cli(tree, ["digest", str(out)]).stdout.split()[0]
    return {"loop_s": float(fig["run_s"]), "whole_s": whole, "digest": digest}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, required=True, help="a worktree of the base commit")
    ap.add_argument("--new", type=Path, default=HERE, help="the tree to compare (default: this one)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    a = ap.parse_args()
    trees = {"base": a.base.resolve(), "new": a.new.resolve()}
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        n = 0
        for case in a.cases:
            res = {"base": [], "new": []}
            for name, tree in trees.items():  # warm-up: numba's cache of each tree
                n += 1
                one(tree, case, Path(tmp) / f"w{n}")
            for rep in range(a.reps):
                order = ("base", "new") if rep % 2 == 0 else ("new", "base")
                for name in order:
                    n += 1
                    res[name].append(one(trees[name], case, Path(tmp) / f"r{n}"))
            want = res["base"][0]["digest"]
            same = all(r["digest"] == want for rs in res.values() for r in rs)
            ok &= same
            print(f"\n{case}: {' '.join(CASES[case])}")
            for key in ("loop_s", "whole_s"):
                b = [r[key] for r in res["base"]]
                w = [r[key] for r in res["new"]]
                print(f"  {key:8s} base min {min(b):8.3f} med {statistics.median(b):8.3f}   new min {min(w):8.3f} "
                      f"med {statistics.median(w):8.3f}   ratio min {min(b) / min(w):5.2f}x "
                      f"med {statistics.median(b) / statistics.median(w):5.2f}x")
            print(f"  digests {'equal' if same else 'DIFFER'}: {want[:16]}... ({len(res['base']) * 2} runs)")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

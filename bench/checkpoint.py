"""Checkpoint size, time to write and time to restore, for one run directory with checkpoints.

    python bench/checkpoint.py RUN

Prints the checkpoints the manifest recorded (simulated time, bytes, seconds to write), then, on a
copy of the run (the run itself is not touched), the time to read and decode the newest checkpoint
of each LP and to restore it into an LP freshly built by the run's factory - against building the
LP alone. Figures go to bench/RESULTS.md, "Checkpoint and resume (issue 12)".
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(run: str) -> None:
    from atleus_dist.run.checkpoint import read_lp_state
    from atleus_dist.run.checkpoint_resume import plan_resume

    m = json.loads((Path(run) / "manifest.json").read_text())
    print(f"run {run}: status {m['status']}, every {m['checkpoint']['every_ps']:,} ps, "
          f"{m['checkpoint']['n_lps']} LP(s), partition {m['checkpoint']['partition']}")
    for c in m.get("checkpoints", []):
        print(f"  {c['name']}  sim {c['sim_time_ps'] / 1e9:9.3f} ms  {c['bytes'] / 1e6:8.2f} MB  "
              f"write {c['write_s']:.3f} s")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "run"
        shutil.copytree(run, copy)
        # the copy looks like a stopped run (a complete one has nothing to resume; a killed one's
        # process is gone, which resume checks by its pid)
        m2 = json.loads((copy / "manifest.json").read_text())
        m2["checkpoint"]["pid"] = -1
        if m2["status"] == "complete":
            m2["status"] = "interrupted"
        (copy / "manifest.json").write_text(json.dumps(m2))
        t0 = time.perf_counter()
        rs = plan_resume(copy)
        t_plan = time.perf_counter() - t0
        ckpt = rs.spec.lp_factory.ckpt_dir
        for lp in range(rs.spec.n_lps):
            t0 = time.perf_counter()
            rec = read_lp_state(ckpt, lp)
            t_read = time.perf_counter() - t0
            t0 = time.perf_counter()
            obj = rs.spec.lp_factory.inner(lp, None)
            t_build = time.perf_counter() - t0
            t0 = time.perf_counter()
            obj.restore_state(rec["state"], rec["arrays"])
            t_restore = time.perf_counter() - t0
            print(f"  LP {lp}: read+decode {t_read:.3f} s, build {t_build:.3f} s, restore {t_restore:.3f} s "
                  f"({len(rec['arrays'])} arrays)")
        print(f"  checks and rebuild of the run (plan_resume, incl. compiling the step): {t_plan:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1])

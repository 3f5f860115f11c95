"""Crash safety of the local backend: SIGKILL mid-run leaves readable batches and no 'complete'."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atleus_dist.results import read_manifest, read_table

LONG_RUN = ["phold", "--lps", "4", "--objects", "256", "--end-ps", "10000000000", "--trace",
            "--backend", "local", "--workers", "2", "--quiet"]


def _start(out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "atleus_dist.cli", *LONG_RUN, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.extend(int(x) for x in text)
    return out


def _wait_for_batches(out: Path, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        files = list((out / "phold_events").glob("lp*.arrows")) if (out / "phold_events").exists() else []
        if len(files) == 4 and all(f.stat().st_size > 20_000 for f in files):
            return
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.2)
    pytest.fail("the run wrote no batches in time")


def _check_readable(out: Path) -> int:
    table = read_table(out, "phold_events")
    assert table.num_rows > 0
    return table.num_rows


@pytest.mark.slow
def test_sigkill_of_the_run_leaves_readable_batches_and_running_manifest(tmp_path):
    out = tmp_path / "killed"
    proc = _start(out)
    _wait_for_batches(out, proc)
    workers = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # workers notice the coordinator is gone and stop by themselves
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{w}").exists() and "zombie" not in Path(f"/proc/{w}/status").read_text().lower()
              for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert read_manifest(out)["status"] == "running"
    _check_readable(out)


@pytest.mark.slow
def test_sigkill_of_a_worker_marks_the_run_failed(tmp_path):
    out = tmp_path / "worker-killed"
    proc = _start(out)
    _wait_for_batches(out, proc)
    workers = _children(proc.pid)
    # the spawn start method adds a resource-tracker child; kill an LP worker
    victims = [w for w in workers if "atleus_dist" in Path(f"/proc/{w}/cmdline").read_text()
               or "multiprocessing.spawn" in Path(f"/proc/{w}/cmdline").read_text().replace("\0", " ")]
    assert victims, workers
    os.kill(victims[-1], signal.SIGKILL)
    code = proc.wait(timeout=60)
    err = proc.stderr.read().decode()
    assert code != 0
    assert "simulation failed: SimulationAborted" in err and "Traceback" not in err
    man = read_manifest(out)
    assert man["status"] == "failed" and "SimulationAborted" in man["error"]
    _check_readable(out)

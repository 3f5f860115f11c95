"""Faults of a local run: SIGTERM, SIGINT, SIGHUP and SIGKILL of the run at random moments, and
SIGKILL of a worker.

Whatever the moment: the manifest is ``complete`` only if the run finished (and then its digest is
the uninterrupted run's), TERM/INT/HUP make it ``interrupted`` with the signal and exit 128+signal
with one line on stderr and no traceback; 2 s later no process of the run is alive, its
shared-memory directory is gone, and every stream reads up to its last whole batch. After SIGKILL
of the parent the workers die within a second and write nothing more.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atleus_dist.backends import shm
from atleus_dist.results import read_manifest, read_table
from atleus_dist.results.verify import verify_run

LONG_RUN = ["phold", "--lps", "4", "--objects", "256", "--end-ps", "10000000000", "--trace",
            "--backend", "local", "--workers", "2", "--quiet"]
# a run of a few seconds, so that a signal at a random moment sometimes arrives after it finished
SHORT_RUN = ["phold", "--lps", "4", "--objects", "64", "--end-ps", "5000000", "--trace",
             "--backend", "local", "--workers", "2", "--quiet"]


def _start(args: list[str], out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "atleus_dist.cli", *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _children(pid: int) -> set[int]:
    out = set()
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out.update(int(x) for x in (task / "children").read_text().split())
    except OSError:
        pass
    return out


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


def _segments(pid: int) -> list[str]:
    return [p for p in os.listdir(shm.shm_root()) if p.startswith(f"atleus-{pid}-")]


def _wait_until(cond, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def _watch(proc: subprocess.Popen, out: Path, delay_s: float) -> set[int]:
    """Wait for the run's manifest, then ``delay_s`` more, collecting the run's processes."""
    kids: set[int] = set()
    assert _wait_until(lambda: (out / "manifest.json").exists() or proc.poll() is not None, 60)
    deadline = time.monotonic() + delay_s
    while time.monotonic() < deadline and proc.poll() is None:
        kids |= _children(proc.pid)
        time.sleep(0.02)
    return kids | _children(proc.pid)


def _check_after(proc: subprocess.Popen, out: Path, kids: set[int]) -> None:
    assert _wait_until(lambda: not any(_alive(k) for k in kids), 2.0), \
        [Path(f"/proc/{k}/cmdline").read_text() for k in kids if _alive(k)]
    assert _wait_until(lambda: not _segments(proc.pid), 2.0), _segments(proc.pid)
    v = verify_run(out)
    assert v["bad"] == 0, v  # every stream parses up to its last whole batch
    for name, t in v["tables"].items():
        if t["rows"]:  # a stream killed before its first batch holds no schema yet: nothing to read
            assert read_table(out, name).num_rows == t["rows"]


@pytest.fixture(scope="module")
def reference_digest(tmp_path_factory):
    from atleus_dist.cli import main
    from atleus_dist.results import digest

    out = tmp_path_factory.mktemp("ref") / "run"
    args = [a if a != "local" else "inline" for a in SHORT_RUN]
    assert main([*args, "--out", str(out)]) == 0
    return digest(out)[0]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL])
def test_a_signal_at_a_random_moment(tmp_path, reference_digest, sig):
    from atleus_dist.results import digest

    rng = random.Random(sig * 7919)
    seen = []
    for trial in range(3):
        out = tmp_path / f"run{trial}"
        proc = _start(SHORT_RUN, out)
        kids = _watch(proc, out, rng.uniform(0.0, 3.5))
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
        err = proc.stderr.read().decode()
        assert "Traceback" not in err, err
        _check_after(proc, out, kids)
        status = read_manifest(out)["status"]
        seen.append(status)
        if status == "complete":  # it finished before the signal: then it is the whole run
            assert digest(out)[0] == reference_digest
            continue
        assert code != 0
        if sig == signal.SIGKILL:
            assert status == "running"
            continue
        man = read_manifest(out)
        assert status == "interrupted" and man["signal"] == sig.name and "sim_time_ps" in man, man
        assert code == 128 + sig, (code, err)
        assert len(err.strip().splitlines()) == 1 and sig.name in err, err
        assert not list(out.glob("*.parquet"))
    assert set(seen) != {"complete"}, seen  # the signals did land mid-run


@pytest.mark.slow
def test_sigkill_of_the_run_stops_its_workers_at_once(tmp_path):
    out = tmp_path / "killed"
    proc = _start(LONG_RUN, out)
    assert _wait_until(lambda: len(list(out.glob("phold_events/lp*.arrows"))) == 4
                       and all(f.stat().st_size > 20_000 for f in out.glob("phold_events/lp*.arrows")), 60), \
        proc.stderr.read().decode() if proc.poll() is not None else "no batches in time"
    kids = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    sizes = {f: f.stat().st_size for f in out.glob("phold_events/lp*.arrows")}
    assert _wait_until(lambda: not any(_alive(k) for k in kids), 1.0)  # parent-death signal
    # the workers are gone (exited; zombies write nothing): what the files hold now is final
    assert {f: f.stat().st_size for f in out.glob("phold_events/lp*.arrows")} == sizes  # nothing written since
    _check_after(proc, out, kids)
    assert read_manifest(out)["status"] == "running"
    assert read_table(out, "phold_events").num_rows > 0


@pytest.mark.slow
def test_sigkill_of_a_worker_marks_the_run_failed(tmp_path):
    out = tmp_path / "worker-killed"
    proc = _start(LONG_RUN, out)
    assert _wait_until(lambda: len(list(out.glob("phold_events/lp*.arrows"))) == 4, 60)
    kids = _children(proc.pid)
    victims = [w for w in kids if "multiprocessing.spawn" in Path(f"/proc/{w}/cmdline").read_text().replace("\0", " ")
               and "resource_tracker" not in Path(f"/proc/{w}/cmdline").read_text()]
    assert victims, kids
    os.kill(victims[-1], signal.SIGKILL)
    code = proc.wait(timeout=60)
    err = proc.stderr.read().decode()
    assert code == 1
    assert "simulation failed: SimulationAborted" in err and "Traceback" not in err
    man = read_manifest(out)
    assert man["status"] == "failed" and "SimulationAborted" in man["error"]
    _check_after(proc, out, kids)


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [0.1, 0.6, 1.5])
def test_ctrl_c_to_the_whole_process_group_prints_one_line(tmp_path, delay_s):
    """A terminal's Ctrl-C reaches the parent and every worker: still one line, no traceback."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "atleus_dist.cli", *SHORT_RUN, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    kids = _watch(proc, out, delay_s)
    os.killpg(proc.pid, signal.SIGINT)
    code = proc.wait(timeout=30)
    err = proc.stderr.read().decode()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    _check_after(proc, out, kids)
    if read_manifest(out)["status"] != "complete":
        assert code == 130 and read_manifest(out)["status"] == "interrupted"

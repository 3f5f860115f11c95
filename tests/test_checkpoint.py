"""Checkpoint and resume (issue 12 item 5): a run with ``--checkpoint-every-ps`` killed (SIGKILL)
after its first checkpoint, or stopped with SIGTERM, is resumed - on another backend and worker
count - and its digest is the uninterrupted run's; a corrupt or foreign checkpoint and bad flag
values are refused with one line naming the file or flag (exit 2); the state walk keeps arrays'
identity and refuses what it cannot save.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from atleus_dist.kernel.snapshot import SnapshotError, decode, encode, object_state, restore_object

# tier LPs (the stub transport, 5 LPs): ~2-3 s of simulation, 2 ms of simulated time apart
STUB = ["run", "--transport", "stub", "--set", "scenario.seq=64", "--quiet"]
STUB_EVERY = "2000000000"
# a chip step on the flit-level NoC, one LP (the planner's pick): ~1-2 s, 0.57 ms simulated
NOC = ["run", "roberta-base-lora32-s512", "--set", "scenario.seq=8", "--set", "scenario.mode=inference", "--quiet"]
NOC_EVERY = "50000000"
# the NoC alone (synthetic traffic), cut in two regions on compiled rounds: ~22k cycles
NOC_ONLY = ["noc", "--mesh", "4x4x4", "--traffic", "uniform", "--rate", "0.06", "--warmup", "1000", "--measure",
            "20000", "--drain", "1000", "--seed", "3", "--partition", "blocks:2x1", "--quiet"]
NOC_ONLY_EVERY = "2000000"


def _start(args: list[str], out: Path, new_run: bool = True) -> subprocess.Popen:
    """``new_run``: ``args`` start a run into ``out`` (else they act on it: ``resume``)."""
    return subprocess.Popen([sys.executable, "-m", "atleus_dist.cli", *args, *(["--out", str(out)] if new_run else [])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))


def _manifest(out: Path) -> dict:
    try:
        return json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def _stop_after_first_checkpoint(args: list[str], out: Path, sig: int, count: int = 1, new_run: bool = True) -> dict:
    """Start a run (``new_run``; else e.g. a resume of ``out``), wait until its manifest lists
    ``count`` checkpoints, send ``sig``; the manifest after."""
    proc = _start(args, out, new_run)
    deadline = time.monotonic() + 120
    try:
        while len(_manifest(out).get("checkpoints", ())) < count:
            assert proc.poll() is None, f"the run ended before its first checkpoint: {proc.stderr.read()!r}"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.01)
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    m = _manifest(out)
    assert m["status"] != "complete", "the run finished before the signal; the test proves nothing"
    return m


@pytest.fixture(scope="module")
def stub_reference(tmp_path_factory) -> str:
    """Digest of the uninterrupted stub run, without checkpoints."""
    out = tmp_path_factory.mktemp("ref") / "stub"
    proc = subprocess.run([sys.executable, "-m", "atleus_dist.cli", *STUB, "--backend", "inline",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "atleus_dist.cli", "digest", str(out), "--json"],
                          capture_output=True, text=True, timeout=120)
    return json.loads(proc.stdout)["digest"]


@pytest.mark.parametrize("run_on, resume_on", [
    (["--backend", "local", "--workers", "2"], ["--backend", "inline", "--workers", "1"]),
    (["--backend", "inline", "--workers", "1"], ["--backend", "local", "--workers", "3"]),
])
def test_killed_run_resumes_on_other_backend_and_workers(tmp_path, cli, digest_of, stub_reference, run_on, resume_on):
    out = tmp_path / "run"
    m = _stop_after_first_checkpoint([*STUB, *run_on, "--checkpoint-every-ps", STUB_EVERY], out, signal.SIGKILL)
    assert m["status"] == "running"  # SIGKILL: nothing could rewrite it
    first = m["checkpoints"][0]
    assert first["sim_time_ps"] == int(STUB_EVERY) and first["bytes"] > 0 and first["write_s"] > 0
    code, data, err = cli("resume", str(out), *resume_on, "--quiet", "--json")
    assert code == 0, err
    assert data["resumed_from_ps"] >= int(STUB_EVERY)
    assert digest_of(out) == stub_reference
    man = _manifest(out)
    assert man["status"] == "complete" and len(man["resumes"]) == 1
    assert man["resumes"][0]["backend"] == resume_on[1] and man["resumes"][0]["workers"] == int(resume_on[3])
    # the checkpoints of the resumed part are recorded too, the two newest kept on disk
    assert len(man["checkpoints"]) > len(m["checkpoints"])
    assert len(list((out / "checkpoints").glob("ckpt-*"))) == 2
    code, _, err = cli("verify", str(out))
    assert code == 0, err


@pytest.mark.ray
@pytest.mark.slow
def test_killed_run_resumes_on_ray(tmp_path, cli, digest_of, stub_reference):
    out = tmp_path / "run"
    _stop_after_first_checkpoint([*STUB, "--backend", "inline", "--checkpoint-every-ps", STUB_EVERY], out,
                                 signal.SIGKILL)
    code, _, err = cli("resume", str(out), "--backend", "ray", "--workers", "2", "--quiet")
    assert code == 0, err
    assert digest_of(out) == stub_reference


def test_interrupted_run_resumes(tmp_path, cli, digest_of, stub_reference):
    out = tmp_path / "run"
    m = _stop_after_first_checkpoint([*STUB, "--backend", "local", "--workers", "2", "--checkpoint-every-ps",
                                      STUB_EVERY], out, signal.SIGTERM)
    assert m["status"] == "interrupted" and m["signal"] == "SIGTERM"
    # the time reached is the frontier of the last round, at least the last checkpoint
    assert m["sim_time_ps"] >= m["checkpoints"][-1]["sim_time_ps"]
    code, _, err = cli("resume", str(out), "--quiet")
    assert code == 0, err
    assert digest_of(out) == stub_reference
    assert "signal" not in _manifest(out) and _manifest(out)["resumes"][0]["previous_status"] == "interrupted"


def test_killed_noc_run_resumes(tmp_path, cli, digest_of):
    ref = tmp_path / "ref"
    code, _, err = cli(*NOC, "--backend", "inline", "--out", str(ref))
    assert code == 0, err
    out = tmp_path / "run"
    m = _stop_after_first_checkpoint([*NOC, "--backend", "inline", "--checkpoint-every-ps", NOC_EVERY], out,
                                     signal.SIGKILL)
    assert m["partition"]["n_lps"] == 1
    code, _, err = cli("resume", str(out), "--backend", "local", "--quiet")
    assert code == 0, err
    assert digest_of(out) == digest_of(ref)


@pytest.fixture(scope="module")
def noc_only_reference_run(tmp_path_factory) -> Path:
    """The uninterrupted NOC_ONLY run, on the reference backend."""
    out = tmp_path_factory.mktemp("ref") / "noc"
    proc = subprocess.run([sys.executable, "-m", "atleus_dist.cli", *NOC_ONLY, "--backend", "inline", "--workers",
                           "1", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def noc_only_reference(noc_only_reference_run) -> str:
    out = noc_only_reference_run
    proc = subprocess.run([sys.executable, "-m", "atleus_dist.cli", "digest", str(out), "--json"],
                          capture_output=True, text=True, timeout=120)
    return json.loads(proc.stdout)["digest"]


@pytest.mark.parametrize("resume_on, compiled", [(["--backend", "inline", "--workers", "1"], None),
                                                 (["--backend", "local", "--workers", "2"], True)])
def test_killed_noc_only_run_on_compiled_rounds_resumes(tmp_path, cli, digest_of, noc_only_reference,
                                                        noc_only_reference_run, resume_on, compiled):
    """Checkpoints of compiled rounds (segments ending at each boundary, mailboxes drained into
    the regions) resume on the generic path of another backend and worker count, and on
    compiled rounds again."""
    out = tmp_path / "run"
    m = _stop_after_first_checkpoint([*NOC_ONLY, "--backend", "local", "--workers", "2", "--checkpoint-every-ps",
                                      NOC_ONLY_EVERY], out, signal.SIGKILL)
    assert m["partition"]["n_lps"] == 2
    code, data, err = cli("resume", str(out), *resume_on, "--quiet", "--json")
    assert code == 0, err
    assert data["resumed_from_ps"] >= int(NOC_ONLY_EVERY)
    man = _manifest(out)
    assert man["figures"].get("compiled_rounds") is compiled
    assert digest_of(out) == noc_only_reference
    # windows rows number rounds from the run's start: never back to 0 after a checkpoint or a resume
    import pyarrow.parquet as pq

    w = pq.read_table(out / "windows.parquet", columns=["lp", "horizon_ps", "round"])
    lp, hz, rnd = (w.column(c).to_numpy() for c in ("lp", "horizon_ps", "round"))
    for k in np.unique(lp):
        order = np.lexsort((rnd[lp == k], hz[lp == k]))
        assert (np.diff(rnd[lp == k][order]) > 0).all(), (rnd[lp == k][order], hz[lp == k][order])
    before = man["resumes"][-1]["rounds_before"]
    assert before > 0 and rnd.max() > before
    # figures count the resumed part, on either path: with what came before, the whole run's events
    total = man["resumes"][-1]["events_before"] + man["figures"]["events"]
    assert total == _manifest(noc_only_reference_run)["figures"]["events"]


@pytest.fixture(scope="module")
def killed_pair(tmp_path_factory):
    """Two killed stub runs (copies are made per test)."""
    base = tmp_path_factory.mktemp("killed")
    runs = []
    for name in ("a", "b"):
        out = base / name
        _stop_after_first_checkpoint([*STUB, "--backend", "inline", "--checkpoint-every-ps", STUB_EVERY], out,
                                     signal.SIGKILL)
        runs.append(out)
    return runs


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _newest(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("ckpt-*"))[-1]


def test_corrupt_checkpoint_refused(tmp_path, cli, killed_pair):
    run = _copy(killed_pair[0], tmp_path / "run")
    npz = next(_newest(run).glob("lp*.npz"))
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    code, _, err = cli("resume", str(run), "--quiet")
    assert code == 2 and str(npz) in err and "SHA-256" in err and len(err.strip().splitlines()) == 1, err
    (_newest(run) / "checkpoint.json").write_text("{not json")
    code, _, err = cli("resume", str(run), "--quiet")
    assert code == 2 and "checkpoint.json" in err and len(err.strip().splitlines()) == 1, err


def test_foreign_checkpoint_refused(tmp_path, cli, killed_pair):
    a = _copy(killed_pair[0], tmp_path / "a")
    b = killed_pair[1]
    shutil.rmtree(a / "checkpoints")
    shutil.copytree(b / "checkpoints", a / "checkpoints")
    code, _, err = cli("resume", str(a), "--quiet")
    assert code == 2 and "belongs to another run" in err and "checkpoint.json" in err, err


def test_tampered_stream_refused(tmp_path, cli, killed_pair):
    run = _copy(killed_pair[0], tmp_path / "run")
    stream = run / "windows" / "lp000.arrows"
    data = bytearray(stream.read_bytes())
    data[100] ^= 0xFF  # inside the part the checkpoint recorded
    stream.write_bytes(bytes(data))
    code, _, err = cli("resume", str(run), "--quiet")
    assert code == 2 and str(stream) in err and "differs from the checkpoint" in err, err


def test_resume_from_an_older_checkpoint(tmp_path, cli, digest_of, stub_reference):
    run = tmp_path / "run"
    _stop_after_first_checkpoint([*STUB, "--backend", "inline", "--checkpoint-every-ps", STUB_EVERY], run,
                                 signal.SIGKILL, count=2)
    names = sorted(p.name for p in (run / "checkpoints").glob("ckpt-*"))
    assert len(names) == 2
    code, _, err = cli("resume", str(run), "--checkpoint", names[0], "--quiet")
    assert code == 0, err
    assert digest_of(run) == stub_reference


def test_half_written_checkpoint_ignored(tmp_path, cli, digest_of, killed_pair, stub_reference):
    """A run killed while writing a checkpoint leaves only its ``.tmp-*`` directory: never read."""
    run = _copy(killed_pair[0], tmp_path / "run")
    tmp = run / "checkpoints" / ".tmp-9000000000000000000"
    tmp.mkdir()
    (tmp / "lp000.state").write_bytes(b"half")
    code, _, err = cli("resume", str(run), "--quiet")
    assert code == 0, err
    assert not tmp.exists() and digest_of(run) == stub_reference


def test_live_run_not_resumed(tmp_path, cli):
    out = tmp_path / "run"
    proc = _start([*STUB, "--backend", "inline", "--checkpoint-every-ps", STUB_EVERY], out)
    try:
        deadline = time.monotonic() + 120
        while not _manifest(out).get("checkpoints") and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None and _manifest(out).get("checkpoints"), "no checkpoint while the run was alive"
        code, _, err = cli("resume", str(out), "--quiet")
        assert code == 2 and "still running" in err, err
    finally:
        proc.kill()
        proc.wait()


def test_resume_refusals(tmp_path, cli, killed_pair):
    run = _copy(killed_pair[0], tmp_path / "run")
    # the stub transport has one partition (a tier per LP): another is refused in one line
    code, _, err = cli("resume", str(run), "--partition", "single", "--quiet")
    assert code == 2 and "--partition" in err and "by-tier" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = cli("resume", str(run), "--checkpoint", "ckpt-nope", "--quiet")
    assert code == 2 and "--checkpoint" in err, err
    plain = tmp_path / "plain"
    code, _, err = cli("run", "--transport", "stub", "--set", "scenario.seq=8", "--quiet", "--backend", "inline",
                       "--out", str(plain))
    assert code == 0, err
    code, _, err = cli("resume", str(plain), "--quiet")
    assert code == 2 and "complete" in err, err
    m = json.loads((plain / "manifest.json").read_text())
    (plain / "manifest.json").write_text(json.dumps(dict(m, status="interrupted")))
    code, _, err = cli("resume", str(plain), "--quiet")
    assert code == 2 and "--checkpoint-every-ps" in err, err


@pytest.mark.parametrize("value", ["0", "-5", "abc", "1.5"])
def test_bad_interval_refused(tmp_path, cli, value):
    out = tmp_path / "x"
    code, _, err = cli("run", "--transport", "stub", "--set", "scenario.seq=8", "--quiet",
                       "--checkpoint-every-ps", value, "--out", str(out))
    assert code == 2 and "--checkpoint-every-ps" in err and len(err.strip().splitlines()) == 1, err
    assert not (out / "manifest.json").exists()


def test_checkpoints_not_on_ray(tmp_path, cli):
    code, _, err = cli("run", "--transport", "stub", "--set", "scenario.seq=8", "--quiet", "--backend", "ray",
                       "--checkpoint-every-ps", "1000", "--out", str(tmp_path / "x"))
    assert code == 2 and "--checkpoint-every-ps" in err, err


# --- the state walk -----------------------------------------------------------------------------

class _Inner:
    def __init__(self, shared):
        self.shared = shared
        self.grown = np.zeros(2, dtype=np.int64)


class _Model:
    snapshot_skip = ("sink",)

    def __init__(self):
        self.shared = np.zeros(4, dtype=np.int64)
        self.inner = _Inner(self.shared)
        self.heap = [(3, 0, (1, 2)), (5, 1, 7)]
        self.table = {(1, 2): [3, 4], 7: {8, 9}}
        self.exact = [Fraction(1, 3)]
        self.big = 1 << 80
        self.scalar = np.int64(-3)
        self.sink = object()
        self.on_done = self.method

    def method(self):
        return None


def test_state_walk_round_trip():
    m = _Model()
    m.shared[:] = [1, 2, 3, 4]
    m.inner.grown = np.arange(6)  # replaced since construction: restored as a new array
    m.heap.append((9, 2, 3))
    arrays: list = []
    tree = object_state(m, arrays)
    assert len(arrays) == 2  # the shared array once
    tree2 = decode(encode(tree))
    fresh = _Model()
    shared_before = fresh.shared
    restore_object(fresh, tree2, [np.array(a) for a in arrays])
    assert fresh.shared is shared_before and fresh.inner.shared is fresh.shared  # in place, aliases kept
    assert fresh.shared.tolist() == [1, 2, 3, 4] and fresh.inner.grown.tolist() == list(range(6))
    assert fresh.heap == m.heap and isinstance(fresh.heap[0], tuple) and isinstance(fresh.heap[0][2], tuple)
    assert fresh.table == m.table and fresh.exact == m.exact and fresh.big == m.big
    assert fresh.scalar == m.scalar and fresh.scalar.dtype == np.int64


def test_state_walk_refuses_what_it_cannot_save():
    m = _Model()
    m.lock = open(os.devnull)  # noqa: SIM115 - an open file is not state a checkpoint can hold
    try:
        with pytest.raises(SnapshotError, match="lock"):
            object_state(m, [])
    finally:
        m.lock.close()
    with pytest.raises(SnapshotError):
        decode(b"\xc1garbage")
    m = _Model()
    m.view = m.shared[1:]
    with pytest.raises(SnapshotError, match="view"):
        object_state(m, [])
    with pytest.raises(SnapshotError, match="restore into"):
        restore_object(_Inner(None), object_state(_Model(), []), [])

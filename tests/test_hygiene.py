"""Process hygiene of the local backend: stale shared-memory directories of dead runs are removed,
never those of a live run; a run's directory is removed when its owner dies, even by SIGKILL.
Every case uses its own temporary root, never the machine's /dev/shm."""

from __future__ import annotations

import mmap
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atleus_dist.backends import hygiene

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and prctl")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _segment(root, name, age_s: float = 0.0):
    path = root / name
    path.mkdir()
    (path / "control").write_bytes(b"\0" * 4096)
    if age_s:
        old = time.time() - age_s
        os.utime(path, (old, old))
    return path


def test_stale_segments_of_dead_owners_go_live_ones_stay(tmp_path):
    dead = _segment(tmp_path, f"atleus-{_dead_pid()}-abc")
    live = _segment(tmp_path, f"atleus-{os.getppid()}-def")  # the test runner's parent is alive
    mine = _segment(tmp_path, f"atleus-{os.getpid()}-ghi")
    legacy_young = _segment(tmp_path, "atleus-xyz12345")
    legacy_old = _segment(tmp_path, "atleus-old12345", age_s=3600)
    other = _segment(tmp_path, "someone-else", age_s=3600)
    removed = hygiene.remove_stale_segments(str(tmp_path))
    assert sorted(removed) == sorted([str(dead), str(legacy_old)])
    assert all(p.exists() for p in (live, mine, legacy_young, other))
    assert not dead.exists() and not legacy_old.exists()


def test_a_segment_still_mapped_by_a_process_is_never_removed(tmp_path):
    seg = _segment(tmp_path, f"atleus-{_dead_pid()}-orphan")  # owner gone, but an orphan maps it
    with open(seg / "control", "r+b") as fh, mmap.mmap(fh.fileno(), 4096):
        assert hygiene.remove_stale_segments(str(tmp_path)) == []
        assert seg.exists()
    assert hygiene.remove_stale_segments(str(tmp_path)) == [str(seg)]


def _exited(pid: int, timeout_s: float) -> bool:
    """Whether process ``pid`` (any process, not only a child) ends within ``timeout_s``: woken by
    its pidfd the moment it exits, no polling."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        if select.select([fd], [], [], timeout_s)[0]:
            return True
        return not hygiene.pid_alive(pid)  # a zombie: exited, not yet reaped by its parent
    finally:
        os.close(fd)


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(x) for x in (task / "children").read_text().split()]
    return out


def _watching(pid: int) -> bool:
    """Whether process ``pid`` holds a pidfd (the janitor has begun to wait for its owner)."""
    try:
        return any(os.readlink(f) == "anon_inode:[pidfd]" for f in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def test_the_janitor_removes_the_directory_when_its_owner_is_killed(tmp_path):
    code = ("import sys, time; from atleus_dist.backends import hygiene; "
            "print(hygiene.new_segment_dir(sys.argv[1]), flush=True); time.sleep(60)")
    owner = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    path = owner.stdout.readline().strip()  # the directory exists and its janitor was started
    assert os.path.basename(path).startswith(f"atleus-{owner.pid}-") and os.path.isdir(path)
    [janitor] = _children(owner.pid)
    # the janitor waits on its owner's pidfd (it also copes with an owner that died before it looked)
    deadline = time.monotonic() + 30.0
    while not _watching(janitor) and time.monotonic() < deadline:
        assert _exited(janitor, 0.01) is False, "the janitor ended before its owner"
    assert _watching(janitor)
    owner.kill()
    owner.wait()
    assert _exited(janitor, 30.0)  # it removes the directory, then exits
    assert not os.path.isdir(path)


def test_the_janitor_exits_once_the_owner_removed_the_directory(tmp_path):
    import shutil

    path = tmp_path / "atleus-self"
    path.mkdir()
    janitor = hygiene.start_janitor(str(path))
    assert janitor is not None and janitor.poll() is None
    shutil.rmtree(path)
    janitor.wait(timeout=30.0)


def test_a_worker_dies_with_its_parent(tmp_path):
    # parent spawns a child that arms the death signal, then the parent is SIGKILLed
    code = ("import os, subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import os, sys, time; "
            "from atleus_dist.backends import hygiene; hygiene.worker_started(int(sys.argv[1])); "
            "print(os.getpid(), flush=True); time.sleep(60)', str(os.getpid())], stdout=subprocess.PIPE, text=True)\n"
            "print(child.stdout.readline().strip(), flush=True)\ntime.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert os.path.exists(f"/proc/{child}")
    parent.kill()
    parent.wait()
    assert _exited(child, 30.0)  # the death signal: at once (a broken one: the child sleeps 60 s)

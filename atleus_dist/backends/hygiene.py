"""Process hygiene of the local backend: workers die with their parent, segments die with their run.

Three guarantees, each one call from the backend (and :func:`children_shielded` around a run):

- :func:`worker_started` (first line of a worker): the kernel sends the worker SIGKILL the moment
  its parent dies (``prctl(PR_SET_PDEATHSIG)``), so an orphan never writes another byte - not even
  the rest of a batch (a polled ppid check still runs in the barrier, for platforms without
  prctl). If the parent is already gone when the worker starts, the worker exits at once. SIGINT
  and SIGHUP are ignored: a terminal sends them to the whole process group, and it is the parent
  that decides how the run stops (it stops its workers itself). The run driver starts workers
  with both blocked, so they cannot strike while the worker is still importing; this unblocks them.
- :func:`new_segment_dir` (the run's shared-memory directory): named ``atleus-<owner pid>-*``, and
  watched by a janitor - a tiny process in its own session that removes the directory when the
  owner dies, however it dies (SIGKILL included), and exits by itself once the owner removed it.
- Before creating one, :func:`remove_stale_segments` removes directories of dead runs left by
  older versions or a killed janitor: a directory is removed only if its owner pid is not running
  and no process maps or holds a file in it; a directory without an owner pid in its name (older
  versions) also only if it is more than a minute old. A live run's directory is never touched.

Knows nothing of LPs, rounds or results; Linux specifics degrade to no-ops elsewhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

PREFIX = "atleus-"
TERMINAL_SIGNALS = {signal.SIGINT, signal.SIGHUP}  # what a terminal sends to a whole process group
PR_SET_PDEATHSIG = 1
LEGACY_MIN_AGE_S = 60.0  # a directory without an owner pid is left alone this long after its last change
_OWNED = re.compile(rf"^{PREFIX}(\d+)-")

# the janitor: wait for the owner (pidfd: woken the moment it exits) or for the directory to go
_JANITOR = r"""
import os, select, shutil, sys, time
path, owner = sys.argv[1], int(sys.argv[2])
try:
    fd = os.pidfd_open(owner)
except (AttributeError, OSError):
    fd = None
def owner_alive():
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{owner}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
while os.path.isdir(path):
    if fd is not None:
        if select.select([fd], [], [], 0.25)[0]:
            break
    elif not owner_alive():
        break
    else:
        time.sleep(0.25)
shutil.rmtree(path, ignore_errors=True)
"""


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def worker_started(parent_pid: int) -> None:
    """First call of a worker process (see the module docstring)."""
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # the run driver starts workers with them blocked
        signal.pthread_sigmask(signal.SIG_UNBLOCK, TERMINAL_SIGNALS)


@contextmanager
def children_shielded():
    """Processes the calling (main) thread starts inherit SIGINT and SIGHUP *blocked*, so a
    terminal's Ctrl-C, which reaches the whole process group, cannot kill a worker while it still
    imports (a traceback); :func:`worker_started` then ignores and unblocks them. The parent still
    gets them: a helper thread leaves them unblocked and receives them, and CPython runs the Python
    handler in the main thread. The multiprocessing resource tracker is started first, because
    its own start unblocks SIGINT (the same trick, bpo-33613) and would undo ours."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    done = threading.Event()
    threading.Thread(target=done.wait, name="atleus-signal-receiver", daemon=True).start()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, TERMINAL_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # while the receiver still runs: none pending here
        done.set()


@contextmanager
def signals_deferred():
    """Stop signals that arrive inside the block are acted on when it ends. Around starting
    workers: a handler that raised while ``Process.start()`` was still writing a spawned child's
    preparation data would leave the child an EOFError traceback on the shared stderr."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    sigs = TERMINAL_SIGNALS | {signal.SIGTERM}
    old = {sig: signal.signal(sig, lambda signum, _frame: got.append(signum)) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if got:
            signal.raise_signal(got[0])  # the run's own handler acts on it now


def owner_pid(name: str) -> int | None:
    m = _OWNED.match(name)
    return int(m.group(1)) if m else None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie - exited, not yet reaped - does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _paths_in_use(root: str) -> set[str] | None:
    """Directories under ``root`` that some process maps a file of or holds open (None: unknown)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    used = set()
    prefix = os.path.join(root, PREFIX)
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for line in (entry / "maps").read_text().splitlines():
                i = line.find(prefix)
                if i >= 0:
                    used.add(os.path.dirname(line[i:].split(" (deleted)")[0]))
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith(prefix):
                    used.add(os.path.dirname(target))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return used


def remove_stale_segments(root: str) -> list[str]:
    """Remove the segment directories of dead runs under ``root``; returns what was removed."""
    try:
        candidates = [e for e in os.scandir(root) if e.name.startswith(PREFIX) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    stale = []
    for e in candidates:
        pid = owner_pid(e.name)
        if pid is not None:
            if pid != os.getpid() and not pid_alive(pid):
                stale.append(e.path)
        else:
            try:
                if time.time() - e.stat(follow_symlinks=False).st_mtime > LEGACY_MIN_AGE_S:
                    stale.append(e.path)
            except OSError:
                continue
    if not stale:
        return []
    in_use = _paths_in_use(root)
    if in_use is None:  # cannot see other processes: only directories whose owner is known dead
        stale = [p for p in stale if owner_pid(os.path.basename(p)) is not None]
        in_use = set()
    removed = []
    for path in stale:
        if path in in_use:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def new_segment_dir(root: str) -> str:
    """Remove stale segments, create this run's directory and start its janitor; returns the path."""
    remove_stale_segments(root)
    path = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root)
    start_janitor(path)
    return path


def start_janitor(path: str) -> subprocess.Popen | None:
    """The process that removes ``path`` when this process dies (see the module docstring)."""
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _JANITOR, path, str(os.getpid())],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
    except OSError:
        return None  # the next run's stale-segment sweep is the fallback
    threading.Thread(target=proc.wait, name="atleus-janitor-reaper", daemon=True).start()
    return proc

"""Shared memory for the local backend: a control block and growable per-pair data buffers.

Plain ``mmap`` of files in ``/dev/shm`` (or a temp dir) rather than
``multiprocessing.shared_memory``, whose resource tracker in Python 3.11 unlinks segments that a
child merely attached to. A buffer grows by ``ftruncate`` + remap on the writer's side; a reader
remaps when the announced length exceeds its mapping.

Visibility relies on x86-64 total store order: a worker writes its data, then its lengths and
times, then its round counter; a reader that sees the counter sees everything written before it.
"""

from __future__ import annotations

import mmap
import os
import shutil
import tempfile

import numpy as np

from atleus_dist.backends import hygiene

INITIAL_BYTES = 1 << 20


def shm_root() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def make_dir() -> str:
    return hygiene.new_segment_dir(shm_root())  # atleus-<pid>-*: removed if the run dies; stale ones swept


def remove_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


class Mapped:
    """A file mapped into memory, remapped when it must grow (writer) or has grown (reader)."""

    def __init__(self, path: str, size: int = 0, create: bool = False) -> None:
        self.path = path
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        self.fd = os.open(path, flags, 0o600)
        if create:
            os.ftruncate(self.fd, max(size, mmap.PAGESIZE))
        self.size = os.fstat(self.fd).st_size
        self.mm = mmap.mmap(self.fd, self.size)

    def ensure(self, nbytes: int, grow: bool) -> None:
        if nbytes <= self.size:
            return
        if grow:
            new = max(nbytes, 2 * self.size)
            os.ftruncate(self.fd, new)
        self.mm.close()
        self.size = os.fstat(self.fd).st_size
        self.mm = mmap.mmap(self.fd, self.size)

    def write(self, data: bytes) -> None:
        self.ensure(len(data), grow=True)
        self.mm[: len(data)] = data

    def read(self, nbytes: int) -> bytes:
        self.ensure(nbytes, grow=False)
        return self.mm[:nbytes]

    def close(self) -> None:
        self.mm.close()
        os.close(self.fd)


class Control:
    """Round counters, abort flag, next-event times and statistics, as int64/float64 views."""

    STAT_FIELDS = ("rounds", "events", "messages", "work_s", "sync_s", "end_time_ps")

    def __init__(self, path: str, n_workers: int, n_lps: int, create: bool = False) -> None:
        w, n = n_workers, n_lps
        self.layout = {
            "abort": (1,),
            "arrive": (w,),
            "local_next": (2, n),
            "local_out": (2, n),  # LogicalProcess.next_output_time
            "sent_min": (2, w, n),
            "datalen": (2, w, w),
            "events": (2, w),
            "work": (2, w),  # each worker's LPGroup.work_done() (ops done), -1 if it counts none
        }
        ints = sum(int(np.prod(s)) for s in self.layout.values())
        floats = w * len(self.STAT_FIELDS)
        self.file = Mapped(path, 8 * (ints + floats), create=create)
        buf = self.file.mm
        off = 0
        for name, shape in self.layout.items():
            count = int(np.prod(shape))
            setattr(self, name, np.ndarray(shape, dtype=np.int64, buffer=buf, offset=off))
            off += 8 * count
        self.stats = np.ndarray((w, len(self.STAT_FIELDS)), dtype=np.float64, buffer=buf, offset=off)
        if create:
            self.arrive[:] = -1
            self.abort[0] = 0

    def close(self) -> None:
        for name in self.layout:
            setattr(self, name, None)
        self.stats = None
        self.file.close()

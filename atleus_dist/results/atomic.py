"""The one way a file is replaced whole: a reader sees the old file or the new one, never a part,
and after a crash (power loss included) the name holds one of them.

:func:`replacing` yields a temporary path in the same directory (``.<name>.tmp``: a rename within
one file system is atomic, and the dot keeps it out of every glob of result files); when the block
ends the file's data is fsynced, it is renamed over ``path`` and the directory is fsynced (the
rename itself is only durable once the directory is). If the block raises, the temporary file is
removed and ``path`` is untouched. :func:`write_bytes`, :func:`write_text` and :func:`write_json`
are the common cases. Used by every writer of a whole file: the manifest, Parquet tables, close
records, checkpoints' metadata and the sweep table.

Knows nothing of runs, tables or formats.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def temp_path(path: str | os.PathLike) -> Path:
    """Where :func:`replacing` writes ``path`` before the rename."""
    p = Path(path)
    return p.with_name(f".{p.name}.tmp")


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file or a directory by name (a read-only descriptor flushes its data on Linux)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` durably (see the module
    docstring), on an exception it is removed."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, data: Any, **dumps: Any) -> None:
    """``data`` as JSON text with a final newline (``dumps``: keyword arguments of ``json.dumps``)."""
    write_text(path, json.dumps(data, **dumps) + "\n")

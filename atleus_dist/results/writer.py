"""Per-LP Arrow IPC *stream* writers: one file per LP per table, flushed as the run goes.

A stream (not the random-access file format) is used on purpose: every record batch written and
flushed stays readable if the process is killed, because a stream needs no footer. The schema of
each table is taken from its first write; its metadata carries the schema version, whether the
table is a model *result* (covered by the digest, partition-independent) or *execution* data
(rounds, wall-clock; depends on the partition), and which columns hold wall-clock values.
Metadata values that are not strings (code tables such as ``kind_codes``) are stored as JSON, so
any tool can read them.

The bytes are hashed as they are written; ``close`` writes the stream's *close record* (rows,
batches, bytes, SHA-256) beside it as ``lpNNN.arrows.done``. At completion the manifest takes
these records over (``seal.seal_run``), so a reader can tell the file it reads from the one the
writer closed. A stream without a close record was never closed (its writer was killed or stopped).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

import atleus_dist.results.atomic as atomic

SCHEMA_VERSION = "1"
TABLE_KINDS = ("result", "execution")


CLOSE_RECORD_SUFFIX = ".done"


def lp_file(run_dir: str | os.PathLike, table: str, lp: int) -> Path:
    return Path(run_dir) / table / f"lp{lp:03d}.arrows"


def close_record_path(stream: str | os.PathLike) -> Path:
    return Path(f"{stream}{CLOSE_RECORD_SUFFIX}")


def meta_value(value) -> str:
    """A schema-metadata value: strings as they are, anything else as JSON (never a Python repr)."""
    return value if isinstance(value, str) else json.dumps(value, default=_plain)


def _plain(value):
    return value.item() if hasattr(value, "item") else str(value)  # numpy scalars


class _HashingFile:
    """A write-only file that hashes what it writes: each write goes to the OS at once (a kill
    loses nothing already written), and the digest is of exactly those bytes."""

    def __init__(self, path: Path, keep_bytes: int | None = None, skip: int = 0) -> None:
        """``keep_bytes``: continue an existing file after its first ``keep_bytes`` (the rest is
        cut off; the hash covers the kept prefix); ``skip``: drop the first ``skip`` bytes written
        (a continued stream's writer repeats the schema the file already starts with)."""
        if keep_bytes is None:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            self.sha256 = hashlib.sha256()
            self.nbytes = 0
        else:
            self._fd = os.open(path, os.O_RDWR)
            os.ftruncate(self._fd, keep_bytes)
            self.sha256 = hashlib.sha256()
            with open(path, "rb") as fh:
                left = keep_bytes
                while left > 0:
                    chunk = fh.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    self.sha256.update(chunk)
                    left -= len(chunk)
            os.lseek(self._fd, keep_bytes, os.SEEK_SET)
            self.nbytes = keep_bytes
        self._skip = skip
        self.closed = False

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        n_in = len(view)
        if self._skip:
            cut = min(self._skip, len(view))
            self._skip -= cut
            view = view[cut:]
            if not view:
                return n_in
        self.sha256.update(view)
        self.nbytes += len(view)
        while view:
            view = view[os.write(self._fd, view):]
        return n_in

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass  # unbuffered: every write is already in the OS

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
            self.closed = True


class _TableStream:
    def __init__(self, path: Path, schema: pa.Schema, flush_rows: int, flush_s: float,
                 resume: dict | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.schema = schema
        if resume is None:
            self._raw = _HashingFile(path)
        else:  # a checkpoint's position: keep the file up to it, and do not write the schema again
            self._raw = _HashingFile(path, keep_bytes=int(resume["bytes"]), skip=len(schema.serialize()))
            if self._raw.sha256.hexdigest() != resume["sha256"]:
                self._raw.close()
                raise ValueError(f"{path}: differs from the checkpoint before its recorded position")
        self._file = pa.PythonFile(self._raw, mode="w")
        self._writer = pa.ipc.new_stream(self._file, schema)
        self._written_rows = 0 if resume is None else int(resume["rows"])
        self._batches = 0 if resume is None else int(resume["batches"])
        self._pending: list[dict] = []
        self._rows = 0
        self._flush_rows = flush_rows
        self._flush_s = flush_s
        self._last_flush = time.monotonic()

    def append(self, columns: dict) -> None:
        self._pending.append(columns)
        self._rows += len(next(iter(columns.values())))
        if self._rows >= self._flush_rows or time.monotonic() - self._last_flush >= self._flush_s:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            merged = {
                name: np.concatenate([np.asarray(p[name]) for p in self._pending])
                for name in self.schema.names
            }
            batch = pa.RecordBatch.from_pydict(merged, schema=self.schema)
            self._writer.write_batch(batch)
            self._written_rows += batch.num_rows
            self._batches += 1
            self._pending.clear()
            self._rows = 0
        self._last_flush = time.monotonic()

    def position(self) -> dict:
        """Everything written so far is on disk: rows, batches, bytes and the SHA-256 of those
        bytes - where a resumed run cuts this file and continues it."""
        self.flush()
        self._file.flush()
        return {"rows": self._written_rows, "batches": self._batches, "bytes": self._raw.nbytes,
                "sha256": self._raw.sha256.hexdigest()}

    def close(self) -> None:
        self.flush()
        self._writer.close()
        self._file.close()
        record = {"rows": self._written_rows, "batches": self._batches, "bytes": self._raw.nbytes,
                  "sha256": self._raw.sha256.hexdigest()}
        atomic.write_json(close_record_path(self.path), record)  # a record is whole or absent


@dataclass(frozen=True)
class SinkFactory:
    """Picklable: workers and actors call it to open the sink of each LP they host."""

    run_dir: str
    flush_rows: int = 65536
    flush_s: float = 1.0

    def __call__(self, lp: int) -> "LPSink":
        return LPSink(self.run_dir, lp, self.flush_rows, self.flush_s)


class LPSink:
    """All result tables of one LP. ``write`` takes a dict of equal-length numpy columns."""

    def __init__(self, run_dir: str, lp: int, flush_rows: int = 65536, flush_s: float = 1.0) -> None:
        self.run_dir = run_dir
        self.lp = lp
        self._flush_rows = flush_rows
        self._flush_s = flush_s
        self._tables: dict[str, _TableStream] = {}

    def write(self, table: str, columns: dict, *, kind: str = "result",
              wallclock: tuple[str, ...] = (), meta: dict | None = None) -> None:
        stream = self._tables.get(table)
        if stream is None:
            if kind not in TABLE_KINDS:
                raise ValueError(f"table kind must be one of {TABLE_KINDS}, got {kind!r}")
            fields = [pa.field(name, pa.from_numpy_dtype(np.asarray(col).dtype))
                      for name, col in columns.items()]
            metadata = {
                "atleus.schema_version": SCHEMA_VERSION,
                "atleus.table": table,
                "atleus.table_kind": kind,
                "atleus.wallclock_columns": ",".join(wallclock),
            }
            metadata.update({f"atleus.{k}": meta_value(v) for k, v in (meta or {}).items()})
            schema = pa.schema(fields, metadata=metadata)
            stream = _TableStream(lp_file(self.run_dir, table, self.lp), schema,
                                  self._flush_rows, self._flush_s)
            self._tables[table] = stream
        stream.append(columns)

    def flush(self) -> None:
        for stream in self._tables.values():
            stream.flush()

    def positions(self) -> dict[str, dict]:
        """Per table, :meth:`_TableStream.position` (a checkpoint records them)."""
        return {table: stream.position() for table, stream in self._tables.items()}

    def resume(self, positions: dict[str, dict]) -> None:
        """Continue the streams a checkpoint recorded, each cut back to its position (its schema
        read from the file); tables it did not record start afresh on their first write."""
        for table, pos in positions.items():
            path = lp_file(self.run_dir, table, self.lp)
            with open(path, "rb") as fh:
                schema = pa.ipc.open_stream(fh).schema
                fh.seek(0)
                head = schema.serialize().to_pybytes()
                if fh.read(len(head)) != head:  # the continued writer's schema must be the file's, byte for byte
                    raise ValueError(f"{path}: its schema does not re-serialise to the bytes it starts with")
            self._tables[table] = _TableStream(path, schema, self._flush_rows, self._flush_s, resume=pos)

    def close(self) -> None:
        for stream in self._tables.values():
            stream.close()
        self._tables.clear()

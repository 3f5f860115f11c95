"""One Arrow IPC stream file, read message by message so that what is wrong with it can be named.

A writer killed mid-run leaves a *torn tail*: the file ends inside its last message. That is the
crash-safe case the stream format was chosen for, and everything before it is good. Anything else
that stops the parse - bytes that are not a stream at all, an Arrow *file* (random-access) or a
Parquet file, a message whose metadata or body does not decode, bytes after the end-of-stream
marker - is *corruption*, and a reader must refuse it rather than drop the rest.

A bit flipped inside a column buffer still parses; only the SHA-256 recorded when the stream was
closed (see ``verify``) catches that. Knows nothing of runs, manifests or hardware.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

CONTINUATION = b"\xff\xff\xff\xff"
ARROW_FILE_MAGIC = b"ARROW1"
PARQUET_MAGIC = b"PAR1"
_BODY_SHORT = re.compile(r"read (\d+) bytes for message body, got (\d+)")

# how a stream file ends
CLOSED = "closed"  # end-of-stream marker: its writer closed it
OPEN = "open"  # ends on a message boundary without the marker: writer stopped between batches
TORN = "torn"  # ends inside a message: writer killed mid-batch; everything before is good
EMPTY = "empty"  # zero bytes: killed before the schema reached the disk
CORRUPT = "corrupt"


@dataclass
class StreamScan:
    """What one stream file holds. ``problem`` says what is wrong (torn or corrupt), else None."""

    path: str
    nbytes: int
    sha256: str
    end: str
    schema: pa.Schema | None = None
    batches: list[pa.RecordBatch] = field(default_factory=list)
    problem: str | None = None

    @property
    def rows(self) -> int:
        return sum(b.num_rows for b in self.batches)

    @property
    def record(self) -> dict:
        """The close record a manifest keeps for this file."""
        return {"rows": self.rows, "batches": len(self.batches), "bytes": self.nbytes, "sha256": self.sha256}


def _foreign_format(data: bytes) -> str | None:
    if data.startswith(ARROW_FILE_MAGIC):
        return "is an Arrow file (random-access format), not an Arrow IPC stream"
    if data.startswith(PARQUET_MAGIC):
        return "is a Parquet file, not an Arrow IPC stream"
    return None


def _tail_is_torn(data: bytes, pos: int, error: str) -> bool:
    """Whether the parse that failed at ``pos`` failed only because the file ends too early."""
    rest = data[pos:]
    if len(rest) < 8:  # continuation marker and metadata length: a prefix of 0xFFFFFFFF is torn
        return CONTINUATION.startswith(rest[:4])
    if rest[:4] != CONTINUATION:
        return False
    (meta_len,) = struct.unpack("<i", rest[4:8])
    if meta_len < 0:
        return False
    if 8 + meta_len > len(rest):
        return True
    short = _BODY_SHORT.search(error)
    return bool(short) and int(short.group(2)) < int(short.group(1))


def scan_bytes(data: bytes, path: str = "<bytes>") -> StreamScan:
    """Parse ``data`` as a stream; never raises on bad input (``end`` and ``problem`` say)."""
    scan = StreamScan(path=path, nbytes=len(data), sha256=hashlib.sha256(data).hexdigest(), end=CORRUPT)
    if not data:
        scan.end = EMPTY
        return scan
    foreign = _foreign_format(data)
    if foreign:
        scan.problem = foreign
        return scan
    src = pa.BufferReader(pa.py_buffer(data))
    reader = pa.ipc.MessageReader.open_stream(src)
    while True:
        pos = src.tell()
        what = "schema" if scan.schema is None else f"record batch {len(scan.batches)}"
        try:
            message = reader.read_next_message()
        except StopIteration:  # end-of-stream marker, or the file ends on a message boundary
            end = src.tell()
            if end < len(data):
                scan.problem = f"{len(data) - end} bytes after the end-of-stream marker"
                return scan
            scan.end = CLOSED if end > pos else OPEN
            return scan
        except (pa.ArrowException, OSError) as exc:
            if _tail_is_torn(data, pos, str(exc)):
                scan.end = TORN
                scan.problem = f"ends inside {what} at byte {pos} (torn tail: writer stopped mid-batch)"
            else:
                scan.problem = f"{what} at byte {pos} does not parse: {exc}"
            return scan
        try:
            if scan.schema is None:
                if message.type != "schema":
                    scan.problem = f"starts with a {message.type} message, not a schema"
                    return scan
                scan.schema = pa.ipc.read_schema(message)
            elif message.type == "record batch":
                scan.batches.append(pa.ipc.read_record_batch(message, scan.schema))
            else:  # result streams hold no dictionaries and one schema
                scan.problem = f"unexpected {message.type} message at byte {pos}"
                return scan
        except (pa.ArrowException, OSError, ValueError) as exc:
            scan.problem = f"{what} at byte {pos} does not decode: {exc}"
            return scan


def scan_file(path: str | os.PathLike) -> StreamScan:
    """:func:`scan_bytes` of a file; a path that is not a regular file is corrupt, with a reason."""
    p = Path(path)
    if p.is_dir():
        return StreamScan(path=str(p), nbytes=0, sha256="", end=CORRUPT,
                          problem="is a directory, not a stream file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        return StreamScan(path=str(p), nbytes=0, sha256="", end=CORRUPT,
                          problem=f"cannot be read: {exc.strerror or exc}")
    return scan_bytes(data, str(p))


def file_sha256(path: str | os.PathLike) -> tuple[int, str]:
    """(bytes, SHA-256) of any file, read in chunks."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return n, h.hexdigest()

"""Messages between logical processes and their wire format.

A message is a row of a numpy structured array whose first fields are the common header
``(time_ps, priority, src, src_seq, dst, dst_port)``; a *kind* adds its own fixed-width fields.
Messages travel in ``Block`` objects (one kind, many rows, optional msgpack-able payloads per row),
so everything that crosses a process boundary is a few large buffers, never one object per
message. The processing order of messages is ``(time_ps, priority, src, src_seq)``; ``dst`` and
``dst_port`` only route. Nothing here knows what a message means.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import msgpack
import numpy as np

HEADER_FIELDS: list[tuple[str, str]] = [
    ("time_ps", "<i8"),
    ("priority", "<i4"),
    ("src", "<i8"),
    ("src_seq", "<i8"),
    ("dst", "<i8"),
    ("dst_port", "<i4"),
]
HEADER_DTYPE = np.dtype(HEADER_FIELDS)


def message_dtype(extra: list[tuple[str, str]] | None = None) -> np.dtype:
    """The dtype of a message kind: the header followed by ``extra`` fixed-width fields."""
    return np.dtype(HEADER_FIELDS + list(extra or []))


@dataclass(slots=True)
class Block:
    """Rows of one message kind. ``payloads``, if given, holds one msgpack-able object per row."""

    kind: str
    rows: np.ndarray
    payloads: list | None = None

    def __len__(self) -> int:
        return len(self.rows)


def order_index(rows: np.ndarray) -> np.ndarray:
    """Indices that sort ``rows`` in processing order (time, priority, src, src_seq)."""
    return np.lexsort((rows["src_seq"], rows["src"], rows["priority"], rows["time_ps"]))


@lru_cache(maxsize=256)
def _dtype_from_descr(descr: tuple) -> np.dtype:
    return np.dtype([(str(name), str(fmt)) for name, fmt in descr])


def _descr_key(dtype: np.dtype) -> tuple:
    return tuple((name, dtype.fields[name][0].str) for name in dtype.names)


def encode_outbox(by_lp: dict[int, list[Block]]) -> bytes:
    """Serialise blocks addressed to several LPs into one buffer (one per destination worker)."""
    body = []
    for lp in sorted(by_lp):
        blocks = [
            [b.kind, _descr_key(b.rows.dtype), b.rows.tobytes(), b.payloads]
            for b in by_lp[lp]
            if len(b)
        ]
        if blocks:
            body.append([lp, blocks])
    return msgpack.packb(body, use_bin_type=True)


def decode_outbox(data: bytes | memoryview) -> dict[int, list[Block]]:
    """Inverse of :func:`encode_outbox`. Arrays are read-only views on ``data`` where possible."""
    out: dict[int, list[Block]] = {}
    if not data:
        return out
    for lp, blocks in msgpack.unpackb(data, raw=False, use_list=True):
        lst = out.setdefault(int(lp), [])
        for kind, descr, raw, payloads in blocks:
            dtype = _dtype_from_descr(tuple(tuple(d) for d in descr))
            lst.append(Block(kind, np.frombuffer(raw, dtype=dtype), payloads))
    return out

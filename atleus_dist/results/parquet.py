"""The user-facing form of a table: one Parquet file per table, ``RUN/<table>.parquet``.

The per-LP Arrow streams are the crash-safe record (readable up to the last batch of a killed run)
but no general tool reads them comfortably: DuckDB has no stream reader, polars' ``scan_ipc``
wants the file format, and a table is split over one file per LP. So at completion each table is
also written whole, for DuckDB, polars, pandas, Spark or anything else that reads Parquet:

- all LPs' rows in one file, in a canonical order (sorted by the columns in schema order, wall-clock
  columns last), so the file does not depend on how the run was partitioned;
- category columns (``kind``, ``phase``, ``link_class``) as dictionary-encoded strings, and
  ``tier_name`` beside the integer ``tier``; the code tables are kept as JSON in the metadata
  (``atleus.codes``: column -> {name: code}) so the integer codes can be recovered;
- zstd compression.

:func:`user_table` decodes the codes (:mod:`~atleus_dist.results.codes`): ``results.open`` applies it to the streams
of a run that has no Parquet yet, so both ways give the same rows. The digest is computed over the
streams' integer codes, so none of this changes it. Knows table metadata conventions and the
manifest's config; nothing of hardware models or backends.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import atleus_dist.results.atomic as atomic
from atleus_dist.results.codes import code_names, decode, full_table, tier_names

# category column -> the schema-metadata key of its code table (as the models write them)
CATEGORY_CODES = {"kind": "kind_codes", "phase": "phase_codes", "link_class": "link_classes"}
COMPRESSION = "zstd"


def parquet_path(run_dir: str | os.PathLike, table: str) -> Path:
    return Path(run_dir) / f"{table}.parquet"


def canonical_order(table: pa.Table) -> pa.Table:
    """Rows sorted by every column in schema order, wall-clock columns last (they differ run to run)."""
    if table.num_rows == 0:
        return table
    meta = table.schema.metadata or {}
    wall = [c for c in meta.get(b"atleus.wallclock_columns", b"").decode().split(",") if c in table.column_names]
    keys = [c for c in table.column_names if c not in wall] + wall
    keys = [c for c in keys if not pa.types.is_nested(table.schema.field(c).type)]
    order = _numpy_order(table, keys)
    if order is None:  # a column numpy cannot order like Arrow (strings, nulls, NaN): Arrow's own sort
        return table.sort_by([(c, "ascending") for c in keys])
    return _numpy_take(table, order)


def _plain(col: pa.ChunkedArray) -> bool:
    t = col.type
    return col.null_count == 0 and (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))


def _numpy_order(table: pa.Table, keys: list[str]) -> np.ndarray | None:
    """The permutation ``table.sort_by(keys)`` gives, computed with numpy - or None if a key is not a
    plain number column (null-free integer, float without NaN or -0.0, boolean), where the two could
    differ.

    Why not ``sort_by``: it needs ``pyarrow.compute``, whose import costs ~0.05 s, and a ``noc``
    run needs nothing else from it. For such columns both sorts are stable and ascending, so they
    agree row for row (ties are rows equal in every key). Most tables have a unique first key
    (packet id, link, node): one stable argsort of it is then the whole order."""
    cols = []
    for k in keys:
        col = table.column(k)
        if not _plain(col):
            return None
        arr = col.to_numpy()
        if arr.dtype.kind == "f" and (np.isnan(arr).any() or (np.signbit(arr) & (arr == 0)).any()):
            return None  # Arrow orders NaN and -0.0 by rules of its own
        cols.append(arr)
    order = np.argsort(cols[0], kind="stable")
    first = cols[0][order]
    if len(cols) == 1 or not (first[1:] == first[:-1]).any():
        return order
    return np.lexsort(cols[::-1])  # the last key given to lexsort is the primary one


def _numpy_take(table: pa.Table, order: np.ndarray) -> pa.Table:
    """``table.take(order)`` for plain number columns without ``pyarrow.compute`` (one chunk each)."""
    if not all(_plain(col) for col in table.columns):
        return table.take(order)
    arrays = [pa.array(col.to_numpy()[order], type=col.type) for col in table.columns]
    return pa.Table.from_arrays(arrays, schema=table.schema)


def _dictionary(codes: pa.ChunkedArray, names: dict[int, str], prefix: str) -> tuple[pa.Array, dict[str, int]]:
    """:func:`codes.decode` and its code table as ``{name: code}`` (kept in the file's metadata)."""
    arr = decode(codes, names, prefix)
    return arr, {name: int(code) for code, name in sorted(full_table(codes.to_numpy(), names, prefix).items())}


def user_table(raw: pa.Table, manifest: dict | None = None) -> pa.Table:
    """``raw`` (a table as the streams hold it) in canonical order with its categories decoded."""
    table = canonical_order(raw)
    meta = dict(table.schema.metadata or {})
    codes: dict[str, dict[str, int]] = {}
    columns, fields = [], []
    for f in table.schema:
        col = table.column(f.name)
        if f.name in CATEGORY_CODES and pa.types.is_integer(f.type):
            arr, codes[f.name] = _dictionary(col, code_names(table, CATEGORY_CODES[f.name], f.name), f.name)
            columns.append(arr)
            fields.append(pa.field(f.name, arr.type))
            continue
        columns.append(col)
        fields.append(f)
        if f.name == "tier" and pa.types.is_integer(f.type) and "tier_name" not in table.column_names:
            arr, codes["tier_name"] = _dictionary(col, tier_names(table, manifest or {}), "tier")
            columns.append(arr)
            fields.append(pa.field("tier_name", arr.type))
    for name, key in CATEGORY_CODES.items():  # the code tables, as JSON whatever form they came in
        if name in codes and f"atleus.{key}".encode() in meta:
            meta[f"atleus.{key}".encode()] = json.dumps(codes[name]).encode()
    meta[b"atleus.codes"] = json.dumps(codes, sort_keys=True).encode()
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=meta))


def write_parquet(run_dir: str | os.PathLike, name: str, raw: pa.Table, manifest: dict | None = None) -> Path:
    """Write :func:`user_table` of ``raw`` as ``RUN/<name>.parquet`` (atomically: a reader sees
    the whole file or none)."""
    path = parquet_path(run_dir, name)
    with atomic.replacing(path) as tmp:
        pq.write_table(user_table(raw, manifest), tmp, compression=COMPRESSION)
    return path

"""One SHA-256 over every *result* table of a run, in a canonical order.

Rows are sorted by all columns (so the LP that wrote them and the order they were written do not
matter) and wall-clock columns are dropped; execution tables (rounds, windows) are left out,
because they describe how a run was partitioned rather than what it computed.

:func:`run_digest` is what ``atleus-dist digest`` (and the API) call: it refuses a run that is not
``complete`` - its tables may be partial, so its hash would match nothing - unless ``partial``,
and a run with no result tables, whose digest would be the SHA-256 of nothing.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pyarrow as pa

from atleus_dist.kernel.errors import ConfigError
from atleus_dist.results.manifest import read_manifest
from atleus_dist.results.reader import read_table, table_names


def table_kind(table: pa.Table) -> str:
    meta = table.schema.metadata or {}
    return meta.get(b"atleus.table_kind", b"result").decode()


def canonical(table: pa.Table) -> pa.Table:
    meta = table.schema.metadata or {}
    wall = [c for c in meta.get(b"atleus.wallclock_columns", b"").decode().split(",") if c]
    table = table.drop_columns([c for c in wall if c in table.column_names])
    table = table.select(sorted(table.column_names))
    if table.num_rows:
        table = table.sort_by([(c, "ascending") for c in table.column_names])
    return table


def _column_bytes(col: pa.ChunkedArray) -> bytes:
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_boolean(arr.type):
        if arr.null_count == 0:
            return np.ascontiguousarray(arr.to_numpy(zero_copy_only=False)).tobytes()
    return repr(arr.to_pylist()).encode()


def digest(run_dir: str | os.PathLike, field: str = "run_dir") -> tuple[str, dict[str, str]]:
    """The run digest and one digest per result table included (every file checked first)."""
    total = hashlib.sha256()
    per_table: dict[str, str] = {}
    for name in table_names(run_dir):
        try:
            table = read_table(run_dir, name, field)
        except FileNotFoundError:  # streams with no batch yet (a partial run): nothing to hash
            continue
        if table_kind(table) != "result":
            continue
        table = canonical(table)
        h = hashlib.sha256()
        h.update(name.encode())
        h.update(str(table.num_rows).encode())
        for cname in table.column_names:
            col = table.column(cname)
            h.update(f"{cname}:{col.type}".encode())
            h.update(_column_bytes(col))
        per_table[name] = h.hexdigest()
        total.update(f"{name}={per_table[name]}\n".encode())
    return total.hexdigest(), per_table


def run_digest(run_dir: str | os.PathLike, partial: bool = False, field: str = "run_dir") -> dict:
    """``{"digest", "tables", "status", "partial"}`` of a run directory; ``ConfigError`` for a run
    that is not complete (unless ``partial``), has no result tables, or has a file that is bad."""
    status = read_manifest(run_dir, field)["status"]
    if status != "complete" and not partial:
        raise ConfigError(field, f"run {str(run_dir)!r} has status {status!r}, not 'complete'; its tables may "
                          "be partial (--partial digests what is readable and says so)")
    total, tables = digest(run_dir, field)
    if not tables:
        raise ConfigError(field, f"run {str(run_dir)!r} has no result tables; there is nothing to digest")
    return {"digest": total, "tables": tables, "status": status, "partial": status != "complete"}

"""Reading a run directory: tolerant of a killed run (a truncated last batch is dropped)."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds


def table_names(run_dir: str | os.PathLike) -> list[str]:
    root = Path(run_dir)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("lp*.arrows")))


def read_stream(path: str | os.PathLike) -> tuple[pa.Schema | None, list[pa.RecordBatch]]:
    """Every complete record batch of one stream file (a torn tail from a kill is ignored)."""
    batches: list[pa.RecordBatch] = []
    try:
        reader = pa.ipc.open_stream(pa.OSFile(str(path), "rb"))
    except (pa.ArrowInvalid, OSError):
        return None, batches
    try:
        for batch in reader:
            batches.append(batch)
    except (pa.ArrowInvalid, OSError):
        pass
    return reader.schema, batches


def read_table(run_dir: str | os.PathLike, table: str) -> pa.Table:
    """All LPs' rows of one table, LP files in name order."""
    schema = None
    batches: list[pa.RecordBatch] = []
    for path in sorted((Path(run_dir) / table).glob("lp*.arrows")):
        s, b = read_stream(path)
        if s is not None:
            schema = schema or s
            batches.extend(bt.cast(schema) if bt.schema != schema else bt for bt in b)
    if schema is None:
        raise FileNotFoundError(f"no readable {table!r} table in {run_dir}")
    return pa.Table.from_batches(batches, schema=schema)


def open(run_dir: str | os.PathLike, table: str | None = None) -> ds.Dataset | dict[str, ds.Dataset]:
    """A ``pyarrow.dataset.Dataset`` over one table, or a dict of them for every table."""
    if table is not None:
        return ds.dataset(read_table(run_dir, table))
    return {name: ds.dataset(read_table(run_dir, name)) for name in table_names(run_dir)}

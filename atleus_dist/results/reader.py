"""Reading a run directory, trusting nothing it has not checked.

``read_table`` gives a table as the per-LP streams hold it (integer category codes; what the
digest and the report work on). Every file is checked first (``verify.check_table``): in a
``complete`` run against the sizes and SHA-256s of the manifest, in any other run up to a torn
tail. A file that fails is an error naming it - never skipped.

``open`` gives the user-facing form (``parquet.user_table``: canonical row order, categories as
strings): the run's ``<table>.parquet`` once the run is complete, else the same form built from
the streams, so both give the same rows. Knows nothing of hardware models or backends.
"""

from __future__ import annotations

import os

import pyarrow as pa

from atleus_dist.kernel.errors import ConfigError
import atleus_dist.results.verify as verify
from atleus_dist.results.parquet import user_table


def table_names(run_dir: str | os.PathLike) -> list[str]:
    """Tables of the run: those with streams on disk, and every table a complete run's manifest lists."""
    return verify.table_names(run_dir, verify.load_manifest_or_none(run_dir))


def read_table(run_dir: str | os.PathLike, table: str, field: str = "run_dir") -> pa.Table:
    """All LPs' rows of one table, LP files in name order, after checking every file."""
    check = verify.check_table(run_dir, table, verify.load_manifest_or_none(run_dir, field))
    verify.raise_first(run_dir, check, field)
    if check.schema is None:
        raise FileNotFoundError(f"no readable {table!r} table in {run_dir}")
    return check.table()


def _user_dataset(run_dir: str | os.PathLike, table: str, manifest: dict | None, field: str) -> "pyarrow.dataset.Dataset":
    import pyarrow.dataset as ds  # here, not at the top: ~0.1 s that every run would pay to write results

    path, problem = verify.check_parquet(run_dir, table, manifest)
    if problem:
        raise ConfigError(field, f"{path}: {problem}")
    if path is not None:
        return ds.dataset(str(path), format="parquet")
    return ds.dataset(user_table(read_table(run_dir, table, field), manifest))


def open(run_dir: str | os.PathLike, table: str | None = None,
         field: str = "run_dir") -> "pyarrow.dataset.Dataset | dict[str, pyarrow.dataset.Dataset]":
    """A ``pyarrow.dataset.Dataset`` of one table in its user-facing form (see the module
    docstring), or a dict of them for every table."""
    manifest = verify.load_manifest_or_none(run_dir, field)
    if table is not None:
        return _user_dataset(run_dir, table, manifest, field)
    return {name: _user_dataset(run_dir, name, manifest, field)
            for name in verify.table_names(run_dir, manifest)}

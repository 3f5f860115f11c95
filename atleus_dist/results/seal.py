"""Sealing: how a finished run becomes ``complete`` - the top of ``results/``.

:func:`seal_run` parses every ``<table>/lpNNN.arrows`` stream to its end-of-stream marker,
checks it against the close record its writer left (``lpNNN.arrows.done``: rows, bytes, SHA-256 of
the bytes it wrote; :mod:`~atleus_dist.results.verify` does the checking), checks that all
streams of a table share one schema, writes ``<table>.parquet``
(:mod:`~atleus_dist.results.parquet`) and returns the records the manifest keeps under ``files``.
A problem here means the run is not complete.

A run becomes ``complete`` only through :func:`finish_manifest`, which seals it first (or takes
the caller's :func:`seal`) and records every file's rows and SHA-256; if sealing finds a problem
the run is written ``failed`` instead. Nothing below imports this module: the manifest, the
checks and the Parquet writer know nothing of sealing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from atleus_dist.kernel.errors import SimulationAborted
import atleus_dist.results.stream as st
import atleus_dist.results.verify as verify
from atleus_dist.results.codes import recorded
from atleus_dist.results.manifest import STATUSES, now_utc, write_manifest
from atleus_dist.results.parquet import write_parquet
from atleus_dist.results.writer import CLOSE_RECORD_SUFFIX


class SealError(RuntimeError):
    """A run's files do not hold what its writers closed; it must not be called complete."""


def seal_run(run_dir: str | os.PathLike, manifest: dict) -> tuple[dict, dict]:
    """Check every stream of a finished run, write the Parquet files; returns (files, tables) for
    the manifest. Raises :class:`SealError` naming the first file that is not whole."""
    files: dict[str, dict] = {}
    tables: dict[str, dict] = {}
    step_ps = None  # the ops' span, for link utilisation over the step (chip runs)
    for name in sorted(verify.stream_table_names(run_dir), key=lambda n: n != "ops"):
        check = verify.check_table(run_dir, name, None)
        for fc in check.files:
            if fc.ok and fc.scan is not None and fc.scan.end != st.CLOSED:
                fc.problem = fc.scan.problem or f"was not closed ({fc.scan.end})"
        bad = check.problems
        if bad:
            raise SealError(f"{Path(run_dir) / bad[0].rel}: {bad[0].problem}")
        for fc in check.files:
            files[fc.rel] = fc.scan.record
        raw = check.table()
        if name == "ops" and raw.num_rows:
            step_ps = int(raw.column("end_ps").to_numpy().max()) - int(raw.column("start_ps").to_numpy().min())
        path = write_parquet(run_dir, name, _with_utilisation(raw, step_ps, manifest), manifest)
        nbytes, sha = st.file_sha256(path)
        files[path.name] = {"rows": raw.num_rows, "bytes": nbytes, "sha256": sha}
        kind = (check.schema.metadata or {}).get(b"atleus.table_kind", b"result").decode()
        tables[name] = {"kind": kind, "rows": raw.num_rows, "streams": len(check.files), "parquet": path.name}
    return files, tables


def _with_utilisation(raw: pa.Table, step_ps: int | None, manifest: dict) -> pa.Table:
    """A chip run's ``links`` rows hold NaN utilisation (no LP knows when the step ends:
    ``utilisation_over=step``); its Parquet file gets flits per cycle of the step, as the summary
    computes it. The streams - and so the digest - keep what the LPs wrote."""
    meta = raw.schema.metadata or {}
    clock = recorded(manifest, ("chip", "noc", "router", "clock_period_ps"))
    if meta.get(b"atleus.utilisation_over") != b"step" or not step_ps or not isinstance(clock, int) \
            or "utilisation" not in raw.column_names:
        return raw
    util = raw.column("flits").to_numpy().astype(np.float64) / (step_ps / clock)
    return raw.set_column(raw.column_names.index("utilisation"), "utilisation", pa.array(util))


def remove_close_records(run_dir: str | os.PathLike) -> None:
    for path in Path(run_dir).glob(f"*/{verify.STREAM_GLOB}{CLOSE_RECORD_SUFFIX}"):
        path.unlink(missing_ok=True)


def seal(run_dir: str | os.PathLike, data: dict) -> tuple[dict, dict]:
    """:func:`seal_run`: (files, tables) records of a finished run, its Parquet files written;
    a run whose files are not whole raises :class:`~atleus_dist.kernel.SimulationAborted`."""
    try:
        return seal_run(run_dir, data)
    except SealError as exc:
        raise SimulationAborted(f"results did not verify at completion: {exc}") from None


def finish_manifest(run_dir: str | os.PathLike, data: dict, status: str, figures: dict,
                    error: str | None = None, sealed: tuple[dict, dict] | None = None, **extra) -> dict:
    """Rewrite the manifest with its final ``status``; ``extra`` keys are added (e.g. the signal
    of an interrupted run). ``complete`` needs the run sealed: ``sealed`` if the caller did it
    (:func:`seal`), else it is done here; if the files do not seal the run is written ``failed``
    and :class:`~atleus_dist.kernel.SimulationAborted` raised. Any other status removes Parquet
    files a stopped seal may have left, so nothing that looks final stays in a partial run."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    data = dict(data, status=status, finished=now_utc(), figures=figures, **extra)
    if error:
        data["error"] = error
    if status == "complete":
        try:
            data["files"], data["tables"] = sealed if sealed is not None else seal(run_dir, data)
        except SimulationAborted as exc:
            data.update(status="failed", error=str(exc))
            write_manifest(run_dir, data)
            raise
        write_manifest(run_dir, data)
        remove_close_records(run_dir)  # the manifest holds them now
        return data
    for path in list(Path(run_dir).glob("*.parquet")) + list(Path(run_dir).glob(".*.parquet.tmp")):
        path.unlink(missing_ok=True)
    write_manifest(run_dir, data)
    return data

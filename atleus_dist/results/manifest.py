"""``manifest.json``: written when a run starts (status ``running``) and rewritten atomically at
the end (``complete``, ``failed`` or ``interrupted`` by a signal), so a reader never sees a
half-written manifest and a killed run never claims to be complete.

A run becomes ``complete`` only through :func:`finish_manifest`, which first *seals* it
(``verify.seal_run``: every stream parses to its end-of-stream marker and matches its close
record, and each table is also written as ``<table>.parquet``) and records every file's rows and
SHA-256 under ``files``. If sealing finds a problem the run is ``failed`` instead.

:func:`read_manifest` refuses anything that is not a JSON object with a known status, with one
line naming the file (a ``ConfigError``, so every command exits 2 the same way).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from atleus_dist import __version__
from atleus_dist.results import atomic

MANIFEST = "manifest.json"
STATUSES = ("running", "complete", "failed", "interrupted")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def write_manifest(run_dir: str | os.PathLike, data: dict) -> None:
    atomic.write_json(Path(run_dir) / MANIFEST, data, indent=2, sort_keys=True, default=str)


def read_manifest(run_dir: str | os.PathLike, field: str = "run_dir") -> dict:
    """The manifest of ``run_dir``, checked to be a JSON object with a known ``status``."""
    from atleus_dist.kernel.errors import ConfigError

    root = Path(run_dir)
    path = root / MANIFEST
    if not root.is_dir():
        raise ConfigError(field, f"{str(root)!r} is not a directory")
    if path.is_dir():
        raise ConfigError(field, f"{str(path)!r} is a directory, not a manifest file")
    if not path.exists():
        raise ConfigError(field, f"{str(root)!r} holds no {MANIFEST}; not a run directory")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(field, f"{str(path)!r} cannot be read: {exc.strerror or exc}") from None
    if not raw.strip():
        raise ConfigError(field, f"{str(path)!r} is empty (the run never started, or the file was truncated)")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(field, f"{str(path)!r} is not text (binary data, not a manifest)") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(field, f"{str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(field, f"{str(path)!r} holds a JSON {type(data).__name__}, not an object")
    if data.get("status") not in STATUSES:
        raise ConfigError(field, f"{str(path)!r} has status {data.get('status')!r}",
                          allowed=", ".join(STATUSES))
    for key in ("files", "tables"):
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(field, f"{str(path)!r}: {key!r} is a JSON {type(data[key]).__name__}, not an object")
    return data


def start_manifest(run_dir: str | os.PathLike, command: str, config: dict, partition: dict) -> dict:
    import msgpack
    import numpy
    import pyarrow

    data = {
        "status": "running",
        "command": command,
        "config": config,
        "partition": partition,
        "started": _now(),
        "finished": None,
        "figures": {},
        "versions": {
            "atleus_dist": __version__,
            "python": sys.version.split()[0],
            "numpy": numpy.__version__,
            "pyarrow": pyarrow.__version__,
            "msgpack": ".".join(map(str, msgpack.version)),
            "platform": platform.platform(),
        },
    }
    write_manifest(run_dir, data)
    return data


def seal(run_dir: str | os.PathLike, data: dict) -> tuple[dict, dict]:
    """``verify.seal_run``: (files, tables) records of a finished run, its Parquet files written;
    a run whose files are not whole raises :class:`~atleus_dist.kernel.SimulationAborted`."""
    from atleus_dist.kernel.errors import SimulationAborted
    from atleus_dist.results.verify import SealError, seal_run

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
    data = dict(data, status=status, finished=_now(), figures=figures, **extra)
    if error:
        data["error"] = error
    if status == "complete":
        from atleus_dist.kernel.errors import SimulationAborted
        from atleus_dist.results.verify import remove_close_records

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

"""``manifest.json``: written when a run starts (status ``running``) and rewritten atomically at
the end (``complete`` or ``failed``), so a reader never sees a half-written manifest and a killed
run never claims to be complete."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from atleus_dist import __version__

MANIFEST = "manifest.json"
STATUSES = ("running", "complete", "failed")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def write_manifest(run_dir: str | os.PathLike, data: dict) -> None:
    path = Path(run_dir) / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_manifest(run_dir: str | os.PathLike) -> dict:
    with open(Path(run_dir) / MANIFEST) as fh:
        return json.load(fh)


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


def finish_manifest(run_dir: str | os.PathLike, data: dict, status: str, figures: dict,
                    error: str | None = None) -> dict:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    data = dict(data, status=status, finished=_now(), figures=figures)
    if error:
        data["error"] = error
    write_manifest(run_dir, data)
    return data

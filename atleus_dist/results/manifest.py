"""``manifest.json``: written when a run starts (status ``running``) and rewritten atomically at
the end (``complete``, ``failed`` or ``interrupted`` by a signal; :mod:`atleus_dist.results.seal`),
so a reader never sees a half-written manifest and a killed run never claims to be complete.

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
from atleus_dist.kernel.errors import ConfigError
import atleus_dist.results.atomic as atomic

MANIFEST = "manifest.json"
STATUSES = ("running", "complete", "failed", "interrupted")


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def write_manifest(run_dir: str | os.PathLike, data: dict) -> None:
    atomic.write_json(Path(run_dir) / MANIFEST, data, indent=2, sort_keys=True, default=str)


def read_manifest(run_dir: str | os.PathLike, field: str = "run_dir") -> dict:
    """The manifest of ``run_dir``, checked to be a JSON object with a known ``status``."""
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
        "started": now_utc(),
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

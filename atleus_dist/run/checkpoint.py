"""Checkpoints of a running simulation: when they are taken, what they hold, how they are written.

``run --checkpoint-every-ps N`` caps every round's horizons at the next multiple of N. Once every
LP's next event (messages in flight included) lies at or past that boundary T, every LP has
processed exactly the events before T - one consistent cut. The backend then delivers the
messages in flight (they become part of their receivers' state), and each worker writes the
state of its LPs (:meth:`LPGroup.checkpoint_state`): per LP ``lpNNN.state`` (msgpack: the state
tree of :mod:`atleus_dist.kernel.snapshot` and its result streams' positions) and ``lpNNN.npz``
(the tree's numpy arrays), then ``groupG.json`` with what it wrote. No pickle anywhere: a
checkpoint decodes only to numbers, strings, containers and arrays.

A checkpoint is written into ``RUN/checkpoints/.tmp-<T>`` and renamed to ``ckpt-<T>`` by the
coordinating process once every group's part is there, with ``checkpoint.json`` (the run it
belongs to, T, rounds, the partition of its LPs, the result streams earlier resumes on another
partition retired, every file's size and SHA-256). The rename is atomic, so a run killed while
writing leaves the previous checkpoint whole; the two newest are kept. The manifest lists every
checkpoint written (sim time, bytes, seconds to write).

Capping horizons changes only how rounds fall, never the result tables (they do not depend on
the windows; see docs/architecture.md, "Kernel"), so a checkpointed run has the digest of one without.
Backends see only this object's methods (they import nothing from ``run``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from atleus_dist.kernel.errors import ConfigError
from atleus_dist.kernel.snapshot import SnapshotError, decode, encode
from atleus_dist.results import atomic
from atleus_dist.results.manifest import write_manifest

CKPT_DIR = "checkpoints"
META = "checkpoint.json"
FORMAT = "atleus-dist checkpoint"
VERSION = 1
KEEP = 2


def ckpt_name(sim_ps: int) -> str:
    return f"ckpt-{sim_ps:019d}"  # sortable by name


def check_every_ps(value, flag: str = "--checkpoint-every-ps") -> int | None:
    """The checkpoint interval as given (None: no checkpoints), checked: a whole number of ps > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(flag, f"must be a whole number of picoseconds > 0, got {value!r}")
    return value


def _write_file(path: Path, data: bytes) -> dict:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_lp(d: Path, lp: int, tree, arrays: list, positions: dict) -> dict:
    """Write one LP's state (``lpNNN.state``, ``lpNNN.npz``) into ``d``; returns the files' records."""
    body = encode({"lp": lp, "state": tree, "streams": positions})
    files = {f"lp{lp:03d}.state": _write_file(d / f"lp{lp:03d}.state", body)}
    buf = io.BytesIO()
    # deflated: the NoC's arrays are mostly zeros (a chip checkpoint 4.1 MB -> 0.11 MB for
    # 60 ms more, measured on the default chip), random draws of synthetic traffic less so
    np.savez_compressed(buf, **{f"a{i}": a for i, a in enumerate(arrays)})
    files[f"lp{lp:03d}.npz"] = _write_file(d / f"lp{lp:03d}.npz", buf.getvalue())
    return files


def read_lp_state(ckpt_dir: str | os.PathLike, lp: int) -> dict:
    """LP ``lp``'s saved record: ``state`` (tree), ``arrays`` (list), ``streams`` (positions)."""
    d = Path(ckpt_dir)
    try:
        rec = decode((d / f"lp{lp:03d}.state").read_bytes())
        with np.load(io.BytesIO((d / f"lp{lp:03d}.npz").read_bytes()), allow_pickle=False) as z:
            arrays = [z[f"a{i}"] for i in range(len(z.files))]
    except (OSError, ValueError, SnapshotError) as exc:
        raise SnapshotError(f"{d}/lp{lp:03d}: {exc}") from None
    if not isinstance(rec, dict) or rec.get("lp") != lp:
        raise SnapshotError(f"{d}/lp{lp:03d}.state: not the state of LP {lp}")
    return dict(rec, arrays=arrays)


@dataclass
class CheckpointPlan:
    """When to checkpoint and where; picklable (workers write their part with it). ``records``
    and ``manifest`` live in the coordinating process only (not pickled)."""

    run_dir: str
    every_ps: int
    n_groups: int
    identity: dict = field(default_factory=dict)  # which run: its manifest's start and command
    partition: str | None = None  # the LPs' partition (a resume on another one re-slices)
    # streams of LP indices the partition no longer has (an earlier resume on another partition
    # retired them): name -> position, kept by every resume
    retired: dict = field(default_factory=dict)
    # what the run had done before this process started its part (a resume: at its checkpoint):
    # rounds and wall seconds, so each checkpoint counts from the run's start
    base: dict = field(default_factory=dict)
    started: float = field(default_factory=time.time)  # when this process's part began (wall clock)
    records: list = field(default_factory=list)
    manifest: dict | None = None

    def __getstate__(self) -> dict:
        return dict(self.__dict__, records=[], manifest=None)

    @property
    def root(self) -> Path:
        return Path(self.run_dir) / CKPT_DIR

    def next_until(self, t_ps: int) -> int:
        """The first boundary after ``t_ps``."""
        return (t_ps // self.every_ps + 1) * self.every_ps

    def due(self, next_min_ps: int, until_ps: int, end_ps: int) -> bool:
        """Every LP reached the boundary and there is still work before the end."""
        return until_ps < end_ps and until_ps <= next_min_ps < end_ps

    def _tmp(self, until_ps: int) -> Path:
        return self.root / f".tmp-{until_ps:019d}"

    # --- a worker's part ---------------------------------------------------------------------------
    def write_group(self, until_ps: int, group, info: dict) -> None:
        """Write the state of ``group``'s LPs (an :class:`LPGroup`, messages in flight already
        delivered) for the checkpoint at ``until_ps``; ``info``: rounds, events so far."""
        t0, wall0 = time.perf_counter(), time.time()
        d = self._tmp(until_ps)
        d.mkdir(parents=True, exist_ok=True)
        files, lp_events = {}, 0
        for lp, (tree, arrays, positions) in sorted(group.checkpoint_state().items()):
            files.update(write_lp(d, lp, tree, arrays, positions))
            # the LP's own count: restored with its state, so it runs from the run's start on every
            # backend (a group's count starts at its process)
            lp_events += int(getattr(tree, "attrs", {}).get("events_committed", 0))
        part = dict(info, group=group.group, lps=list(group.lp_ids), files=files, lp_events=lp_events,
                    write_s=time.perf_counter() - t0, began=wall0, ended=time.time())
        atomic.write_json(d / f"group{group.group}.json", part, indent=1, sort_keys=True)  # last: the part is whole once this exists

    # --- the coordinator's side --------------------------------------------------------------------
    def poll(self) -> list[dict]:
        """Commit every checkpoint whose parts are all written (oldest first); returns the new
        records. Called by the coordinating process between rounds or while it watches workers."""
        if not self.root.is_dir():
            return []
        new = []
        for tmp in sorted(self.root.glob(".tmp-*")):
            parts = [tmp / f"group{g}.json" for g in range(self.n_groups)]
            if all(p.exists() for p in parts):
                new.append(self._commit(tmp, [json.loads(p.read_text()) for p in parts]))
        return new

    def _commit(self, tmp: Path, parts: list[dict]) -> dict:
        t0 = time.perf_counter()
        sim_ps = int(tmp.name.split("-")[1])
        files = {}
        for part in parts:
            files.update(part["files"])
        lps = sorted(lp for part in parts for lp in part["lps"])
        meta = {
            "format": FORMAT, "version": VERSION, "run": self.identity, "sim_time_ps": sim_ps,
            "every_ps": self.every_ps, "n_lps": len(lps), "lps": lps, "partition": self.partition,
            "retired_streams": self.retired,
            # from the run's start: rounds of earlier parts plus this one's, every LP's events, the
            # wall time of earlier parts plus this one's so far
            "round": int(self.base.get("rounds", 0)) + max(int(p.get("round", 0)) for p in parts),
            "events": sum(int(p.get("lp_events", p.get("events", 0))) for p in parts),
            "wall_s": round(float(self.base.get("wall_s", 0.0)) + max(p["ended"] for p in parts) - self.started, 3),
            "created": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "files": files,
        }
        atomic.write_json(tmp / META, meta, indent=1, sort_keys=True)
        final = self.root / ckpt_name(sim_ps)
        if final.exists():  # a resumed run passing a boundary it had already written
            shutil.rmtree(final)
        os.rename(tmp, final)
        atomic.fsync_path(self.root)
        self._prune()
        size = sum(f["bytes"] for f in files.values())
        record = {"name": final.name, "sim_time_ps": sim_ps, "bytes": size,
                  # first part begun to last part written (workers write at once, inline one after
                  # another), plus the commit
                  "write_s": round(max(p["ended"] for p in parts) - min(p["began"] for p in parts)
                                   + time.perf_counter() - t0, 6),
                  "round": meta["round"], "events": meta["events"], "created": meta["created"]}
        self.records.append(record)
        if self.manifest is not None:  # a killed run's manifest lists what it can resume from
            self.manifest.setdefault("checkpoints", []).append(record)
            write_manifest(self.run_dir, self.manifest)
        return record

    def _prune(self) -> None:
        # states a resume re-sliced onto another partition: read only while the LPs were built
        for old in self.root.glob(".reslice-*"):
            shutil.rmtree(old, ignore_errors=True)
        done = sorted(self.root.glob("ckpt-*"))
        for old in done[:-KEEP]:
            gone = self.root / f".del-{old.name}"
            os.rename(old, gone)  # never half a checkpoint under a name resume would read
            shutil.rmtree(gone, ignore_errors=True)

"""Resuming on another partition: a checkpoint's per-LP states turned into the states of another
partition's LPs, and the result streams of LPs that no longer exist kept as results.

A checkpoint holds one state per LP of the run's partition. To resume on another partition,
:func:`reslice_checkpoint` builds both LP sets with the run's own factory - the old one
(``factory.for_partition``) restored from the checkpoint, the new one fresh - and lets the model
move the state across (``LogicalProcess.reslice``: the NoC by router, NI and flit, the cores'
schedulers by op and unit; see :mod:`atleus_dist.hw.noc.reslice`,
:mod:`atleus_dist.hw.chip_reslice`). The new LPs' states are then written like a checkpoint's,
into ``RUN/checkpoints/.reslice-<checkpoint>``, and the resume goes on exactly as one on the same
partition (every LP built by the factory, its state restored). Why build LPs rather than merge
saved trees: the constructor of an LP already knows which routers, ports and ops it owns and
lays out its arrays; the model's reslice only has to move the dynamic rows, with no second
description of the layout to keep in step with the code.

Result streams are files per LP index (``<table>/lpNNN.arrows``). New LP k continues the streams
of index k as they were at the checkpoint; streams of an index the new partition does not have
are *retired*: cut back to their checkpoint position and closed (their rows up to the checkpoint
are results), listed in every later checkpoint (``retired_streams``) so a later resume keeps them
too. Final tables gather every stream of a table and sort rows canonically, so which file a row
is in never matters (:mod:`atleus_dist.results.digest`). Knows the checkpoint layout and the LP
interface; nothing of hardware.
"""

from __future__ import annotations

import re
from pathlib import Path

from atleus_dist.kernel.errors import ConfigError
from atleus_dist.kernel.snapshot import SnapshotError
from atleus_dist.results.writer import LPSink
from atleus_dist.run.checkpoint import read_lp_state, write_lp


def partition_of(meta: dict, manifest: dict) -> str:
    """The partition of a checkpoint's LPs: recorded in it, or (a checkpoint written before
    checkpoints recorded it) the run's first, from before any resume on another partition."""
    if meta.get("partition"):
        return meta["partition"]
    moved = [r["from_partition"] for r in manifest.get("resumes", ()) if isinstance(r, dict) and r.get("from_partition")]
    return moved[0] if moved else manifest["checkpoint"].get("partition")


def retired_of(meta: dict) -> dict:
    """The streams a checkpoint lists as retired (name -> position), each name checked."""
    out = meta.get("retired_streams") or {}
    for rel in out:
        if not re.fullmatch(r"[a-z_]+/lp[0-9]{3}\.arrows", str(rel)):
            raise ConfigError("run", f"checkpoint.json: retired stream {rel!r} is not a stream name (the checkpoint is corrupt)")
    return dict(out)


def state_dir(ckpt: Path) -> Path:
    """Where the re-sliced states of checkpoint ``ckpt`` are written (a hidden name: a later
    resume removes it with every other uncommitted directory)."""
    return ckpt.parent / f".reslice-{ckpt.name}"


def stream_index(rel: str) -> tuple[str, int]:
    """(table, LP index) of a stream's run-relative name ``<table>/lpNNN.arrows``."""
    table, name = rel.split("/")
    return table, int(name[2:name.index(".")])


def reslice_checkpoint(ckpt: Path, meta: dict, old_partition: str, factory, n_lps: int,
                       retired: dict) -> tuple[dict, dict]:
    """The states of the ``n_lps`` LPs ``factory`` builds (a new partition) from checkpoint
    ``ckpt`` of the run on ``old_partition``: ({lp: (tree, arrays, stream positions)}, the
    streams retired). ``retired``: streams an earlier resume retired (name -> position)."""
    if not hasattr(factory, "for_partition"):
        raise ConfigError("--partition", "this run's LPs are built for one partition only; resume it without "
                          f"--partition (its partition is {old_partition!r})", allowed=old_partition)
    old_factory = factory.for_partition(old_partition)
    old, streams = {}, {}
    for i in meta["lps"]:
        rec = read_lp_state(ckpt, i)
        lp = old_factory(i, None)
        lp.restore_state(rec["state"], rec["arrays"])
        old[i] = lp
        streams.setdefault(i, {}).update(rec["streams"])
    for rel, pos in retired.items():
        table, k = stream_index(rel)
        streams.setdefault(k, {})[table] = pos
    new = {j: factory(j, None) for j in range(n_lps)}
    try:
        type(new[0]).reslice(old, new, int(meta["sim_time_ps"]))
    except SnapshotError as exc:
        raise ConfigError("--partition", f"cannot move the checkpoint's state to this partition: {exc}") from None
    states = {}
    for j, lp in new.items():
        tree, arrays = lp.snapshot_state()
        states[j] = (tree, arrays, streams.get(j, {}))
    gone = {f"{table}/lp{k:03d}.arrows": pos for k, tables in sorted(streams.items()) if k >= n_lps
            for table, pos in sorted(tables.items())}
    return states, gone


def write_states(dest: Path, states: dict) -> None:
    """Write re-sliced states as a checkpoint's LP files (``lpNNN.state``, ``lpNNN.npz``)."""
    dest.mkdir(parents=True, exist_ok=True)
    for lp, (tree, arrays, positions) in sorted(states.items()):
        write_lp(dest, lp, tree, arrays, positions)


def close_retired(run_dir: Path, retired: dict) -> None:
    """Cut every retired stream back to its checkpoint position and close it (end-of-stream and
    close record), so the run seals and verifies with it as one of its files."""
    by_lp: dict[int, dict] = {}
    for rel, pos in retired.items():
        table, k = stream_index(rel)
        by_lp.setdefault(k, {})[table] = pos
    for k, positions in sorted(by_lp.items()):
        sink = LPSink(str(run_dir), k)
        sink.resume(positions)
        sink.close()

"""The sweep's dataset: one row per point (``DIR/sweep.parquet``) and the sweep manifest
(``DIR/manifest.json``), both rewritten atomically so a reader never sees half a file.

A row holds the point id, the swept keys as typed columns (a key whose values are all integers is an
``int64`` column, and so on, so ``WHERE "scenario.seq" > 64`` works in DuckDB), status, error, wall
time and the point's summary figures, plus the ReRAM tiers' share of energy and busy time taken
from its ``ops`` table. Rows are in grid order, whatever order the points finished in.

Knows the run directory layout (manifest, ``ops`` table) and nothing of how points are scheduled.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from atleus_dist.results import atomic
from atleus_dist.results.codes import tier_names
from atleus_dist.results.manifest import read_manifest, write_manifest
from atleus_dist.results.reader import read_table

SWEEP_TABLE = "sweep.parquet"
# (figure, Arrow type): the summary figures a sweep row carries, in column order; absent -> null
FIGURES = (("step_latency_ps", pa.int64()), ("step_latency_ms", pa.float64()), ("tokens", pa.int64()),
           ("tokens_per_s", pa.float64()), ("energy_pj", pa.float64()), ("energy_j", pa.float64()),
           ("energy_per_token_pj", pa.float64()), ("edp_j_s", pa.float64()),
           ("reram_energy_share", pa.float64()), ("reram_busy_share", pa.float64()), ("ops", pa.int64()),
           ("noc_energy_pj", pa.float64()), ("packet_latency_mean_ps", pa.float64()))
STATUSES = ("pending", "complete", "failed", "interrupted")


def row_figures(run_dir: str | os.PathLike) -> dict:
    """The figures of one finished point directory that go into its sweep row."""
    manifest = read_manifest(run_dir)
    fig = dict(manifest.get("figures") or {})
    try:
        ops = read_table(run_dir, "ops")
    except FileNotFoundError:
        ops = None
    if ops is not None and ops.num_rows:
        reram = [t for t, name in tier_names(ops, manifest).items() if name.startswith("reram")]
        in_reram = pc.is_in(ops.column("tier"), value_set=pa.array(reram, ops.column("tier").type))
        busy = pc.subtract(ops.column("end_ps"), ops.column("start_ps"))
        energy = ops.column("energy_pj")
        for name, values in (("reram_energy_share", energy), ("reram_busy_share", busy)):
            total = pc.sum(values).as_py() or 0
            part = pc.sum(pc.filter(values, in_reram)).as_py() or 0
            fig[name] = float(part) / float(total) if total else None
    out = {name: fig.get(name) for name, _t in FIGURES}
    # a bottleneck figure, when the summary gives one, is carried as it is
    out.update({k: v for k, v in fig.items() if k.startswith("bottleneck")})
    return out


@functools.lru_cache(maxsize=64)  # the same columns at every save of one sweep (YAML-parsed each time)
def _typed(values: tuple[str, ...]) -> pa.Array:
    """Raw grid values as the narrowest column that holds them all: int64, float64, bool or string."""
    parsed = []
    for v in values:
        try:
            parsed.append(yaml.safe_load(v))
        except yaml.YAMLError:
            parsed.append(v)
    if all(isinstance(p, bool) for p in parsed):
        return pa.array(parsed, pa.bool_())
    if all(isinstance(p, int) and not isinstance(p, bool) for p in parsed):
        return pa.array(parsed, pa.int64())
    if all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in parsed):
        return pa.array([float(p) for p in parsed], pa.float64())
    return pa.array(list(values), pa.string())


def sweep_table(keys: list[str], points: list, state: dict[str, dict]) -> pa.Table:
    """One row per point in ``points`` order; ``state[id]`` holds status, error, wall_s, figures."""
    cols: dict[str, pa.Array] = {"point": pa.array([p.id for p in points], pa.string())}
    for k in keys:
        cols[k] = _typed(tuple(p.values()[k] for p in points))
    rows = [state.get(p.id, {}) for p in points]
    cols["status"] = pa.array([r.get("status", "pending") for r in rows], pa.string())
    cols["error"] = pa.array([r.get("error") for r in rows], pa.string())
    cols["wall_s"] = pa.array([r.get("wall_s") for r in rows], pa.float64())
    figs = [r.get("figures") or {} for r in rows]
    for name, typ in FIGURES:
        cols[name] = pa.array([f.get(name) for f in figs], typ)
    extra = sorted({k for f in figs for k in f if k.startswith("bottleneck")})
    for name in extra:
        cols[name] = pa.array([f.get(name) for f in figs])
    meta = {"atleus.table": "sweep", "atleus.swept_keys": ",".join(keys), "atleus.wallclock_columns": "wall_s"}
    return pa.table(cols).replace_schema_metadata(meta)


def write_table(out_root: Path, table: pa.Table) -> Path:
    path = out_root / SWEEP_TABLE
    with atomic.replacing(path) as tmp:
        pq.write_table(table, tmp)
    return path


def sweep_manifest(base: dict, keys: list[str], axes: dict, points: list, state: dict[str, dict],
                   status: str, started: str, finished: str | None, execution: dict) -> dict:
    counts = {s: 0 for s in STATUSES}
    for p in points:
        counts[state.get(p.id, {}).get("status", "pending")] += 1
    return {"command": "sweep", "status": status, "base": base, "keys": keys, "grid": axes,
            "started": started, "finished": finished, "execution": execution, "counts": counts,
            "points": [{"id": p.id, "params": p.values(),
                        **{k: v for k, v in state.get(p.id, {}).items() if k != "figures"}} for p in points]}


def write_sweep_manifest(out_root: Path, data: dict) -> None:
    write_manifest(out_root, data)


def read_previous(out_root: Path) -> dict | None:
    """The sweep manifest already in ``out_root``, or None."""
    try:
        data = read_manifest(out_root)
    except (FileNotFoundError, ValueError):
        return None
    return data if data.get("command") == "sweep" else {"command": data.get("command")}

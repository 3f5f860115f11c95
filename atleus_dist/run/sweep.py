"""Design-space sweeps: many complete runs, one dataset, resumable.

``run_sweep`` expands the grid (:mod:`atleus_dist.run.sweep_grid`), validates every point before
anything is written (a bad value anywhere is a :class:`ConfigError` naming the point and the key),
skips points whose directory already holds a complete run of the same resolved config, and runs
the others - ``inline`` one after another, ``local`` on a process pool (one point per worker, each
point's simulation in-process unless it asks for several LP groups), ``ray`` as one Ray task per
point (:mod:`atleus_dist.backends.ray_sweep`). A point that fails does not stop the sweep: its row
says why. Ctrl-C stops the points that run, keeps every finished one and marks the sweep
``interrupted``; running the same command again resumes.

Each point is ``DIR/points/<id>/``, the same directory ``atleus-dist run`` writes (same manifest,
tables, summary and digest); ``DIR/sweep.parquet`` and ``DIR/manifest.json`` describe the sweep.

Knows runs as black boxes (``run_point``) and processes; Ray lives in ``backends/ray_sweep.py``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pyarrow as pa

from atleus_dist.kernel import ConfigError
from atleus_dist.results import SinkFactory, read_manifest
from atleus_dist.results.manifest import MANIFEST, now_utc
from atleus_dist.config.load import load_run_config
from atleus_dist.run.scenario_run import TRANSPORTS, build
from atleus_dist.run.simulate import build_named, execute_built, scenario_name
from atleus_dist.run.sweep_grid import Point, axes_of, expand
from atleus_dist.run.sweep_table import (read_previous, row_figures, sweep_manifest, sweep_table, write_sweep_manifest,
                                         write_table)

SWEEP_BACKENDS = ("local", "ray", "inline")
POINTS = "points"
SAVE_EVERY_S = 2.0  # rewrite sweep.parquet and the manifest at most this often while points finish


# --- one point -----------------------------------------------------------------------------------
def run_point(point: Point, out_dir: Path) -> dict:
    """One complete ``run`` of ``point`` into ``out_dir`` (:func:`atleus_dist.run.simulate.execute_built`, as ``run``: the
    directory, manifest, tables and summary ``atleus-dist run`` writes) and its figures. The only
    place a sweep simulates."""
    built = build_named(point.scenario, point.arch, list(point.sets), str(out_dir), **_flags(point))
    _path, manifest, _stats = execute_built(built, "run", str(out_dir), progress=False)
    return manifest["figures"]


def _flags(point: Point) -> dict:
    """How a point runs: in-process unless it asks for several LP groups."""
    return {"transport": point.transport, "backend": "inline" if point.workers == 1 else "local",
            "workers": point.workers}


def _jsonable(config: dict) -> dict:
    return json.loads(json.dumps(config, sort_keys=True, default=str))


def validate_point(point: Point, out_dir: Path) -> dict:
    """Resolve the point (nothing written); say whether ``out_dir`` already holds its complete run."""
    try:
        cfg = load_run_config(scenario_name(point.scenario), point.arch, list(point.sets), **_flags(point))[0]
        built = build(cfg, sink_factory=SinkFactory(str(out_dir)))
    except ConfigError as exc:
        return {"error": str(exc)}
    done = None
    if (out_dir / MANIFEST).is_file():
        try:
            man = read_manifest(out_dir)
        except ValueError:
            man = {}
        if man.get("status") == "complete" and man.get("config") == _jsonable(built.config):
            done = row_figures(out_dir)
    return {"error": None, "cost": (built.config.get("ops", 0), built.spec.n_lps), "done": done}


def point_task(point: Point, out_dir: Path) -> dict:
    """Run one point where it is scheduled; never raises for the point's own failure."""
    t0 = time.perf_counter()
    try:  # a pool worker ignores Ctrl-C while idle; a running point stops on it (and says so)
        old = signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread
        old = None
    try:
        if out_dir.exists():  # an interrupted or failed attempt, or a stale config: start afresh
            shutil.rmtree(out_dir)
        run_point(point, out_dir)
        return {"status": "complete", "error": None, "wall_s": time.perf_counter() - t0,
                "figures": row_figures(out_dir)}
    except KeyboardInterrupt:
        return {"status": "interrupted", "error": "KeyboardInterrupt", "wall_s": time.perf_counter() - t0}
    except Exception as exc:  # noqa: BLE001 - any failure of one point is that point's row
        msg = str(exc).splitlines()[0] if str(exc) else ""
        return {"status": "failed", "error": f"{type(exc).__name__}: {msg}", "wall_s": time.perf_counter() - t0}
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)


# --- progress ------------------------------------------------------------------------------------
class Progress:
    """done / running / failed across points on stderr; ETA from the wall times of points finished
    in this invocation, spread over the points that can run at once."""

    def __init__(self, total: int, skipped: int, concurrency: int, enabled: bool) -> None:
        self.total, self.skipped, self.concurrency, self.enabled = total, skipped, max(1, concurrency), enabled
        self.done, self.failed, self.interrupted, self.walls, self.t0 = skipped, 0, 0, [], time.monotonic()

    def finished(self, point: Point, result: dict) -> None:
        if result["status"] == "complete":
            self.done += 1
        elif result["status"] == "failed":
            self.failed += 1
        else:
            self.interrupted += 1
        self.walls.append(result.get("wall_s") or 0.0)
        if not self.enabled:
            return
        left = self.total - self.done - self.failed - self.interrupted
        running = min(self.concurrency, left)
        elapsed = time.monotonic() - self.t0
        eta = sum(self.walls) / len(self.walls) * left / self.concurrency
        note = "" if result["status"] == "complete" else f" ({result.get('error')})"
        sys.stderr.write(f"[sweep] {self.done}/{self.total} done ({self.skipped} skipped)  {running} running  "
                         f"{self.failed} failed  elapsed {elapsed:,.1f}s  eta {eta:,.1f}s  | {point.id} "
                         f"{result['status']} {result.get('wall_s') or 0:.2f}s{note}\n")
        sys.stderr.flush()


# --- schedulers ------------------------------------------------------------------------------------
# In a pool worker only: the parent's stop event, set by _pool_init. The executor hands queued
# points to workers before they can be cancelled, so after Ctrl-C a worker must refuse new ones.
_WORKER_STOP: list = []


def _pool_init(stop) -> None:
    # Ctrl-C reaches every process of the terminal's group: an idle worker ignores it (the parent
    # decides), a running point turns it into KeyboardInterrupt (point_task installs the handler)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_STOP[:] = [stop]


def _pool_task(point: Point, out_dir: Path) -> dict:
    if _WORKER_STOP and _WORKER_STOP[0].is_set():
        return {"status": "interrupted", "error": "sweep interrupted before the point ran", "wall_s": None}
    return point_task(point, out_dir)


def make_pool(processes: int) -> ProcessPoolExecutor:
    # fork: workers start with the package already imported (spawn costs ~0.3 s of imports each,
    # which is most of a small point); points that use several LP groups spawn their own workers
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    stop = ctx.Event()
    pool = ProcessPoolExecutor(max_workers=processes, mp_context=ctx, initializer=_pool_init, initargs=(stop,))
    pool.stop_event, pool.size = stop, processes  # the parent sets the event on Ctrl-C
    return pool


def _run_inline(jobs: list[Point], out_root: Path, on_done) -> None:
    for p in jobs:
        result = point_task(p, out_root / POINTS / p.id)
        on_done(p, result)
        if result["status"] == "interrupted":
            raise KeyboardInterrupt


def _kill(workers: dict) -> None:
    """SIGKILL every process of a broken pool (its teardown's SIGTERM leaves them time to write)."""
    for proc in workers.values():
        if proc.is_alive():
            proc.kill()
    for proc in workers.values():
        proc.join(5)


def _run_pool(pool: ProcessPoolExecutor, jobs: list[Point], out_root: Path, on_done) -> None:
    """Run ``jobs`` on ``pool``. A worker that dies (killed, out of memory) breaks the whole pool:
    the points that had started (their directory exists: stale ones are removed first) fail, saying
    so, and the ones that had not are run again on a fresh pool - each break fails at least one
    point, so this ends."""
    for p in jobs:
        if (out_root / POINTS / p.id).exists():
            shutil.rmtree(out_root / POINTS / p.id)
    futures, broken = {}, []
    for i, p in enumerate(jobs):
        try:
            futures[pool.submit(_pool_task, p, out_root / POINTS / p.id)] = p
        except BrokenProcessPool:  # a worker died while the rest were still being queued
            broken.extend(jobs[i:])
            break
    pending = set(futures)
    workers = dict(getattr(pool, "_processes", None) or {})  # started by the submissions above
    try:
        for fut in as_completed(futures):
            pending.discard(fut)
            try:
                result = fut.result()
            except BrokenProcessPool:
                broken.append(futures[fut])
                continue
            if result["status"] == "interrupted":  # not by Ctrl-C here (that raises below): the pool's
                broken.append(futures[fut])  # teardown after a dead worker stopped it (SIGTERM)
                continue
            on_done(futures[fut], result)
    except KeyboardInterrupt:
        pool.stop_event.set()
        for fut in pending:
            fut.cancel()
        for pid in list(getattr(pool, "_processes", {}) or {}):  # if only this process got the signal
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        for fut in pending:
            if fut.cancelled():
                continue
            try:
                on_done(futures[fut], fut.result(timeout=60))
            except Exception:  # noqa: BLE001 - a worker that cannot answer leaves its point pending
                pass
        raise
    if broken:  # no worker of the broken pool may still write a point while the fresh pool reruns it
        _kill(workers)
    again = [p for p in broken if not (out_root / POINTS / p.id).exists()]
    for p in broken:
        if p not in again:
            on_done(p, {"status": "failed", "wall_s": None, "error": "BrokenProcessPool: a worker process died "
                        "(killed or out of memory) while this point ran"})
    if again:
        fresh = make_pool(pool.size)
        try:
            _run_pool(fresh, again, out_root, on_done)
        finally:
            fresh.shutdown(wait=True, cancel_futures=True)


# --- the sweep -----------------------------------------------------------------------------------
def _check_out(out_root: Path, base: dict) -> dict | None:
    if not out_root.exists():
        return None
    if not out_root.is_dir():
        raise ConfigError("out", f"{str(out_root)!r} is not a directory")
    prev = read_previous(out_root)
    if prev is None:
        if any(out_root.iterdir()):
            raise ConfigError("out", f"{str(out_root)!r} is not empty and holds no sweep; choose a new directory")
        return None
    if prev.get("command") != "sweep":
        raise ConfigError("out", f"{str(out_root)!r} holds a {prev.get('command')!r} run, not a sweep")
    if prev.get("base") != base:
        raise ConfigError("out", f"{str(out_root)!r} holds a sweep of another base configuration "
                          f"({prev.get('base')}); choose a new directory or the same scenario/--arch/--set")
    return prev


def _cpus() -> int:
    """CPUs this process may use (its affinity mask, which a container's cpuset narrows)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_sweep(out: str | os.PathLike, scenario: str | None = None, grid: list[str] = (), zips: list[str] = (),
              arch: str | None = None, transport: str = "noc", sets: list[str] = (), backend: str = "local",
              workers: int | None = None, point_workers: int = 1, address: str | None = None,
              ray_results: str = "auto", progress: bool = True) -> pa.Table:
    """Run every point of the sweep not already complete in ``out``; the sweep table (also written
    as ``out/sweep.parquet``). Bad input raises :class:`ConfigError` before anything is written;
    Ctrl-C re-raises KeyboardInterrupt after marking the sweep ``interrupted``."""
    if backend not in SWEEP_BACKENDS:
        raise ConfigError("backend", f"unknown sweep backend {backend!r}", allowed=", ".join(SWEEP_BACKENDS))
    if transport not in TRANSPORTS:
        raise ConfigError("transport", f"unknown transport {transport!r}", allowed=", ".join(TRANSPORTS))
    if workers is not None and workers <= 0:
        raise ConfigError("workers", f"must be a positive integer, got {workers}")
    if ray_results not in ("auto", "shared", "driver"):
        raise ConfigError("ray_results", f"unknown results mode {ray_results!r}", allowed="auto, shared, driver")
    grid, zips, sets = list(grid), list(zips), list(sets)
    keys, points = expand(scenario, arch, transport, sets, grid, zips, point_workers)
    out_root = Path(out)
    base = {"scenario": scenario, "arch": arch, "transport": transport, "sets": sets}
    prev = _check_out(out_root, base)
    if backend == "local":
        slots = max(1, (workers or _cpus()) // point_workers)
    else:
        slots = 1 if backend == "inline" else (workers or len(points) or 1)
    pool = make_pool(min(slots, max(1, len(points)))) if backend == "local" else None
    try:
        return _sweep(out_root, keys, points, base, prev, backend, pool, slots, point_workers, address,
                      ray_results, progress, grid, zips, workers)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _sweep(out_root, keys, points, base, prev, backend, pool, slots, point_workers, address, ray_results,
           progress, grid, zips, workers) -> pa.Table:
    dirs = [out_root / POINTS / p.id for p in points]
    if pool is not None:  # validation is most of a rerun's work: in parallel too
        # handed out last grid value first: grids are written ascending and a point's build grows
        # with its values (seq, tiers...), so the small builds come last and even the workers out
        # before the barrier (every point validated before any runs); results in grid order
        checks = list(pool.map(validate_point, points[::-1], dirs[::-1]))[::-1]
    else:
        checks = [validate_point(p, d) for p, d in zip(points, dirs)]
    for p, c in zip(points, checks):
        if c["error"]:
            raise ConfigError(f"point {p.id}", c["error"])
    # everything is valid: from here on the sweep writes
    old = {e["id"]: e for e in (prev or {}).get("points", [])}
    state: dict[str, dict] = {}
    for p, c in zip(points, checks):
        if c["done"] is not None:
            state[p.id] = {"status": "complete", "error": None, "wall_s": old.get(p.id, {}).get("wall_s"),
                           "figures": c["done"], "computed": False}
    cost = {p.id: c["cost"] for p, c in zip(points, checks)}
    # longest first, so the workers end together: ops as the cost, LPs (tiers) between equal ops -
    # a stub point of 5 ReRAM tiers runs ~20% longer than the same ops on 4 (one more LP's rounds)
    jobs = sorted((p for p, c in zip(points, checks) if c["done"] is None),
                  key=lambda p: (-cost[p.id][0], -cost[p.id][1]))
    try:
        (out_root / POINTS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("out", f"cannot create sweep directory {str(out_root)!r}: {exc.strerror}") from None
    axes = {"grid": grid, "zip": zips, "axes": [list(ks) for ks, _v in axes_of(grid, zips)]}
    execution = {"backend": backend, "workers": workers, "concurrency": slots, "point_workers": point_workers,
                 "address": address}
    started = now_utc()
    saved = [time.monotonic()]

    def save(status: str, force: bool = False, table: bool = True) -> pa.Table | None:
        if not force and time.monotonic() - saved[0] < SAVE_EVERY_S:
            return None
        saved[0] = time.monotonic()
        t = sweep_table(keys, points, state)
        if table:
            write_table(out_root, t)
        write_sweep_manifest(out_root, sweep_manifest(base, keys, axes, points, state, status, started,
                                                      None if status == "running" else now_utc(), execution))
        return t

    # the manifest says `running` before any point starts; the table follows as points finish
    save("running", force=True, table=False)
    prog = Progress(len(points), len(points) - len(jobs), slots, progress)

    def on_done(point: Point, result: dict) -> None:
        state[point.id] = dict(result, computed=True)
        prog.finished(point, result)
        save("running")

    try:
        if not jobs:
            if progress:
                sys.stderr.write(f"[sweep] all {len(points)} points already complete in {out_root}\n")
        elif backend == "inline":
            _run_inline(jobs, out_root, on_done)
        elif backend == "local":
            _run_pool(pool, jobs, out_root, on_done)
        else:
            from atleus_dist.backends import ray_sweep

            ray_sweep.run(jobs, out_root, point_task, on_done, address=address, max_in_flight=workers,
                          cpus_per_point=point_workers, results=ray_results)
    except KeyboardInterrupt:
        for p in jobs:
            if p.id not in state:
                state[p.id] = {"status": "interrupted", "error": "sweep interrupted before the point ran",
                               "wall_s": None, "computed": False}
        save("interrupted", force=True)
        raise
    failed = any(state[p.id]["status"] != "complete" for p in points)
    return save("failed" if failed else "complete", force=True)

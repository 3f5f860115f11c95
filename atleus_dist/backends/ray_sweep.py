"""Sweep points as Ray tasks: one task per point, requesting the CPUs the point uses, on any node.

Ray is imported here (and in ``ray_backend``) only. A task runs the plain ``task(point, out_dir)``
function it is given (``atleus_dist.run.sweep.point_task``), so nothing here knows what a point is
beyond its ``id``. Where results go (``results``):

- ``shared``: the task writes ``DIR/points/<id>/`` itself - ``--out`` is on a filesystem every node
  mounts at the same path (NFS, the one disk of a single machine);
- ``driver``: the task runs into a temporary directory on its node and returns the files; the
  driver writes them, manifest last, so a point is never complete before all its tables are;
- ``auto`` (default): ``shared`` on a node that can read the token the driver wrote into
  ``DIR``, else ``driver``.

Without an address a private local Ray instance is started as ``ray_backend`` starts one (never
whatever cluster happens to run on the machine; no dashboard) and stopped at the end. Ray itself
resolves a node address of 127.0.0.1 to the machine's own IP (``services.resolve_ip_for_localhost``),
so passing ``_node_ip_address`` would not confine it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

from atleus_dist.kernel import ConfigError

RESULTS = ("auto", "shared", "driver")
TOKEN = ".sweep-token"


def _pack(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def _unpack(files: dict[str, bytes], run_dir: Path) -> None:
    if run_dir.exists():
        shutil.rmtree(run_dir)
    manifest = files.get("manifest.json")
    for rel, data in files.items():
        if rel != "manifest.json":
            path = run_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    if manifest is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "manifest.json").write_bytes(manifest)


def point_on_node(task, point, out_root: str, token: str, results: str) -> tuple[dict, dict | None]:
    """The body of one Ray task (a plain function, testable without Ray)."""
    import ray

    root = Path(out_root)
    shared = results == "shared"
    if results == "auto":
        try:
            shared = (root / TOKEN).read_text() == token
        except OSError:
            shared = False
    if shared:
        result, files = task(point, root / "points" / point.id), None
    else:
        tmp = Path(tempfile.mkdtemp(prefix="atleus-sweep-"))
        try:
            result = task(point, tmp / point.id)
            files = _pack(tmp / point.id) if (tmp / point.id).is_dir() else {}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    result["node"] = ray.get_runtime_context().get_node_id()
    result["results_via"] = "shared" if shared else "driver"
    return result, files


def run(jobs: list, out_root: Path, task, on_done, address: str | None = None, max_in_flight: int | None = None,
        cpus_per_point: float = 1, results: str = "auto") -> None:
    """Run ``task`` for every point of ``jobs`` (longest first) and call ``on_done(point, result)``
    as each finishes. Ctrl-C cancels the tasks still running and re-raises."""
    import ray

    if results not in RESULTS:
        raise ConfigError("ray_results", f"unknown results mode {results!r}", allowed=", ".join(RESULTS))
    started_here = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=True)
        else:
            cpus = int(max_in_flight or os.cpu_count() or 1) * max(1, int(cpus_per_point))
            ray.init(address="local", num_cpus=cpus,
                     include_dashboard=False, log_to_driver=True)
        started_here = True
    token = secrets.token_hex(16)
    (out_root / TOKEN).write_text(token)
    remote = ray.remote(num_cpus=cpus_per_point, scheduling_strategy="SPREAD")(point_on_node)
    todo = list(jobs)
    running: dict = {}
    try:
        while todo or running:
            while todo and (max_in_flight is None or len(running) < max_in_flight):
                p = todo.pop(0)
                running[remote.remote(task, p, str(out_root), token, results)] = p
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                p = running.pop(ref)
                try:
                    result, files = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the task's node or worker died
                    result, files = {"status": "failed", "error": f"{type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else ''}", "wall_s": None}, None
                if files is not None:
                    _unpack(files, out_root / "points" / p.id)
                on_done(p, result)
    except KeyboardInterrupt:
        for ref in running:
            ray.cancel(ref, force=True)
        raise
    finally:
        (out_root / TOKEN).unlink(missing_ok=True)
        if started_here:
            ray.shutdown()

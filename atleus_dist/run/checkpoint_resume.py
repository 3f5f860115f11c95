"""``atleus-dist resume RUN``: continue a killed or interrupted run from its newest checkpoint.

What a resume does, in order (nothing is touched until every check passed):

1. reads the manifest (a ``complete`` run has nothing to resume; one whose process is alive is
   refused) and the checkpoint: ``checkpoint.json`` must be this run's (the run id the manifest
   holds) and every file must have the size and SHA-256 it lists - a corrupt or foreign checkpoint
   is refused naming the file;
2. rebuilds the run from the resolved configuration the manifest recorded (``checkpoint.rebuild``)
   on the backend, worker count and partition asked for, and checks that it is the same run (same
   configuration apart from how it is executed; on the checkpoint's partition, the same LPs); on
   another partition the checkpoint's state is re-sliced onto the new LPs in memory
   (:mod:`atleus_dist.run.reslice`) - a partition that cannot be built, or state that cannot move,
   is refused naming ``--partition``;
3. checks every result stream the checkpoint recorded: the file must start with exactly the bytes
   the writer had written at the checkpoint (their SHA-256); streams are then *cut back* to those
   positions and *continued* by the resumed writers, so each stays one stream and a completed
   resumed run seals and verifies like any other; streams and close records written after the
   checkpoint, and any Parquet file, are removed; re-sliced states are written beside the
   checkpoint, and streams of LP indices the partition lacks are closed at their positions
   (*retired*, listed by every later checkpoint);
4. (:func:`atleus_dist.api.resume`, with the :class:`Resume` built here) runs the simulation from
   the checkpoint: every LP is built by the run's own factory and its saved state written into it
   (:meth:`LogicalProcess.restore_state`), checkpoints continue at the same interval, and the
   manifest records the resume (``resumes``).

The state is saved per LP; a resume on the checkpoint's partition restores each LP as saved, one
on another re-slices it first. Knows nothing of argument parsing or terminal output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

from atleus_dist.backends.hygiene import pid_alive
from atleus_dist.config.tree import rename, to_data
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.results import SinkFactory
from atleus_dist.results.manifest import read_manifest
from atleus_dist.results.stream import file_sha256
from atleus_dist.results.writer import CLOSE_RECORD_SUFFIX, lp_file
from atleus_dist.run import reslice
from atleus_dist.run.checkpoint import CKPT_DIR, FORMAT, META, VERSION, CheckpointPlan, check_every_ps, read_lp_state

_EXECUTION_KEYS = ("execution", "partition", "plan")


def checkpoint_setup(built, command: str, out: str, every_ps: int | None) -> tuple[CheckpointPlan | None, dict]:
    """The plan of a new run with checkpoints, and what its manifest must hold to be resumed."""
    if check_every_ps(every_ps) is None:
        return None, {}
    if built.run_config.execution.backend == "ray":
        raise ConfigError("--checkpoint-every-ps", "checkpoints are written on the inline and local backends "
                          "(a run may be resumed on ray)")
    info = {"run_id": uuid.uuid4().hex, "every_ps": every_ps, "pid": os.getpid(),
            "partition": built.config.get("partition"), "n_lps": built.spec.n_lps,
            "rebuild": {"api": "simulate", "command": command, "run_config": to_data(built.run_config)}}
    plan = CheckpointPlan(str(out), every_ps, len(built.spec.groups), identity={"run_id": info["run_id"]},
                          partition=info["partition"])
    return plan, {"checkpoint": info}


def noc_checkpoint_setup(cfg, spec, transfers, backend: str, out: str,
                         every_ps: int | None) -> tuple[CheckpointPlan | None, dict]:
    """:func:`checkpoint_setup` of a ``noc`` run (its NocConfig with the partition resolved)."""
    if check_every_ps(every_ps) is None:
        return None, {}
    if backend == "ray":
        raise ConfigError("--checkpoint-every-ps", "checkpoints are written on the inline and local backends "
                          "(a run may be resumed on ray)")
    info = {"run_id": uuid.uuid4().hex, "every_ps": every_ps, "pid": os.getpid(), "partition": cfg.partition,
            "n_lps": spec.n_lps,
            "rebuild": {"api": "noc", "command": "noc", "noc_config": to_data(cfg), "backend": backend,
                        "workers": len(spec.groups), "transfers": [list(t) for t in transfers]}}
    plan = CheckpointPlan(str(out), every_ps, len(spec.groups), identity={"run_id": info["run_id"]},
                          partition=cfg.partition)
    return plan, {"checkpoint": info}


# --- reading a checkpoint ---------------------------------------------------------------------

def load_meta(ckpt: Path, run_id: str, field: str = "run") -> dict:
    """``checkpoint.json`` of ``ckpt``, checked to be this run's and to match every file it lists."""
    meta_path = ckpt / META
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise ConfigError(field, f"{meta_path}: missing (not a checkpoint)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(field, f"{meta_path}: not a checkpoint description ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("files"), dict):
        raise ConfigError(field, f"{meta_path}: not an atleus-dist checkpoint")
    if meta.get("version") != VERSION:
        raise ConfigError(field, f"{meta_path}: checkpoint format version {meta.get('version')!r}, "
                          f"this atleus-dist reads {VERSION}")
    if (meta.get("run") or {}).get("run_id") != run_id:
        raise ConfigError(field, f"{meta_path}: belongs to another run (run id differs from the manifest's)")
    for name, rec in sorted(meta["files"].items()):
        path = ckpt / name
        if not path.is_file():
            raise ConfigError(field, f"{path}: missing from the checkpoint")
        n, sha = file_sha256(path)
        if n != rec.get("bytes") or sha != rec.get("sha256"):
            raise ConfigError(field, f"{path}: {'size' if n != rec.get('bytes') else 'SHA-256'} differs from "
                              f"{META} (the checkpoint is corrupt)")
    return meta


def find_checkpoint(run_dir: Path, name: str | None, run_id: str) -> tuple[Path, dict]:
    """The newest checkpoint (or the one named), verified."""
    root = run_dir / CKPT_DIR
    names = sorted(p.name for p in root.glob("ckpt-*")) if root.is_dir() else []
    if name is not None:
        if name not in names:
            raise ConfigError("--checkpoint", f"{root / name}: no such checkpoint", allowed=", ".join(names) or "none")
        return root / name, load_meta(root / name, run_id, "--checkpoint")
    if not names:
        raise ConfigError("run", f"{root}: no checkpoint written yet (the run stopped before its first)")
    return root / names[-1], load_meta(root / names[-1], run_id)


@dataclasses.dataclass(frozen=True)
class RestoringFactory:
    """Picklable ``lp_factory``: the run's own factory, then the checkpoint's state written in."""

    inner: object
    ckpt_dir: str

    def __getattr__(self, name: str):  # the inner factory's other services (compiled_plane)
        if name.startswith("__") or name in ("inner", "ckpt_dir"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __call__(self, lp_id: int, sink):
        lp = self.inner(lp_id, sink)
        rec = read_lp_state(self.ckpt_dir, lp_id)
        lp.restore_state(rec["state"], rec["arrays"])
        return lp


@dataclasses.dataclass(frozen=True)
class ResumingSinkFactory:
    """Picklable ``sink_factory``: the run's sinks, each stream continued from its checkpoint position."""

    inner: object
    ckpt_dir: str

    def __call__(self, lp: int):
        sink = self.inner(lp)
        sink.resume(read_lp_state(self.ckpt_dir, lp)["streams"])
        return sink


# --- the result streams -----------------------------------------------------------------------

def prepare_streams(run_dir: Path, ckpt_dir: Path, lps: list[int], retired: dict | None = None) -> None:
    """Check that every recorded stream (and every ``retired`` one: name -> position) starts with
    the bytes written at the checkpoint, then remove what was written after it that the resumed
    writers will not continue."""
    keep = set()
    recorded = [(lp_file(run_dir, table, lp), pos) for lp in lps
                for table, pos in read_lp_state(ckpt_dir, lp)["streams"].items()]
    recorded += [(run_dir / rel, pos) for rel, pos in sorted((retired or {}).items())]
    for path, pos in recorded:
        if not path.is_file() or path.stat().st_size < pos["bytes"]:
            raise ConfigError("run", f"{path}: shorter than at the checkpoint ({pos['bytes']} bytes); cannot resume")
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            left = pos["bytes"]
            while left > 0:
                chunk = fh.read(min(left, 1 << 20))
                h.update(chunk)
                left -= len(chunk)
        if h.hexdigest() != pos["sha256"]:
            raise ConfigError("run", f"{path}: differs from the checkpoint before its recorded position "
                              f"({pos['bytes']} bytes); cannot resume")
        keep.add(path)
    for path in run_dir.glob(f"*/lp*.arrows{CLOSE_RECORD_SUFFIX}*"):
        path.unlink()
    for path in run_dir.glob("*/lp*.arrows"):
        if path not in keep:
            path.unlink()
    for path in list(run_dir.glob("*.parquet")) + list(run_dir.glob(".*.parquet.tmp")):
        path.unlink()
    for tmp in (run_dir / CKPT_DIR).glob(".*"):  # parts of a checkpoint never committed, or half deleted
        shutil.rmtree(tmp, ignore_errors=True)
    for later in (run_dir / CKPT_DIR).glob("ckpt-*"):  # resuming from an older one: the newer ones
        if later.name > ckpt_dir.name:  # describe streams about to be rewritten
            shutil.rmtree(later, ignore_errors=True)


# --- the resume -------------------------------------------------------------------------------

def _pid_alive(pid) -> bool:
    """Whether the run's recorded owner still runs (a recycled pid of another program does not count)."""
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid() or not pid_alive(pid):
        return False
    try:
        return b"atleus" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def _comparable(config: dict) -> dict:
    out = {k: v for k, v in config.items() if k not in _EXECUTION_KEYS}
    if isinstance(out.get("noc"), dict):
        out["noc"] = {k: v for k, v in out["noc"].items() if k != "partition"}
    if isinstance(out.get("system"), dict):  # a system of chips: how its LPs are grouped
        out["system"] = {k: v for k, v in out["system"].items() if k not in ("partition", "lps_of_chip", "plan")}
    return json.loads(json.dumps(out, sort_keys=True, default=str))


@dataclasses.dataclass
class Resume:
    """A checked resume, ready to execute: :func:`atleus_dist.api.resume` runs it."""

    path: Path
    manifest: dict  # the run's, with the resume recorded
    command: str
    spec: object
    plan: CheckpointPlan | None
    execution: object  # backend, workers, address, placement
    sim_time_ps: int
    built: object = None  # a ``run``: its Built (scenario, config); None for ``noc``
    noc_config: object = None  # a ``noc`` run: its NocConfig


def plan_resume(run_dir, *, backend: str | None = None, workers: int | None = None, partition: str | None = None,
                checkpoint: str | None = None) -> Resume:
    """Steps 1-3 of the module docstring for the run in ``run_dir``; nothing is changed on disk
    before every check passed (then the streams are cut back)."""
    path = Path(run_dir)
    manifest = read_manifest(path, field="run")
    info = manifest.get("checkpoint")
    if manifest["status"] == "complete":
        raise ConfigError("run", f"{path} is complete; there is nothing to resume")
    if not isinstance(info, dict) or not isinstance(info.get("rebuild"), dict):
        raise ConfigError("run", f"{path} was not run with --checkpoint-every-ps; it cannot be resumed")
    if manifest["status"] == "running" and _pid_alive(info.get("pid")):
        raise ConfigError("run", f"{path} is still running (process {info['pid']}); stop it before resuming")
    ckpt, meta = find_checkpoint(path, checkpoint, info["run_id"])
    resolved = reslice.partition_of(meta, manifest)  # the checkpoint's LPs
    retired = reslice.retired_of(meta)
    rb = info["rebuild"]
    try:
        if rb.get("api") == "noc":
            built, cfg, spec0, config = _rebuild_noc(rb, partition or resolved, backend, workers)
        else:
            built, cfg, spec0, config = _rebuild_run(rb, partition or resolved, backend, workers)
    except ConfigError as exc:
        if partition is None or "partition" not in exc.field:
            raise
        raise rename(exc, "--partition") from None
    new_partition = spec0.meta.get("partition") or config.get("partition")
    if spec0.meta.get("model") == "system":  # single and chips hold the same LPs, grouped otherwise
        chip_of = (lambda p: p if p.startswith("chips:") else "chips:single")
        if chip_of(new_partition) != chip_of(resolved):
            raise ConfigError("--partition", f"a system of chips resumes with its chips cut as before "
                              f"({resolved}); single and chips are alike", allowed="single, chips")
        resolved = new_partition
    if _comparable(config) != _comparable(manifest["config"]):
        raise ConfigError("run", f"{path}: the configuration rebuilt from the manifest is not the run's "
                          f"(the software or a workload file changed since); cannot resume")
    states, state_at = None, ckpt
    if new_partition != resolved:  # the checkpoint's state moved to the LPs of another partition
        states, retired = reslice.reslice_checkpoint(ckpt, meta, resolved, spec0.lp_factory, spec0.n_lps, retired)
        state_at = reslice.state_dir(ckpt)
    elif spec0.n_lps != meta["n_lps"]:
        raise ConfigError("run", f"{path}: the configuration rebuilt from the manifest is not the run's "
                          f"(the software or a workload file changed since); cannot resume")
    spec = dataclasses.replace(spec0, first_round=int(meta.get("round", 0)),
                               lp_factory=RestoringFactory(spec0.lp_factory, str(state_at)),
                               sink_factory=ResumingSinkFactory(SinkFactory(str(path)), str(state_at)))
    prepare_streams(path, ckpt, meta["lps"], reslice.retired_of(meta))
    if states is not None:
        reslice.write_states(state_at, states)
    if retired:
        reslice.close_retired(path, retired)
    ex = cfg.execution
    plan = None if ex.backend == "ray" else CheckpointPlan(str(path), int(info["every_ps"]), len(spec.groups),
                                                         identity={"run_id": info["run_id"]},
                                                         partition=new_partition, retired=retired,
                                                         base={"rounds": int(meta.get("round", 0)),
                                                               "wall_s": float(meta.get("wall_s", 0.0))})
    entry = {"checkpoint": ckpt.name, "sim_time_ps": meta["sim_time_ps"], "backend": ex.backend,
             "workers": ex.workers, "groups": spec.groups, "pid": os.getpid(), "previous_status": manifest["status"],
             "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
             # what the run had done at the checkpoint (from its start): the figures count the rest
             "rounds_before": meta.get("round"), "events_before": meta.get("events"), "wall_s_before": meta.get("wall_s")}
    info = dict(info, pid=os.getpid())
    if new_partition != resolved:
        entry.update(partition=new_partition, from_partition=resolved)
        info.update(partition=new_partition, n_lps=spec.n_lps)
        manifest = dict(manifest, config=config)  # the run goes on as this configuration
    # the LPs and groups the run goes on with (a new run's manifest holds them from the start)
    lanes = {"groups": spec.groups, "n_lps": spec.n_lps, "backend": ex.backend,
             "min_cut_lookahead_ps": spec.channel_map().min_cut_lookahead(spec.group_of_lp())}
    manifest = dict(manifest, checkpoint=info, partition=lanes, resumes=list(manifest.get("resumes", [])) + [entry])
    for key in ("error", "signal", "sim_time_ps", "files", "tables"):
        manifest.pop(key, None)
    return Resume(path, manifest, rb.get("command", "run"), spec, plan, ex, int(meta["sim_time_ps"]), built,
                  getattr(cfg, "noc", None) if built is None else None)


def _rebuild_run(rb: dict, partition: str, backend, workers):
    """(built, RunConfig, spec, config) of a ``run`` from its recorded RunConfig tree."""
    from atleus_dist.config.load import flatten, load_run_config
    from atleus_dist.run.scenario_run import build

    flat = {".".join(parts): value for parts, value in flatten(rb["run_config"], ())}
    flat["execution.partition"] = partition
    for key, value in (("backend", backend), ("workers", workers)):
        if value is not None:
            flat[f"execution.{key}"] = value
    cfg, labels = load_run_config(None, None, flat)
    built = build(cfg, labels=labels)
    return built, cfg, built.spec, built.config


@dataclasses.dataclass(frozen=True)
class _NocExecution:
    backend: str
    workers: int
    address: str | None = None
    placement: str = "spread"


@dataclasses.dataclass(frozen=True)
class _NocRun:
    """What :func:`resume` reads of a run's configuration, for a ``noc`` run."""

    execution: _NocExecution
    noc: object
    transport: str = "noc"


def _rebuild_noc(rb: dict, partition: str, backend, workers):
    """(None, run-like, spec, config) of a ``noc`` run from its recorded NocConfig tree."""
    from atleus_dist.config.load import Labels
    from atleus_dist.config.run_config import ExecutionConfig
    from atleus_dist.config.tree import build as build_tree
    from atleus_dist.hw.noc.config import NocConfig
    from atleus_dist.hw.noc.lp import build_spec

    data = dict(rb["noc_config"], partition=partition)
    cfg = build_tree(NocConfig, data, (), Labels())
    ex = build_tree(ExecutionConfig, {"backend": backend or rb["backend"], "workers": workers or rb["workers"]},
                    ("execution",), Labels())
    transfers = tuple(tuple(int(x) for x in t) for t in rb.get("transfers", ()))
    spec = build_spec(cfg, ex.workers, None, transfers, backend=ex.backend)
    cfg = dataclasses.replace(cfg, partition=spec.meta["partition"])  # auto: the plan it resolved to (as api.noc)
    config = dict(cfg.to_dict(), plan=spec.meta["plan"]) if spec.meta.get("plan") else cfg.to_dict()
    return None, _NocRun(_NocExecution(ex.backend, ex.workers, ex.address, ex.placement), cfg), spec, config

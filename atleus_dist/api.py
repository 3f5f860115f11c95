"""The Python API of atleus-dist: what every CLI command calls.

    import atleus_dist.api as A
    r = A.simulate("gpt2-medium-lora32-s1024", sets={"scenario.seq": 8}, transport="stub", out="/tmp/x")
    r.figures["step_latency_ps"], r.table("ops").to_table()

Every function checks all of its inputs (one :class:`ConfigError` naming the path or argument)
before it creates the output directory. Knows nothing of argument parsing or terminal output.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from atleus_dist.config.load import Labels, load_run_config, resolve_scenario
from atleus_dist.config.run_config import RunConfig
from atleus_dist.config.tree import build as build_tree
from atleus_dist.config.tree import to_data
from atleus_dist.kernel.errors import ConfigError

__all__ = ["ConfigError", "Run", "RunConfig", "baseline", "compare", "hbm_bench", "load_config", "model_info",
           "noc", "open_run", "resume", "simulate", "sweep"]

BASELINE_KINDS = ("gpu", "jetson-orin", "3d-tpu", "2d-planar")


@dataclasses.dataclass
class Run:
    """A finished run directory: its summary figures, manifest and result tables."""

    path: Path
    manifest: dict
    figures: dict
    stats: Any = None  # the backend's RunStats (None for a run opened from disk)

    def tables(self) -> dict:
        """Every result table as a pyarrow dataset, by name."""
        from atleus_dist.results import open as open_tables

        return open_tables(self.path)

    def table(self, name: str):
        """One result table as a pyarrow dataset (``ops``, ``packets``, ``summary``...)."""
        from atleus_dist.results import open as open_tables

        return open_tables(self.path, name)


def _out_dir(out: Any, flag: str = "out") -> str:
    """``out`` checked (a non-empty path), or a new temporary directory when None."""
    if out is None:
        return tempfile.mkdtemp(prefix="atleus-run-")
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise ConfigError(flag, f"expected a directory name, got {out!r}")
    return str(out)


def load_config(scenario: str | None = None, *, sets: Any = None, arch: str | None = None,
                **flags: Any) -> RunConfig:
    """The :class:`RunConfig` of a scenario name/file (None: the default) with an arch file,
    ``sets`` ({"path": value} or ["path=value"]) and flags (transport, backend, workers,
    partition, address, placement, kind), every field checked."""
    from atleus_dist.run.simulate import scenario_name

    return load_run_config(scenario_name(scenario), arch, sets, **flags)[0]


def _built(scenario_or_config, sets, arch, out: str, flags: dict):
    from atleus_dist.results import SinkFactory
    from atleus_dist.run.scenario_run import build
    from atleus_dist.run.simulate import build_named

    if isinstance(scenario_or_config, RunConfig):
        if sets or arch or any(v is not None for v in flags.values()):
            data = to_data(scenario_or_config)
            cfg, labels = load_run_config(None, arch, _merge_sets(data, sets), **flags)
        else:
            cfg, labels = scenario_or_config, Labels()
    else:
        return build_named(scenario_or_config, arch, sets, out, **flags)
    return build(cfg, sink_factory=SinkFactory(out), labels=labels)


def _merge_sets(data: dict, sets: Any) -> dict:
    """A whole tree as ``sets`` items, then ``sets`` (so a RunConfig can take overrides)."""
    from atleus_dist.config.load import flatten

    flat = {".".join(parts): value for parts, value in flatten(data, ())}
    flat.update(_set_dict(sets))
    return flat


def _finish(built, command: str, out: str, progress: bool, baseline_kind: str | None = None,
            checkpoint_every_ps: int | None = None) -> Run:
    from atleus_dist.run.simulate import execute_built

    path, manifest, stats = execute_built(built, command, out, progress, baseline_kind, checkpoint_every_ps)
    return _run_of(built, path, manifest, stats, baseline_kind)


def _run_of(built, path: Path, manifest: dict, stats, baseline_kind: str | None = None) -> Run:
    cfg = built.run_config
    sc = built.scenario
    fig = dict(manifest["figures"], out=str(path), scenario=sc.name, model=sc.model.name, mode=sc.mode,
               seq=sc.seq, batch=sc.batch, transport=cfg.transport)
    if baseline_kind:
        fig["baseline"] = baseline_kind
    if cfg.transport == "stub":
        fig["stub_latency_ps"] = built.config["stub"]["latency_ps"]
    return Run(path, manifest, fig, stats)


def simulate(scenario_or_config: str | RunConfig | None = None, *, sets: Any = None, arch: str | None = None,
             out: str | os.PathLike | None = None, transport: str | None = None, backend: str | None = None,
             workers: int | None = None, partition: str | None = None, address: str | None = None,
             placement: str | None = None, progress: bool = False, checkpoint_every_ps: int | None = None) -> Run:
    """One step of a scenario on Atleus (``atleus-dist run``). ``scenario_or_config``: a scenario
    name, a YAML file, a :class:`RunConfig` or None (the default scenario); the other arguments
    override it (None: keep). ``out``: the run directory to create (None: a temporary one).
    ``checkpoint_every_ps``: write a checkpoint at every multiple of it (``atleus-dist resume``)."""
    from atleus_dist.run.checkpoint import check_every_ps

    check_every_ps(checkpoint_every_ps)
    out = _out_dir(out)
    flags = dict(transport=transport, backend=backend, workers=workers, partition=partition, address=address,
                 placement=placement)
    built = _built(scenario_or_config, sets, arch, out, flags)
    return _finish(built, "run", out, progress, checkpoint_every_ps=checkpoint_every_ps)


def baseline(kind: str, scenario: str | None = None, *, seq: int | None = None, batch: int | None = None,
             sets: Any = None, arch: str | None = None, out: str | os.PathLike | None = None,
             transport: str | None = None, backend: str | None = None, workers: int | None = None,
             partition: str | None = None, progress: bool = False) -> Run:
    """The scenario (None: the default) on a baseline: ``gpu`` / ``jetson-orin`` (rooflines;
    ``sets`` are GpuConfig fields plus ``profile=ideal|realistic`` and, for Jetson, ``mode=``;
    ``scenario.*`` the scenario's), ``3d-tpu`` or ``2d-planar`` (simulated like
    :func:`simulate`; transport default ``stub``, backend default ``inline``)."""
    if kind not in BASELINE_KINDS:
        raise ConfigError("kind", f"unknown baseline {kind!r}", allowed=", ".join(BASELINE_KINDS))
    out = _out_dir(out)
    scenario_sets = {f"scenario.{k}": v for k, v in (("seq", seq), ("batch", batch)) if v is not None}
    gpu_kind = kind in ("gpu", "jetson-orin")
    if not gpu_kind:
        merged = _set_dict(sets)
        merged.update(scenario_sets)
        flags = dict(transport=transport or "stub", backend=backend or "inline", workers=workers,
                     partition=partition, kind=kind)
        built = _built(scenario, merged, arch, out, flags)
        return _finish(built, f"baseline {kind}", out, progress, baseline_kind=kind)
    from atleus_dist.run.baselines import gpu_config, write_gpu_baseline
    from atleus_dist.run.simulate import scenario_name

    for name, value in (("transport", transport), ("backend", backend), ("workers", workers),
                        ("partition", partition)):
        if value is not None:
            raise ConfigError(name, f"the {kind} baseline is a roofline model: it runs no LPs")
    gpu_sets, sc_sets = {}, dict(scenario_sets)
    for key, value in _set_dict(sets).items():
        (sc_sets if key.startswith("scenario.") else gpu_sets)[key.removeprefix("gpu.")] = value
    gpu = gpu_config(gpu_sets, device="a100" if kind == "gpu" else kind)
    cfg, sc_labels = load_run_config(scenario_name(scenario), arch, sc_sets)
    sc = resolve_scenario(cfg, sc_labels)
    manifest = write_gpu_baseline(sc, out, gpu, label=kind)
    fig = dict(manifest["figures"], out=str(out), baseline=kind, gpu=gpu.name, scenario=sc.name,
               model=sc.model.name, mode=sc.mode, seq=sc.seq, batch=sc.batch)
    return Run(Path(out), manifest, fig)


def _set_dict(sets: Any) -> dict:
    """``sets`` as {path: value} (``"path=value"`` items read as YAML)."""
    from atleus_dist.config.load import set_items

    return dict(set_items(sets))


def noc(config: Any = None, *, sets: Any = None, out: str | os.PathLike | None = None, backend: str = "inline",
        workers: int = 2, transfers: tuple = (), progress: bool = False, address: str | None = None,
        placement: str = "spread", checkpoint_every_ps: int | None = None) -> Run:
    """A synthetic-traffic run of the flit-level 3D NoC (``atleus-dist noc``). ``config``: a
    :class:`~atleus_dist.hw.noc.config.NocConfig`, a nested mapping of its fields, a YAML file or
    None (defaults); ``sets``: ``{"router.num_vcs": 2}`` or ``["traffic.rate=0.1"]``.
    ``transfers``: scripted (cycle, src, dest, nbytes, tag) tuples; their completions are written
    to a ``transfers`` table (tag, done_cycle). Figures are BookSim2's. ``checkpoint_every_ps``:
    write a checkpoint at every multiple of it (``atleus-dist resume``)."""
    from atleus_dist.config.run_config import ExecutionConfig
    from atleus_dist.run.checkpoint import check_every_ps

    check_every_ps(checkpoint_every_ps)
    from atleus_dist.config.sets import read_yaml_mapping
    from atleus_dist.config.tree import put
    from atleus_dist.hw.noc.config import NocConfig
    from atleus_dist.hw.noc.lp import build_spec
    from atleus_dist.results import SinkFactory
    from atleus_dist.run import execute, prepare_out_dir

    out = _out_dir(out)
    ex_labels = Labels()
    for name in ("backend", "workers", "address", "placement"):
        ex_labels.add(("execution", name), "--" + name, ())
    ex = build_tree(ExecutionConfig, {"backend": backend, "workers": workers, "address": address,
                                      "placement": placement}, ("execution",), ex_labels)
    labels = Labels()
    if isinstance(config, NocConfig):
        data = to_data(config)
    elif isinstance(config, (str, os.PathLike)):
        data = read_yaml_mapping(config, "config")
        for key in data:
            labels.add((key,), "", (key,), f"(in {config})")
    elif config is None or isinstance(config, dict):
        data = dict(config or {})
    else:
        raise ConfigError("config", f"expected a NocConfig, a mapping or a YAML file, got {config!r}")
    for key, value in _set_dict(sets).items():
        parts = tuple(key.split("."))
        labels.add(parts, "--set", parts)
        put(data, parts, value)
    cfg = build_tree(NocConfig, data, (), labels)
    spec = build_spec(cfg, ex.workers, SinkFactory(out), transfers, backend=ex.backend)  # checks the partition
    cfg = dataclasses.replace(cfg, partition=spec.meta["partition"])  # auto: the plan it resolved to
    from atleus_dist.run.checkpoint_resume import noc_checkpoint_setup

    plan, extra = noc_checkpoint_setup(cfg, spec, transfers, ex.backend, out, checkpoint_every_ps)
    path = prepare_out_dir(out)
    options = {"address": ex.address, "placement": ex.placement} if ex.backend == "ray" else {}
    config = dict(cfg.to_dict(), plan=spec.meta["plan"]) if spec.meta.get("plan") else cfg.to_dict()
    stats, manifest = execute("noc", config, spec, ex.backend, path, progress=progress, checkpoint=plan,
                              manifest_extra=extra, **options)
    return _noc_run(cfg, spec, stats, manifest, path, ex.backend)


def _noc_run(cfg, spec, stats, manifest: dict, path: Path, backend: str) -> Run:
    """The :class:`Run` of a finished ``noc`` run: BookSim2's figures from its tables (``resume`` too)."""
    from atleus_dist.hw.noc.stats import figures
    from atleus_dist.hw.noc.topology import build_topology
    from atleus_dist.results import read_table

    read = {name: read_table(path, name) for name in ("packets", "nodes", "links")}  # each verified once
    tables = {name: {c: t.column(c).to_numpy() for c in t.column_names} for name, t in read.items()}
    fig = figures(cfg, build_topology(cfg).n_routers, tables["packets"], tables["nodes"], tables["links"])
    fig.update({"lps": spec.n_lps, "workers": len(spec.groups), "backend": backend,
                "partition": cfg.partition, "wall_s": stats.run_s, "rounds": stats.rounds, "out": str(path),
                "topology": cfg.topology, "pattern": cfg.traffic.pattern, "rate": cfg.traffic.rate})
    fig = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in fig.items()}
    return Run(path, manifest, fig, stats)


def resume(run_dir: str | os.PathLike, *, backend: str | None = None, workers: int | None = None,
           partition: str | None = None, checkpoint: str | None = None, progress: bool = False) -> Run:
    """Continue a killed or interrupted ``run``/``noc`` run from its newest checkpoint (or the one
    named), on the run's or another backend, worker count and partition (``atleus-dist resume``;
    another partition re-slices the saved state onto the new LPs); see
    :mod:`atleus_dist.run.checkpoint_resume`. ``figures["resumed_from_ps"]`` says where it went on."""
    from atleus_dist.run import execute
    from atleus_dist.run.checkpoint_resume import plan_resume
    from atleus_dist.run.simulate import summary_finalize

    rs = plan_resume(run_dir, backend=backend, workers=workers, partition=partition, checkpoint=checkpoint)
    ex = rs.execution
    options = {"address": ex.address, "placement": ex.placement} if ex.backend == "ray" else {}
    stats, manifest = execute(rs.command, rs.manifest["config"], rs.spec, ex.backend, rs.path, progress=progress,
                              finalize=summary_finalize(rs.built) if rs.built is not None else None,
                              checkpoint=rs.plan, manifest=rs.manifest, **options)
    if rs.built is None:
        r = _noc_run(rs.noc_config, rs.spec, stats, manifest, rs.path, ex.backend)
    else:
        r = _run_of(rs.built, rs.path, manifest, stats, manifest.get("baseline"))
    r.figures["resumed_from_ps"] = rs.sim_time_ps
    return r


def hbm_bench(*, nbytes: int = 8 << 20, readers: int | None = None, writers: int | None = None,
              directions: tuple = ("read", "write"), request_bytes: int = 4096, sets: Any = None,
              arch: str | None = None, out: str | os.PathLike | None = None, backend: str = "inline") -> dict:
    """Stream ``nbytes`` between the HBM's memory ports and cores over the flit NoC
    (``atleus-dist hbm-bench``): per direction, ``achieved_bytes_per_s`` and ``bound_bytes_per_s``
    (min of the memory's peak and the NIs' injection/ejection on the path). ``readers`` /
    ``writers``: cores (default one per port); ``sets``: chip paths (``hbm.*``, ``noc.*``)."""
    from atleus_dist.run.hbm_bench import run_bench

    from atleus_dist.run.hbm_bench import check_inputs

    if isinstance(directions, str):
        directions = (directions,)
    for d in directions:
        check_inputs(d, nbytes, readers if d == "read" else writers, request_bytes)
    chip = load_run_config(None, arch, _set_dict(sets))[0].chip
    base = _out_dir(out)
    res = {d: run_bench(chip, d, nbytes, readers if d == "read" else writers, request_bytes, backend,
                        out=os.path.join(base, d)) for d in directions}
    return {"directions": res, "achieved_over_bound_min": min(r["achieved_over_bound"] for r in res.values()),
            "out": base}


def model_info(model: str = "gpt2-medium", *, seq: int | None = None, sets: Any = None, **scenario: Any) -> dict:
    """Parameters, FLOPs, tier split and crossbars of ``model`` in a scenario (``seq`` default:
    the model's fixed tokens, else min(1024, positions); ``scenario``: other ScenarioConfig fields
    such as mode, batch, lora_rank, lora_targets, quant, policy); ``sets``: chip paths."""
    from atleus_dist.workload.info import model_info as info
    from atleus_dist.workload.model import load_model

    if not isinstance(model, str):
        raise ConfigError("model", f"expected a model name, got {model!r}")
    spec = load_model(model)
    if seq is None:
        seq = spec.tokens_per_sample() or min(1024, spec.positions or 1024)
    items = {f"scenario.{k}": v for k, v in scenario.items() if v is not None}
    items.update({"scenario.model": model, "scenario.name": model, "scenario.seq": seq})
    labels_of = {"scenario.seq": "--seq"}
    merged = _set_dict(sets)
    for key in merged:
        if key.startswith("scenario."):
            raise ConfigError(f"--set {key}", "model-info takes scenario fields as flags (--seq, --mode...)")
    merged.update(items)
    try:
        cfg, labels = load_run_config(None, None, merged)
        sc = resolve_scenario(cfg, labels)
    except ConfigError as exc:
        name = exc.field.removeprefix("--set ")
        if name.startswith("scenario."):
            flag = labels_of.get(name, "--" + name.removeprefix("scenario.").replace("_", "-"))
            from atleus_dist.config.tree import rename

            raise rename(exc, flag) from None
        raise
    return info(sc, cfg.chip)


def compare(a: str | os.PathLike | Run, b: str | os.PathLike | Run, allow_incomplete: bool = False) -> dict:
    """A's speed-up, energy-efficiency and EDP ratios over B (``atleus-dist compare``)."""
    from atleus_dist.results.report import compare_runs

    return compare_runs(_path(a), _path(b), allow_incomplete)


def sweep(out: str | os.PathLike, scenario: str | None = None, *, grid: Any = (), zips: Any = (),
          arch: str | None = None, transport: str = "noc", sets: Any = (), backend: str = "local",
          workers: int | None = None, point_workers: int = 1, address: str | None = None,
          ray_results: str = "auto", progress: bool = False):
    """A design-space sweep (``atleus-dist sweep``): every point of ``grid`` (["PATH=V1,V2", ...],
    crossed; ``zips`` vary keys together) as a complete run in ``out/points/<id>/``, complete
    points skipped on a rerun. Returns the sweep table (``out/sweep.parquet``) as a pyarrow Table."""
    from atleus_dist.run.sweep import run_sweep

    return run_sweep(out, scenario, list(grid), list(zips), arch, transport, list(sets), backend, workers,
                     point_workers, address, ray_results, progress)


def open_run(path: str | os.PathLike, allow_incomplete: bool = False) -> Run:
    """A run directory on disk as a :class:`Run` (figures from its manifest)."""
    from atleus_dist.results.summary import load_manifest

    manifest = load_manifest(_path(path), allow_incomplete)
    return Run(Path(_path(path)), manifest, dict(manifest.get("figures") or {}))


def _path(p: Any) -> str:
    if isinstance(p, Run):
        return str(p.path)
    if not isinstance(p, (str, os.PathLike)) or not str(p):
        raise ConfigError("run_dir", f"expected a run directory, got {p!r}")
    return str(p)

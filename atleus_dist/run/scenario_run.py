"""Build a simulation of one scenario on one Atleus configuration: resolve the scenario and the
architecture (file + ``--set`` overrides), compile and map the step, and turn it into a
:class:`~atleus_dist.kernel.RunSpec` for the chosen transport between cores.

Transports: ``stub`` (tier LPs, every inter-tier transfer takes a fixed time - fast, coarse) and
``noc`` (chip LPs: tiers' cores plus the flit-level 3D NoC, partitioned into regions).

Kinds (``kind``): ``atleus``; the baselines ``3d-tpu`` (systolic tiers only, static weights read
from HBM at every use) and ``2d-planar`` (tiers side by side) - see
:mod:`atleus_dist.run.baselines`. The configuration comes from :mod:`atleus_dist.config`; this
module parses nothing itself.
"""

from __future__ import annotations

import dataclasses

from atleus_dist.config.load import Labels, load_run_config
from atleus_dist.config.load import resolve_scenario as load_resolve_scenario
from atleus_dist.config.run_config import DEFAULT_PARTITION, RunConfig
from atleus_dist.config.run_config import TRANSPORTS as RUN_TRANSPORTS
from atleus_dist.config.tree import rename, to_data
from atleus_dist.hw.arch import AtleusArchConfig
from atleus_dist.hw.tier import (KIND_CODES, PHASE_CODES, FixedLatencyTransferStub, OpTable, decode_steps,
                                 tier_run_spec)
from atleus_dist.kernel import ConfigError, RunSpec, contiguous_groups
from atleus_dist.run.baselines import scenario_config, stub_latency_ps
from atleus_dist.run.system_run import build_system
from atleus_dist.workload import Mapper, compile_step
from atleus_dist.workload.scenario import Scenario

__all__ = ["DEFAULT_PARTITION", "TRANSPORTS", "Built", "build", "resolve_arch", "resolve_scenario"]

TRANSPORTS = RUN_TRANSPORTS


def resolve_scenario(name: str | None, overrides: dict[str, str] | None = None) -> Scenario:
    """A scenario by name (``workloads/scenarios``), by YAML path, or the default; ``overrides``
    are scenario fields (``{"seq": "64"}``, strings read as YAML)."""
    cfg, labels = load_run_config(name, None, [f"scenario.{k}={v}" for k, v in (overrides or {}).items()])
    return load_resolve_scenario(cfg, labels)


def resolve_arch(path: str | None, sets: dict[str, str]) -> AtleusArchConfig:
    cfg, _labels = load_run_config(None, path, [f"{k}={v}" if isinstance(v, str) else f"{k}={v!r}"
                                                for k, v in sets.items()])
    return cfg.chip


@dataclasses.dataclass
class Built:
    scenario: Scenario
    arch: AtleusArchConfig
    spec: RunSpec
    config: dict
    run_config: RunConfig | None = None


def _tier_program(mapping, stub: FixedLatencyTransferStub) -> OpTable:
    if mapping.static_on == "reram":
        return OpTable.from_mapping(mapping, stub)
    # 3D-TPU: no crossbars (from_mapping would look up the weight's), every op occupies its core
    g = mapping.graph
    return OpTable(mapping.arch.tiers, [mapping.tier_of_op(i) for i in range(len(g))], list(mapping.core),
                       [int(x) for x in mapping.latency_ps], [float(x) for x in mapping.energy_pj],
                       [op.deps for op in g], [op.layer for op in g], [KIND_CODES[op.kind] for op in g],
                       [PHASE_CODES[op.phase] for op in g], [op.macs for op in g], [op.nbytes for op in g],
                       stub, list(mapping.core), decode_steps(g))


def build(scenario, arch_file: str | None = None, sets=None, transport: str | None = None,
          workers: int | None = None, partition: str | None = None, sink_factory=None,
          kind: str | None = None, labels: Labels | None = None) -> Built:
    """Compile and map the step of a configuration and turn it into a :class:`RunSpec`.
    ``scenario``: a :class:`RunConfig` (then the other inputs but ``sink_factory`` must be None),
    or what :func:`~atleus_dist.config.load.load_run_config` takes. ``partition=None``: the
    transport's default (:data:`~atleus_dist.config.run_config.DEFAULT_PARTITION`). More
    ``workers`` than LPs run one LP each. Every input is checked here, before anything is written."""
    if isinstance(scenario, RunConfig):
        cfg = scenario
    else:
        cfg, labels = load_run_config(scenario, arch_file, sets, transport=transport, workers=workers,
                                      partition=partition, kind=kind)
    sc = load_resolve_scenario(cfg, labels)
    arch, kind, transport = cfg.chip, cfg.kind, cfg.transport
    partition = cfg.partition
    workers = cfg.execution.workers
    tree = to_data(cfg)
    if cfg.system.chips > 1:  # a system of chips (run/system_run.py)
        spec, system, n_ops = build_system(cfg, sc, labels, sink_factory)
        config = dict(tree, reram_tiers=arch.reram_tiers, ops=n_ops, system=dict(tree["system"], **system))
        config["scenario"] = dict(scenario_config(sc), policy=sc.policy)
        config["partition"] = spec.meta["partition"]
        config["plan"] = spec.meta["plan"]
        return Built(sc, arch, spec, config, cfg)
    mapping = Mapper(arch, static_on="systolic" if kind == "3d-tpu" else "reram").map(sc, compile_step(sc))
    config = dict(tree, reram_tiers=0 if kind == "3d-tpu" else arch.reram_tiers, ops=len(mapping.graph))
    config["scenario"] = dict(scenario_config(sc), policy=sc.policy)
    if kind != "atleus":
        config["baseline"] = kind
    if transport == "stub":
        stub = cfg.stub
        if kind == "2d-planar" and stub == FixedLatencyTransferStub():  # not set: the planar layout's
            stub = FixedLatencyTransferStub(stub_latency_ps("planar", tiers=arch.tiers))
        program = _tier_program(mapping, stub)
        spec = tier_run_spec(program, contiguous_groups(program.n_tiers, workers), sink_factory,
                             meta={"model": "tiers", "total_ops": len(program.tier)})
        config["stub"] = dataclasses.asdict(stub)
        partition = "by-tier"
    else:
        from atleus_dist.hw.chip import chip_run_spec

        # the 3D-TPU has no crossbars: its ops as the tier LPs would run them; the planar chip
        # lays its tiers side by side in one mesh
        base = _tier_program(mapping, FixedLatencyTransferStub()) if kind == "3d-tpu" else None
        try:
            spec, noc_config = chip_run_spec(mapping, None, partition, workers, sink_factory, base,
                                             "planar" if kind == "2d-planar" else "3d",
                                             packet_rows=cfg.results.packet_rows, backend=cfg.execution.backend)
        except ConfigError as exc:
            if exc.field == "partition":
                raise rename(exc, (labels or Labels())(("execution", "partition"))) from None
            raise
        config["noc"] = noc_config
    config["partition"] = spec.meta.get("partition", partition)  # auto: the plan it resolved to
    if spec.meta.get("plan"):
        config["plan"] = spec.meta["plan"]
    return Built(sc, arch, spec, config, cfg)

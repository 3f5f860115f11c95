"""Build a simulation of one scenario on one Atleus configuration: resolve the scenario and the
architecture (file + ``--set`` overrides), compile and map the step, and turn it into a
:class:`~atleus_dist.kernel.RunSpec` for the chosen transport between cores.

Transports: ``stub`` (tier LPs, every inter-tier transfer takes a fixed time - fast, coarse) and
``noc`` (chip LPs: tiers' cores plus the flit-level 3D NoC, partitioned into regions).

Kinds (``build(kind=...)``): ``atleus``; the baselines ``3d-tpu`` (systolic tiers only, static
weights read from HBM at every use) and ``2d-planar`` (tiers side by side: the stub latency of the
planar layout), both stub-only - see :mod:`atleus_dist.run.baselines`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

from atleus_dist.hw.arch import AtleusArchConfig, arch_with_sets
from atleus_dist.hw.tier import KIND_CODES, PHASE_CODES, FixedLatencyTransferStub, TierProgram, tier_run_spec
from atleus_dist.kernel import ConfigError, RunSpec, contiguous_groups
from atleus_dist.run.baselines import SIM_KINDS, scenario_config, stub_latency_ps
from atleus_dist.workload import Mapper, compile_step, load_scenario
from atleus_dist.workload.scenario import Scenario, scenario_from_dict

# The README's main job: a LoRA fine-tuning step of GPT-2 Medium (LoRA rank 32 on W_Q and W_V,
# as in the paper) at a sequence length that simulates in about a minute on 2 cores.
DEFAULT_SCENARIO = {"name": "default-gpt2-medium-lora32-s128", "model": "gpt2-medium", "mode": "finetune",
                    "seq": 128, "batch": 1, "finetune": "lora", "lora_rank": 32, "lora_targets": ["q", "v"],
                    "quant": "M8F8", "policy": "stream"}
TRANSPORTS = ("stub", "noc")


def load_yaml_mapping(path: str, field: str) -> dict:
    """A YAML file holding a mapping; a missing file, bad YAML or another shape names ``field``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(field, f"no such file {path!r}")
    try:
        with open(p) as fh:
            data = yaml.safe_load(fh) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(field, f"{path!r} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(field, f"{path!r} must hold a mapping of fields")
    return data


def resolve_scenario(name: str | None, overrides: dict[str, str] | None = None) -> Scenario:
    """A scenario by name (``workloads/scenarios``), by YAML path, or the embedded default;
    ``overrides`` are scenario fields given as ``--set scenario.FIELD=VALUE``."""
    if name is None:
        data = dict(DEFAULT_SCENARIO)
    elif name.endswith((".yaml", ".yml")) or "/" in name:
        data = load_yaml_mapping(name, "scenario")
        data.setdefault("name", Path(name).stem)
    else:
        sc = load_scenario(name)
        if not overrides:
            return sc
        data = scenario_config(sc)
        data["policy"] = sc.policy
    for key, value in (overrides or {}).items():
        data[key] = yaml.safe_load(value)
    if "seq" in (overrides or {}) and "name" not in overrides and isinstance(data.get("name"), str):
        data["name"] = re.sub(r"-s\d+$", f"-s{data['seq']}", data["name"])  # keep the name true
    return scenario_from_dict(data)


def resolve_arch(path: str | None, sets: dict[str, str]) -> AtleusArchConfig:
    base = AtleusArchConfig()
    if path is not None:
        data = load_yaml_mapping(path, "arch")
        flat = {}
        for key, value in data.items():
            if isinstance(value, dict):
                flat.update({f"{key}.{k}": str(v) for k, v in value.items()})
            else:
                flat[key] = str(value)
        base = arch_with_sets(flat, base)
    return arch_with_sets(sets, base) if sets else base


def split_sets(items: list[str]) -> dict[str, dict[str, str]]:
    """``--set`` items grouped by target: ``scenario.*``, ``noc.*``, ``stub.*`` and the rest (arch)."""
    out: dict[str, dict[str, str]] = {"scenario": {}, "noc": {}, "stub": {}, "arch": {}}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ConfigError("set", f"expected KEY=VALUE, got {item!r}")
        prefix, dot, rest = key.partition(".")
        if dot and prefix in ("scenario", "noc", "stub"):
            out[prefix][rest] = value.strip()
        else:
            out["arch"][key] = value.strip()
    return out


@dataclasses.dataclass
class Built:
    scenario: Scenario
    arch: AtleusArchConfig
    spec: RunSpec
    config: dict


def _tier_program(mapping, stub: FixedLatencyTransferStub) -> TierProgram:
    if mapping.static_on == "reram":
        return TierProgram.from_mapping(mapping, stub)
    # 3D-TPU: no crossbars (from_mapping would look up the weight's), every op occupies its core
    g = mapping.graph
    return TierProgram(mapping.arch.tiers, [mapping.tier_of_op(i) for i in range(len(g))], list(mapping.core),
                       [int(x) for x in mapping.latency_ps], [float(x) for x in mapping.energy_pj],
                       [op.deps for op in g], [op.layer for op in g], [KIND_CODES[op.kind] for op in g],
                       [PHASE_CODES[op.phase] for op in g], [op.macs for op in g], [op.nbytes for op in g],
                       stub, list(mapping.core))


DEFAULT_PARTITION = {"noc": "auto", "stub": "by-tier"}


def build(scenario: str | None, arch_file: str | None, sets: list[str], transport: str,
          workers: int, partition: str | None, sink_factory, kind: str = "atleus", backend: str = "local") -> Built:
    """``partition=None``: the transport's default - one LP for the flit-level NoC (its regions'
    lookahead is a link, 2 cycles: cut into LPs it runs a round every 2 ns, far slower than one
    process), one per tier for the stub. More ``workers`` than LPs run one LP each."""
    if transport in DEFAULT_PARTITION and partition is None:
        partition = DEFAULT_PARTITION[transport]
    if transport not in TRANSPORTS:
        raise ConfigError("transport", f"unknown transport {transport!r}", allowed=", ".join(TRANSPORTS))
    if kind not in SIM_KINDS:
        raise ConfigError("kind", f"unknown architecture {kind!r}", allowed=", ".join(SIM_KINDS))
    groups = split_sets(sets)
    sc = resolve_scenario(scenario, groups["scenario"])
    arch = resolve_arch(arch_file, groups["arch"])
    mapping = Mapper(arch, static_on="systolic" if kind == "3d-tpu" else "reram").map(sc, compile_step(sc))
    config = {"scenario": scenario_config(sc), "arch": dataclasses.asdict(arch), "transport": transport,
              "reram_tiers": 0 if kind == "3d-tpu" else arch.reram_tiers, "ops": len(mapping.graph)}
    if kind != "atleus":
        config["baseline"] = kind
    if transport == "stub":
        if partition not in ("by-tier",):
            raise ConfigError("partition", f"the stub transport runs one LP per tier, got {partition!r}",
                              allowed="by-tier")
        stub_sets = {k: int(v) for k, v in groups["stub"].items()}
        if kind == "2d-planar":
            stub_sets.setdefault("latency_ps", stub_latency_ps("planar", tiers=arch.tiers))
        stub = FixedLatencyTransferStub(**stub_sets) if stub_sets else FixedLatencyTransferStub()
        program = _tier_program(mapping, stub)
        spec = tier_run_spec(program, contiguous_groups(program.n_tiers, workers), sink_factory,
                             meta={"model": "tiers"})
        config["stub"] = dataclasses.asdict(stub)
    else:
        from atleus_dist.hw.chip import chip_run_spec

        # the 3D-TPU has no crossbars: its ops as the tier LPs would run them; the planar chip
        # lays its tiers side by side in one mesh
        base = _tier_program(mapping, FixedLatencyTransferStub()) if kind == "3d-tpu" else None
        spec, noc_config = chip_run_spec(mapping, groups["noc"], partition, workers, sink_factory, base,
                                         "planar" if kind == "2d-planar" else "3d", backend=backend)
        config["noc"] = noc_config
    config["partition"] = spec.meta.get("partition", partition)  # auto: the plan it resolved to
    if spec.meta.get("plan"):
        config["plan"] = spec.meta["plan"]
    return Built(sc, arch, spec, config)

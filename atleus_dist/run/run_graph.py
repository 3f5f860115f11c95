"""The op graph behind a finished run, rebuilt from its manifest, so the report can follow real
data dependencies (the ``ops`` table records when each op ran, not what it waited for).

The run layer may compile and map (the results layer may not), so this lives here and is handed
to :func:`atleus_dist.results.report.build_report` as ``deps_of``. The rebuild is checked: the
graph must have as many ops as the run's config says (``config.ops``) or the GPU baseline's
``ops`` table; otherwise ``None`` and the report falls back to the path inferred from the timeline.
Knows nothing of LPs, backends or the result files' layout beyond the manifest's config.
"""

from __future__ import annotations

from atleus_dist.config.tree import arch_with_sets
from atleus_dist.hw.chip_program import program_deps
from atleus_dist.workload import Mapper, compile_step
from atleus_dist.workload.scenario import scenario_from_dict


def _flat_arch(arch: dict, prefix: str = "") -> dict[str, object]:
    """``{"reram": {"xbar_rows": 64}}`` -> ``{"reram.xbar_rows": 64}`` (values as recorded)."""
    out: dict[str, object] = {}
    for key, value in arch.items():
        if isinstance(value, dict):
            out.update(_flat_arch(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def op_graph_of_run(manifest: dict):
    """The op graph of the run described by ``manifest`` (its op ids are the ``ops`` table's),
    or None when it cannot be rebuilt faithfully."""
    cfg = manifest.get("config") or {}
    data = cfg.get("scenario")
    if not isinstance(data, dict):
        return None
    try:
        sc = scenario_from_dict(dict(data))
        if "gpu" in cfg:  # a GPU roofline baseline (A100 or Jetson): the unpipelined graph
            return compile_step(sc.unpipelined())
        # the chip the run simulated (``chip``: the config tree; ``arch``: older manifests)
        arch = arch_with_sets(_flat_arch(cfg.get("chip") or cfg.get("arch") or {}))
        static_on = "systolic" if cfg.get("baseline") == "3d-tpu" else "reram"
        graph = Mapper(arch, static_on=static_on).map(sc, compile_step(sc)).graph
    except Exception:  # an older or foreign manifest: report the inferred path instead
        return None
    if cfg.get("ops") is not None and cfg["ops"] != len(graph):
        return None
    return graph


def op_deps_of_run(manifest: dict) -> list[tuple[int, ...]] | None:
    """Dependencies of every op of the run (``deps[op_id]``), or None."""
    graph = op_graph_of_run(manifest)
    if graph is None:
        return None
    ports = ((manifest.get("config") or {}).get("noc") or {}).get("hbm_routers")
    if ports:  # a chip run: the ops table's ids are the program's, each HBM op one per port
        return program_deps(graph, len(ports))
    return [op.deps for op in graph]

"""What a scenario is on a chip before any simulation: parameters (vs the published total), FLOPs
per phase, the op split between ReRAM and systolic tiers, crossbars and systolic cores needed, the
layer pipeline's first stage. Knows nothing of LPs, files, processes or Ray.
"""

from __future__ import annotations

from atleus_dist.workload.accounting import reram_op_share, step_flops
from atleus_dist.workload.compiler import compile_step
from atleus_dist.workload.mapper import Mapper
from atleus_dist.workload.scenario import Scenario
from atleus_dist.workload.stages import fewest_chips


def _share(reram: int, systolic: int) -> float:
    total = reram + systolic
    return reram / total if total else 0.0


def model_info(sc: Scenario, arch) -> dict:
    g = compile_step(sc)
    mapping = Mapper(arch).map(sc, g)
    m = sc.model
    counted = step_flops(g, arch.systolic)  # matmul + vector: the update is vector work
    flops = counted["total"]
    macs = g.macs_by_tier()
    in_layers = {"reram": 0, "systolic": 0}
    fwd = {"reram": 0, "systolic": 0}
    for op in g:
        if op.macs and 0 <= op.layer < m.layers:
            in_layers[op.tier] += op.macs
        if op.macs and op.phase == "fwd":
            fwd[op.tier] += op.macs
    vector_ops = sum(op.elements for op in g if op.kind == "vector")
    stream = [w for w, p in mapping.placements.items() if not p.resident]
    st = mapping.stages[0] if mapping.stages else {}
    return {
        "model": m.name, "mode": sc.mode, "finetune": sc.finetune if sc.mode == "finetune" else None,
        "seq": sc.seq, "batch": sc.batch, "quant": sc.quant.name,
        "lora_rank": sc.lora_rank if sc.uses_lora else None,
        "lora_targets": list(sc.lora_targets) if sc.uses_lora else None,
        "params": m.param_count(), "published_params": m.published_params,
        "params_match_published": m.matches_published(), "trainable_params": sc.trainable_params(),
        "flops": flops, "flops_matmul": counted["matmul"], "flops_vector": counted["vector"],
        "macs_by_tier": macs,
        "reram_op_share": _share(macs["reram"], macs["systolic"]),
        "reram_op_share_paper": reram_op_share(sc, g)["paper"],
        "reram_op_share_layers_only": _share(in_layers["reram"], in_layers["systolic"]),
        "reram_op_share_forward_only": _share(fwd["reram"], fwd["systolic"]),
        "vector_elements": vector_ops,
        "ops": len(mapping.graph), "ops_by_kind": dict(sorted(mapping.graph.kinds().items())),
        "crossbars": {"needed": mapping.crossbars_needed, "capacity": arch.crossbar_capacity,
                      "resident": mapping.crossbars_resident, "stream_region": mapping.stream_region_xbars,
                      "fits": mapping.crossbars_needed <= arch.crossbar_capacity,
                      "streamed_weights": len(stream)},
        "reram_cores": arch.reram_cores, "systolic_cores": mapping.systolic_cores_used,
        "writes": {"total": mapping.writes.total_writes, "max_per_crossbar": mapping.writes.max_writes,
                   "endurance_used": mapping.writes.endurance_used()},
        "energy_pj_by_tier": mapping.energy_by_tier(),
        "stage_layer0": st,
        # a system of chips holding the model resident: the fewest pipeline stages (workload.stages)
        "resident_system": fewest_chips(sc, arch),
    }

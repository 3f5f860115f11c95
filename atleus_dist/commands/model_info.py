"""``atleus-dist model-info MODEL``: parameters (vs the published total), FLOPs per phase, the op
split between ReRAM and systolic tiers, crossbars and systolic cores needed, pipeline stages."""

from __future__ import annotations

import argparse

from atleus_dist.commands.common import emit
from atleus_dist.hw.arch import arch_with_sets
from atleus_dist.hw.params import parse_sets
from atleus_dist.workload.accounting import reram_op_share, step_flops
from atleus_dist.workload.compiler import compile_step
from atleus_dist.workload.mapper import Mapper
from atleus_dist.workload.model import load_model
from atleus_dist.workload.scenario import FINETUNE_KINDS, MODES, POLICIES, Scenario, parse_quant


def register(subparsers) -> None:
    p = subparsers.add_parser("model-info", help="parameters, FLOPs, tier split and crossbars of a model")
    p.add_argument("model", help="a model in workloads/models (e.g. gpt2-medium)")
    p.add_argument("--seq", type=int, default=None, help="sequence length (default min(1024, positions))")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--mode", choices=MODES, default="finetune")
    p.add_argument("--finetune", choices=FINETUNE_KINDS, default="lora")
    p.add_argument("--lora-rank", type=int, default=32)
    p.add_argument("--lora-targets", default="q,v", help="comma-separated weights, e.g. q,v")
    p.add_argument("--quant", default="M8F8", help="crossbar-wise quantisation, e.g. M8F4")
    p.add_argument("--policy", choices=POLICIES, default="stream", help="when weights exceed the ReRAM tiers")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="chip override, e.g. reram_tiers=4, reram.bits_per_cell=1, systolic.rows=64")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


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
    }


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    seq = args.seq or model.tokens_per_sample() or min(1024, model.positions or 1024)
    sc = Scenario(model, mode=args.mode, seq=seq, batch=args.batch, finetune=args.finetune,
                  lora_rank=args.lora_rank, lora_targets=tuple(t for t in args.lora_targets.split(",") if t),
                  quant=parse_quant(args.quant), policy=args.policy)
    arch = arch_with_sets(parse_sets(args.set))
    info = model_info(sc, arch)
    f, x = info["flops"], info["crossbars"]
    lines = [
        f"{info['model']}: {info['params']:,} parameters (published {info['published_params']:,}, "
        f"match={info['params_match_published']}); trainable {info['trainable_params']:,}",
        f"scenario: {sc.mode} {info['finetune'] or ''} seq={sc.seq} batch={sc.batch} quant={sc.quant.name}",
        f"FLOPs (matmul + vector): fwd {f['fwd']:.4e}  bwd {f['bwd']:.4e}  update {f['update']:.4e}  "
        f"total {f['total']:.4e}",
        f"MACs on ReRAM {info['macs_by_tier']['reram']:.4e}, systolic {info['macs_by_tier']['systolic']:.4e}: "
        f"ReRAM op share, whole step {info['reram_op_share']:.1%}; paper's convention (forward, causal "
        f"attention skipped) {info['reram_op_share_paper']:.1%} (layers only {info['reram_op_share_layers_only']:.1%}, "
        f"forward only {info['reram_op_share_forward_only']:.1%})",
        f"crossbars needed {x['needed']:,} of {x['capacity']:,} (fits={x['fits']}, streamed weights "
        f"{x['streamed_weights']}); systolic cores {info['systolic_cores']}",
    ]
    if info["stage_layer0"]:
        s = info["stage_layer0"]
        lines.append(f"layer pipeline: ReRAM stages {s['reram_stages']} {s['reram_stage_ps']} ps, "
                     f"systolic {s['systolic_stage_ps']} ps, balance {s['balance']:.2f} (slowest stage / mean stage; 1 = even)")
    emit(args, info, lines)
    return 0

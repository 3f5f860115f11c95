"""``atleus-dist model-info MODEL``: parameters (vs the published total), FLOPs per phase, the op
split between ReRAM and systolic tiers, crossbars and systolic cores needed, pipeline stages
(:func:`atleus_dist.api.model_info`). Only argument handling and output live here."""

from __future__ import annotations

import argparse

from atleus_dist.commands.common import emit
from atleus_dist.workload.scenario import FINETUNE_KINDS, MODES, POLICIES


def register(subparsers) -> None:
    p = subparsers.add_parser("model-info", help="parameters, FLOPs, tier split and crossbars of a model")
    p.add_argument("model", help="a model in workloads/models (e.g. gpt2-medium)")
    p.add_argument("--seq", type=int, default=None, help="sequence length (default min(1024, positions))")
    p.add_argument("--batch", type=int, default=None, help="sequences per step (default 1)")
    p.add_argument("--mode", choices=MODES, default="finetune")
    p.add_argument("--finetune", choices=FINETUNE_KINDS, default="lora")
    p.add_argument("--lora-rank", type=int, default=None, help="LoRA rank (default 32)")
    p.add_argument("--lora-targets", default="q,v", help="comma-separated weights, e.g. q,v")
    p.add_argument("--quant", default="M8F8", help="crossbar-wise quantisation, e.g. M8F4")
    p.add_argument("--policy", choices=POLICIES, default="stream", help="when weights exceed the ReRAM tiers")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="chip override, e.g. reram_tiers=4, reram.bits_per_cell=1, systolic.rows=64")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from atleus_dist import api

    info = api.model_info(args.model, seq=args.seq, batch=args.batch, mode=args.mode, finetune=args.finetune,
                          lora_rank=args.lora_rank, lora_targets=args.lora_targets, quant=args.quant,
                          policy=args.policy, sets=args.set)
    f, x = info["flops"], info["crossbars"]
    lines = [
        f"{info['model']}: {info['params']:,} parameters (published {info['published_params']:,}, "
        f"match={info['params_match_published']}); trainable {info['trainable_params']:,}",
        f"scenario: {info['mode']} {info['finetune'] or ''} seq={info['seq']} batch={info['batch']} "
        f"quant={info['quant']}",
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
    rs = info["resident_system"]
    if rs["chips"] is None:
        lines.append("resident system: no pipeline of single layers fits a chip's crossbars")
    else:
        lines.append(f"resident system: {rs['chips']} chip(s) of {rs['capacity']:,} crossbars hold every weight "
                     f"(system.chips={rs['chips']}): stages (layers) {rs['stages']}, crossbars per chip "
                     f"{rs['stage_crossbars']}")
    emit(args, info, lines)
    return 0

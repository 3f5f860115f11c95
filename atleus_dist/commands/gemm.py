"""``atleus-dist gemm M N K``: one GEMM on one core (systolic or ReRAM), like SCALE-Sim's
single-layer runs. Prints cycles, latency, energy and utilisation; ``--json`` for one object."""

from __future__ import annotations

import argparse

from atleus_dist.commands.common import emit
from atleus_dist.hw.params import parse_sets, with_overrides
from atleus_dist.hw.reram import ReramCore, ReramCoreConfig
from atleus_dist.hw.systolic import DATAFLOWS, SystolicCore, SystolicCoreConfig
from atleus_dist.kernel.errors import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser("gemm", help="cycles/latency/energy of one (M x K) x (K x N) GEMM on one core")
    p.add_argument("M", type=int, help="rows of the input (vectors through a ReRAM weight block)")
    p.add_argument("N", type=int, help="columns of the weight / output")
    p.add_argument("K", type=int, help="reduction dimension (weight rows)")
    p.add_argument("--core", choices=("systolic", "reram"), default="systolic")
    p.add_argument("--dataflow", choices=DATAFLOWS, default=None, help="systolic dataflow (default ws)")
    p.add_argument("--rows", type=int, default=None, help="PE rows (systolic) or crossbar rows (reram)")
    p.add_argument("--cols", type=int, default=None, help="PE columns (systolic) or crossbar columns (reram)")
    p.add_argument("--weight-bits", type=int, default=8, help="ReRAM weight bits (crossbar-wise quantised)")
    p.add_argument("--transposed", action="store_true", help="ReRAM transposed read (backward dX = dY W^T)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a core config field")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for name in ("M", "N", "K"):
        if getattr(args, name) < 1:
            raise ConfigError(name, f"must be a positive integer, got {getattr(args, name)}")
    sets = parse_sets(args.set)
    if args.core == "systolic":
        if args.rows is not None:
            sets["rows"] = str(args.rows)
        if args.cols is not None:
            sets["cols"] = str(args.cols)
        if args.dataflow:
            sets["dataflow"] = args.dataflow
        cfg = with_overrides(SystolicCoreConfig(), sets)
        cost = SystolicCore(cfg).gemm(args.M, args.N, args.K)
        figures = {"core": "systolic", "dataflow": cfg.dataflow, "rows": cfg.rows, "cols": cfg.cols,
                   "M": args.M, "N": args.N, "K": args.K, **cost.to_dict()}
    else:
        if args.dataflow:
            raise ConfigError("--dataflow", "applies to the systolic core only")
        if args.rows is not None:
            sets["xbar_rows"] = str(args.rows)
        if args.cols is not None:
            sets["xbar_cols"] = str(args.cols)
        cfg = with_overrides(ReramCoreConfig(), sets)
        core = ReramCore(cfg)
        blk = core.block(args.K, args.N, args.weight_bits)
        cost = core.mvm(blk, args.M, transposed=args.transposed)
        used = blk.cells / (blk.crossbars * cfg.xbar_rows * cfg.xbar_cols)
        figures = {"core": "reram", "rows": cfg.xbar_rows, "cols": cfg.xbar_cols, "M": args.M, "N": args.N,
                   "K": args.K, "weight_bits": args.weight_bits, "transposed": args.transposed,
                   "crossbars": blk.crossbars, "cells_per_weight": blk.cells_per_weight,
                   "macs": args.M * args.N * args.K, "utilisation": used, **cost.to_dict()}
    lines = [f"{k:>18}: {v}" for k, v in figures.items()]
    emit(args, figures, lines)
    return 0

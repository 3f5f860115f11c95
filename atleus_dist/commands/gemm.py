"""``atleus-dist gemm M N K``: one GEMM on one core (systolic or ReRAM), like SCALE-Sim's
single-layer runs. Prints cycles, latency, energy and utilisation; ``--json`` for one object."""

from __future__ import annotations

import argparse

from atleus_dist.commands.common import emit
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
    p.add_argument("--weight-bits", type=int, default=None, help="ReRAM weight bits, 1..16 (default 8)")
    p.add_argument("--transposed", action="store_true", help="ReRAM transposed read (backward dX = dY W^T)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field of the core's config (atleus-dist components: chip.reram.* / chip.systolic.*)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


MAX_DIM = 1 << 24  # 16M rows/columns: beyond any transformer layer


def run(args: argparse.Namespace) -> int:
    from atleus_dist.config.load import load_section

    for name in ("M", "N", "K"):
        v = getattr(args, name)
        if not 1 <= v <= MAX_DIM:
            raise ConfigError(name, f"out of range: {v}", allowed=f"integer in 1..{MAX_DIM:,}")
    reram = args.core == "reram"
    if not reram and (args.weight_bits is not None or args.transposed):
        raise ConfigError("--weight-bits" if args.weight_bits is not None else "--transposed",
                          "applies to the reram core only (weights are operands on the systolic core)")
    if reram and args.dataflow:
        raise ConfigError("--dataflow", "applies to the systolic core only")
    rows, cols = ("xbar_rows", "xbar_cols") if reram else ("rows", "cols")
    flags = {"rows": (rows, args.rows), "cols": (cols, args.cols), "dataflow": ("dataflow", args.dataflow)}
    cfg = load_section(ReramCoreConfig if reram else SystolicCoreConfig, args.set, flags)
    if not reram:
        cost = SystolicCore(cfg).gemm(args.M, args.N, args.K)
        figures = {"core": "systolic", "dataflow": cfg.dataflow, "rows": cfg.rows, "cols": cfg.cols,
                   "M": args.M, "N": args.N, "K": args.K, **cost.to_dict()}
    else:
        bits = 8 if args.weight_bits is None else args.weight_bits
        if not 1 <= bits <= 16:
            raise ConfigError("--weight-bits", f"out of range: {bits}", allowed="integer in 1..16")
        core = ReramCore(cfg)
        blk = core.block(args.K, args.N, bits)
        cost = core.mvm(blk, args.M, transposed=args.transposed)
        used = blk.cells / (blk.crossbars * cfg.xbar_rows * cfg.xbar_cols)
        figures = {"core": "reram", "rows": cfg.xbar_rows, "cols": cfg.xbar_cols, "M": args.M, "N": args.N,
                   "K": args.K, "weight_bits": bits, "transposed": args.transposed,
                   "crossbars": blk.crossbars, "cells_per_weight": blk.cells_per_weight,
                   "macs": args.M * args.N * args.K, "utilisation": used, **cost.to_dict()}
    lines = [f"{k:>18}: {v}" for k, v in figures.items()]
    emit(args, figures, lines)
    return 0

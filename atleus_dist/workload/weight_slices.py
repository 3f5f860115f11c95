"""Weights too large for the chip, split into column slices that each fit.

A weight key names one static weight (``L3.q``, ``head``); a slice of it is ``<key>/<i>``. The
mapper splits a weight whose crossbar block alone exceeds the chip (Llama-3-8B's LM head: 128256
crossbars at 8 bits, 98304 on the default chip) before placing, so streaming can program it one
slice at a time. Knows nothing of LPs, files or Ray; of the hardware only the ReRAM block form.
"""

from __future__ import annotations

import math

from atleus_dist.hw.reram import ReramCore
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.workload.graph import OpGraph

SLICE_SEP = "/"  # "head/3": column slice 3 of a weight too large for the chip (see split_oversized)


def weight_name(key: str) -> str:
    """The model's name of a weight key: "L3.q" -> "q", "head/2" -> "head" (slices share their bits)."""
    base = key.split(SLICE_SEP, 1)[0]
    return base.split(".", 1)[1] if "." in base else base


def slice_widths(shapes, rc: ReramCore, cap: int) -> dict[str, list[int]]:
    """Output-column widths of the slices of every weight whose block alone exceeds the chip's
    ``cap`` crossbars (Llama-3-8B's LM head: 128256 crossbars at 8 bits, 98304 on the chip). Slices
    are no larger than the largest block that does fit, so the stream region (sized by the largest
    block) does not grow and the resident weights keep their room; near-equal widths so no slice
    is a straggler (:func:`tile_widths`). Splitting by output columns keeps the forward a plain
    concatenation."""
    blocks = {w: rc.block(k, n, bits) for w, (k, n, bits) in shapes.items()}
    fitting = [b.crossbars for b in blocks.values() if b.crossbars <= cap]
    limit = max(fitting) if fitting else cap
    out: dict[str, list[int]] = {}
    for w, b in blocks.items():
        if b.crossbars <= cap:
            continue
        widths = tile_widths(b.n, b.cells_per_weight, rc.cfg.xbar_cols, limit // b.row_tiles)
        if widths is None:
            raise ConfigError("quant", f"weight {w} has {b.k} inputs: one column of it needs {b.row_tiles} "
                              f"crossbars, more than the {limit} a slice may use")
        out[w] = widths
    return out


def tile_widths(n: int, cells_per_weight: int, cols: int, max_tiles: int) -> list[int] | None:
    """Widths (output columns) of near-equal slices of ``n`` weights, each at most ``max_tiles``
    column tiles of ``cols`` cells, every slice but the last a whole number of tiles' worth of
    weights - so the slices' crossbars add up to the whole block's (a slice cut mid-tile would
    count that tile twice). None when even one such unit needs more than ``max_tiles`` tiles."""
    unit_w = cols // math.gcd(cols, cells_per_weight)  # weights that fill whole tiles exactly
    unit_tiles = unit_w * cells_per_weight // cols
    per = max_tiles // unit_tiles  # units per slice
    if per < 1:
        return None
    units = -(-n // unit_w)
    parts = -(-units // per)
    q, r = divmod(units, parts)
    widths = [(q + (i < r)) * unit_w for i in range(parts)]
    widths[-1] -= sum(widths) - n  # the last slice takes the partial unit
    return widths


def split_oversized(graph: OpGraph, widths: dict[str, list[int]]) -> OpGraph:
    """Replace every use of a weight in ``widths`` by one op per column slice (weight key
    ``w/i``). Forward slices produce disjoint output columns, so consumers wait for all of them;
    a transposed read (dX = dY W^T) sums over the output columns, so its slices give partial dX
    that one vector add reduces; a rewrite (full fine-tuning) programs each slice. Ids stay
    topological (one linear pass)."""
    out, new_ids = OpGraph(), {}
    for op in graph:
        ds = [d for old in op.deps for d in new_ids[old]]
        fields = dict(m=op.m, n=op.n, k=op.k, count=op.count, weight=op.weight, transposed=op.transposed,
                      vector_kind=op.vector_kind, elements=op.elements, nbytes=op.nbytes, chunk=op.chunk,
                      peer=op.peer, step=op.step)
        ws = widths.get(op.weight) if op.kind in ("static_mm", "program") else None
        if ws is None:
            new_ids[op.id] = [out.add(op.name, op.kind, op.phase, op.layer, ds, **fields)]
            continue
        dim = "k" if op.transposed else "n"
        parts = [out.add(f"{op.name}{SLICE_SEP}{i}", op.kind, op.phase, op.layer, ds,
                         **{**fields, dim: w, "weight": f"{op.weight}{SLICE_SEP}{i}"}) for i, w in enumerate(ws)]
        if op.transposed:
            parts = [out.add(f"{op.name}.slice_sum", "vector", op.phase, op.layer, parts, vector_kind="add",
                             elements=op.m * op.n * op.count * (len(ws) - 1), chunk=op.chunk, step=op.step)]
        new_ids[op.id] = parts
    return out



"""Weights too large for the chip, split into column slices that each fit.

A weight key names one static weight (``L3.q``, ``head``); a slice of it is ``<key>/<i>``. The
mapper splits a weight whose crossbar block alone exceeds the chip (Llama-3-8B's LM head: 128256
crossbars at 8 bits, 98304 on the default chip) before placing, so streaming can program it one
slice at a time. Knows nothing of LPs, files or Ray; of the hardware only the ReRAM block form.
"""

from __future__ import annotations

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
    is a straggler. Splitting by output columns keeps the forward a plain concatenation."""
    blocks = {w: rc.block(k, n, bits) for w, (k, n, bits) in shapes.items()}
    fitting = [b.crossbars for b in blocks.values() if b.crossbars <= cap]
    limit = max(fitting) if fitting else cap
    out: dict[str, list[int]] = {}
    for w, b in blocks.items():
        if b.crossbars <= cap:
            continue
        col_tiles = limit // b.row_tiles
        if col_tiles < 1:
            raise ConfigError("quant", f"weight {w} has {b.k} inputs: one column of it needs {b.row_tiles} "
                              f"crossbars, more than the {limit} a slice may use")
        per_slice = col_tiles * rc.cfg.xbar_cols // b.cells_per_weight
        parts = -(-b.n // per_slice)
        q, r = divmod(b.n, parts)
        out[w] = [q + (i < r) for i in range(parts)]
    return out


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
                      vector_kind=op.vector_kind, elements=op.elements, nbytes=op.nbytes, chunk=op.chunk)
        ws = widths.get(op.weight) if op.kind in ("static_mm", "program") else None
        if ws is None:
            new_ids[op.id] = [out.add(op.name, op.kind, op.phase, op.layer, ds, **fields)]
            continue
        dim = "k" if op.transposed else "n"
        parts = [out.add(f"{op.name}{SLICE_SEP}{i}", op.kind, op.phase, op.layer, ds,
                         **{**fields, dim: w, "weight": f"{op.weight}{SLICE_SEP}{i}"}) for i, w in enumerate(ws)]
        if op.transposed:
            parts = [out.add(f"{op.name}.slice_sum", "vector", op.phase, op.layer, parts, vector_kind="add",
                             elements=op.m * op.n * op.count * (len(ws) - 1), chunk=op.chunk)]
        new_ids[op.id] = parts
    return out



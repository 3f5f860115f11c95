"""Weights that do not fit the ReRAM tiers, streamed from HBM over the cores of a stream region.

Policy ``stream`` keeps the first weights resident and reserves ``region`` whole cores at the top
of the chip for the rest. Each streamed weight is cut by output columns into *core slices*, each
no larger than one core (:func:`~atleus_dist.workload.weight_slices.tile_widths`: whole column
tiles, so the slices' crossbars add up to the block's), and the slices, in order of first use,
take the region's cores round-robin. Before each phase's first use a slice is read from HBM and
programmed into its core (an ``hbm_read`` + ``program`` pair):

- the program waits for its read and for every use of the slice its core held before - the
  previous user of the same crossbars, not of the whole region - so successive weights program
  side by side on different cores while earlier ones compute;
- the read waits for the program of that previous occupant: a core stages at most the next
  slice's data while the current one is in use (double buffering; reading everything at time 0,
  as the one-region model did, would stage the whole step's weights on chip);
- the read's data lives in one HBM channel (``Op.channel``, consecutive slices on consecutive
  channels), so concurrent reads come from different channels' ports and go to different cores:
  striping every read over all ports made all ports send to one core at a time, whose single
  ejection channel then set the pace.

Why slices rather than one block over several cores: each slice is its own weight (its own
serial unit, core and router), so its programming, its input vector and its output columns are
on the core that holds it; the forward concatenates the slices' outputs and a transposed use
(dX = dY W^T) sums their partial dX in one vector add (as for a weight too large for the chip,
:func:`~atleus_dist.workload.weight_slices.split_oversized`). A block one of whose column tiles
alone exceeds a core (not the case for any shipped model on the default chip) falls back to one
region of the largest block's crossbars, programmed one weight at a time.

Knows nothing of hardware timing, the NoC, LPs, files or Ray; of the hardware only the ReRAM
block form and the core size.
"""

from __future__ import annotations

import heapq
import math

from atleus_dist.hw.reram import ReramCore, WeightBlock
from atleus_dist.workload.graph import OpGraph
from atleus_dist.workload.weight_slices import split_oversized, tile_widths


def core_widths(block: WeightBlock, rc: ReramCore) -> list[int] | None:
    """Column widths of ``block``'s core slices (one slice when it fits one core)."""
    xpc = rc.cfg.xbars_per_core
    return tile_widths(block.n, block.cells_per_weight, rc.cfg.xbar_cols, xpc // block.row_tiles)


def region_cores(blocks: dict[str, WeightBlock], rc: ReramCore) -> int | None:
    """Cores of the stream region: the most core slices of any block, so every weight's slices are
    on distinct cores; None when some block cannot be cut into core slices."""
    widths = [core_widths(b, rc) for b in blocks.values()]
    if any(w is None for w in widths):
        return None
    return max(len(w) for w in widths)


def spread(graph: OpGraph, placements: dict, rc: ReramCore, first_core: int, cores: int, place):
    """(graph, placements): every streamed weight replaced by its core slices (weight keys ``w/i``
    when there are several), slice j of the streamed weights in order of first use on core
    ``first_core + j mod cores``. ``place(key, block, first_xbar)`` builds a non-resident
    placement."""
    xpc = rc.cfg.xbars_per_core
    widths = {w: core_widths(p.block, rc) for w, p in placements.items() if not p.resident}
    graph = _without_reloads(split_oversized(graph, {w: ws for w, ws in widths.items() if len(ws) > 1}),
                             {w for w, p in placements.items() if p.resident})
    out = {w: p for w, p in placements.items() if p.resident}
    slot = 0
    for op in graph:
        if op.kind in ("static_mm", "program") and op.weight not in out:
            base = op.weight.rsplit("/", 1)[0] if op.weight not in placements else op.weight
            b = placements[base].block
            k, n = (op.n, op.k) if op.transposed else (op.k, op.n)
            block = rc.block(k, n, b.weight_bits)
            out[op.weight] = place(op.weight, block, (first_core + slot % cores) * xpc)
            slot += 1
    return graph, out


def _without_reloads(graph: OpGraph, resident: set[str]) -> OpGraph:
    """``graph`` with the HBM deps of streamed weights' transposed uses dropped: dX = dY W^T reads
    only dY; the compiler orders it after the reload of saved activations because the weight
    gradient beside it needs them (``linear_bwd``'s ``extra``), and on the chip that reload would
    be sent to every core slice of the weight. Ids stay topological (a linear pass)."""
    out, new_id = OpGraph(), {}
    for op in graph:
        ds = op.deps
        if op.kind == "static_mm" and op.transposed and op.weight not in resident:
            ds = [d for d in ds if graph.ops[d].kind not in ("hbm_read", "hbm_write")]
        new_id[op.id] = out.add(op.name, op.kind, op.phase, op.layer, [new_id[d] for d in ds], m=op.m, n=op.n,
                                k=op.k, count=op.count, weight=op.weight, transposed=op.transposed,
                                vector_kind=op.vector_kind, elements=op.elements, nbytes=op.nbytes, chunk=op.chunk,
                                part=op.part, parts=op.parts, channel=op.channel, peer=op.peer, step=op.step)
    return out


def insert_streaming(graph: OpGraph, placements: dict, weight_bits: dict[str, int], channels: int) -> OpGraph:
    """Program each streamed weight (slice) once per phase, before its first use in that phase
    (see the module docstring for its deps). Inserting these edges can force uses of one streamed
    weight ahead of another's in op order, so the graph is re-sorted (Kahn, preferring the
    original order). ``channels``: 0 stripes every read over all channels. With one slot (the
    fallback region) and 0 channels this is the one-weight-at-a-time model."""
    groups: dict[tuple[str, str, int], list[int]] = {}
    for op in graph:
        p = placements.get(op.weight) if op.kind == "static_mm" else None
        if p is not None and not p.resident:  # each decode step is a phase of its own (mode generate)
            groups.setdefault((op.weight, op.phase, op.step), []).append(op.id)
    n = len(graph)
    deps: list[list[int]] = [list(op.deps) for op in graph]
    keys: list[tuple] = [(op.id, 1) for op in graph]
    extra: list[tuple[str, str, str, int, dict]] = []  # name, kind, phase, layer, fields of new nodes
    last_uses: dict[int, list[int]] = {}  # slot (first crossbar) -> uses of its current occupant
    last_prog: dict[int, int] = {}  # slot -> the program of its current occupant
    for j, ((w, phase, step), uses) in enumerate(groups.items()):  # dict order: order of first use
        first = graph.ops[uses[0]]
        p = placements[w]
        b, slot = p.block, p.first_xbar
        rd, prog = n + len(extra), n + len(extra) + 1
        extra.append((f"{w}.stream_read", "hbm_read", phase, first.layer,
                      {"nbytes": math.ceil(b.k * b.n * weight_bits[w] / 8), "chunk": first.chunk,
                       "channel": j % channels if channels else -1, "step": step}))
        extra.append((f"{w}.stream_program", "program", phase, first.layer,
                      {"m": 1, "n": b.n, "k": b.k, "weight": w, "chunk": first.chunk, "step": step}))
        deps += [[last_prog[slot]] if slot in last_prog else [], [rd] + last_uses.get(slot, [])]
        keys += [(uses[0], 0, 0), (uses[0], 0, 1)]
        for u in uses:
            deps[u].append(prog)
        last_uses[slot], last_prog[slot] = uses, prog
    return _toposort(graph, deps, keys, extra)


def _toposort(graph: OpGraph, deps, keys, extra) -> OpGraph:
    n, total = len(graph), len(deps)
    children: list[list[int]] = [[] for _ in range(total)]
    indeg = [0] * total
    for i, ds in enumerate(deps):
        for d in ds:
            children[d].append(i)
            indeg[i] += 1
    heap = [(keys[i], i) for i in range(total) if indeg[i] == 0]
    heapq.heapify(heap)
    out, new_id = OpGraph(), {}
    while heap:
        _, i = heapq.heappop(heap)
        ds = [new_id[d] for d in deps[i]]
        if i < n:
            op = graph.ops[i]
            new_id[i] = out.add(op.name, op.kind, op.phase, op.layer, ds, m=op.m, n=op.n, k=op.k, count=op.count,
                                weight=op.weight, transposed=op.transposed, vector_kind=op.vector_kind,
                                elements=op.elements, nbytes=op.nbytes, chunk=op.chunk, channel=op.channel, peer=op.peer,
                                step=op.step)
        else:
            name, kind, phase, layer, fields = extra[i - n]
            new_id[i] = out.add(name, kind, phase, layer, ds, **fields)
        for c in children[i]:
            indeg[c] -= 1
            if indeg[c] == 0:
                heapq.heappush(heap, (keys[c], c))
    if len(out) != total:
        raise RuntimeError("streaming the weights through the region made the op graph cyclic")
    return out

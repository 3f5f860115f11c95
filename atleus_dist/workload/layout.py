"""Where resident weights go on the ReRAM cores (:func:`_layout`: each layer on whole cores of
its own when room allows, its blocks spread longest-first; else packed in order of first use) and
the contiguous split of a layer's forward matmuls into the ReRAM pipeline stages
(:func:`_partition`). Split out of :mod:`atleus_dist.workload.mapper`, which calls them. Knows
nothing of LPs, files, processes or Ray.
"""

from __future__ import annotations

from itertools import combinations

from atleus_dist.hw.arch import AtleusArchConfig
from atleus_dist.hw.reram import WeightBlock
from atleus_dist.workload.scenario import Scenario


def _layout(sc: Scenario, arch: AtleusArchConfig, blocks: dict[str, WeightBlock], resident: list[str],
            usable: int) -> dict[str, int]:
    """First crossbar of every resident weight. A core runs one matmul at a time, so a layer whose
    weights share a core with another layer's (or pile up on one core) serialises the pipeline.
    Each layer therefore gets whole cores of its own when the rest still fits, its blocks spread
    over them longest-first onto the least-loaded core with room (load: forward + transposed
    reads, in input-slice cycles per vector); otherwise (blocks larger than a core, or no room
    left) weights are packed contiguously in order of first use, as ISAAC-style tiles would be."""
    xpc = arch.reram.xbars_per_core
    train = sc.mode == "finetune"
    by_layer: dict[str, list[str]] = {}
    for w in resident:
        by_layer.setdefault(w.split(".", 1)[0] if "." in w else w, []).append(w)
    first: dict[str, int] = {}
    cursor, left = 0, sum(blocks[w].crossbars for w in resident)
    for group, ws in by_layer.items():
        size = sum(blocks[w].crossbars for w in ws)
        left -= size
        packed = _pack(ws, blocks, xpc, train) if group.startswith("L") else None
        start = -(-cursor // xpc) * xpc
        if packed is not None and start + packed[0] * xpc + left <= usable:
            for w, (core, offset) in packed[1].items():
                first[w] = start + core * xpc + offset
            cursor = start + packed[0] * xpc
        else:
            for w in ws:
                first[w] = cursor
                cursor += blocks[w].crossbars
    return first


def _pack(ws: list[str], blocks: dict[str, WeightBlock], xpc: int, train: bool):
    """(cores, {weight: (core, offset)}) spreading one layer's blocks over the fewest whole cores
    that hold them, balanced by load; None when a block is larger than a core."""
    if any(blocks[w].crossbars > xpc for w in ws):
        return None
    load_of = {w: 1 + (blocks[w].cells_per_weight if train else 0) for w in ws}
    order = sorted(ws, key=lambda w: -load_of[w])  # stable: ties keep first-use order
    cores = -(-sum(blocks[w].crossbars for w in ws) // xpc)
    for n in range(cores, len(ws) + 1):
        load, used, where = [0] * n, [0] * n, {}
        for w in order:
            fits = [c for c in range(n) if used[c] + blocks[w].crossbars <= xpc]
            if not fits:
                break
            c = min(fits, key=lambda c: (load[c], c))
            where[w] = (c, used[c])
            used[c] += blocks[w].crossbars
            load[c] += load_of[w]
        else:
            return n, where
    return None


def _partition(lat: list[int], parts: int) -> list[list[int]]:
    """Contiguous split of ``lat`` into at most ``parts`` groups minimising the largest sum."""
    n = len(lat)
    best: tuple[int, list[int]] | None = None
    for cuts in _cut_sets(n, min(parts, n)):
        bounds = [0, *cuts, n]
        worst = max(sum(lat[a:b]) for a, b in zip(bounds, bounds[1:]))
        if best is None or worst < best[0]:
            best = (worst, bounds)
    bounds = best[1]
    return [list(range(a, b)) for a, b in zip(bounds, bounds[1:])]


def _cut_sets(n: int, parts: int):

    return combinations(range(1, n), parts - 1)

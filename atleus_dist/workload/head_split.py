"""Splitting a layer's backward attention over several systolic cores, head group by head group.

Why: backward reloads each chunk's saved attention activations (``L{i}.load_act.attn``: softmax
output, dropout mask, Q, K, V, ... - 3 MB a chunk for GPT-2 Medium at s1024) from HBM. The chip
stripes the read over every memory port, but when all of its consumers sit on one systolic core,
every port sends to that core and its one ejection channel (16 GB/s) - not the ports (8 x 16 GB/s)
nor the memory (256 GB/s) - sets the pace; the ports' injection queues then hold the reload for
8x longer, and any core sharing a port's router waits behind it.

Attention is head-parallel: dP = dAV V^T, dV = P^T dAV, the softmax backward, dQ = dS K and
dK = dS^T Q are ``count = batch x heads`` independent products (or ``count x rows x keys``
elements), and each head's saved data is its own. So each such op of the backward is split into
``parts`` ops over disjoint head groups (near-equal integer shares of ``count``; a part's
elements are its count times the elements per head), part g of one op depending on part g of
the split ops it reads and on the whole of the others (the chip delivers such a part only its
heads' share of a whole input: :class:`~atleus_dist.hw.chip_program.ChipProgram`); an op that
reads a split op waits for every part. Sums are exact: the parts' MACs, FLOPs and elements add
up to the whole op's. The mapper puts part g on the layer's systolic core plus g x (cores / parts),
so a reload's consumers are ``parts`` cores, each ejecting its share.

The forward is not split: its attention inputs come from the layer's own ops, not from HBM, and
splitting it too (tried with the reloads one layer ahead, see bench/RESULTS.md) made the stub's step
16% slower - the parts of successive layers' forwards then queue on shared cores.

Decode (mode generate) is split the same way, for the same reason: each step's attention reads
the layer's KV cache from HBM (``phase="decode"``: QK^T, the softmax and AV over batch x kv_heads
head groups), and one token passes the layers one after another, so the other layers' systolic
cores are idle while it does (bench/RESULTS.md "Issue 22": on the NoC the cache's trip into one
core's NI was 62% of the critical path).
Knows nothing of hardware timing, NoC, LPs, files or Ray.
"""

from __future__ import annotations

from atleus_dist.workload.graph import OpGraph

# the compiler's names (``L{i}.<base>``, chunk suffix ``[c<j>]``) of the head-parallel ops of the
# attention backward (atleus_dist.workload.compiler._Compiler.layer_bwd)
HEAD_PARALLEL_BWD = ("av.dp", "av.dv", "softmax.bwd", "qk.dq", "qk.dk")
# ... and of a decode step (atleus_dist.workload.decode: ``t<step>.L{i}.<base>``)
HEAD_PARALLEL_DECODE = ("qk", "softmax", "av")


def _base(name: str) -> str:
    return name.split("[", 1)[0].split(".", 1)[-1]


def head_parallel(op, heads: int) -> bool:
    """Whether ``op`` is one of the backward (or decode) attention ops over ``heads`` slices."""
    if op.layer < 0 or op.parts != 1:
        return False
    if not ((op.phase == "bwd" and _base(op.name) in HEAD_PARALLEL_BWD)
            or (op.phase == "decode" and op.name.split("@", 1)[0].rsplit(".", 1)[-1] in HEAD_PARALLEL_DECODE)):
        return False
    if op.kind == "dynamic_mm":
        return op.count == heads
    return op.kind == "vector" and op.elements % heads == 0


def share(total: int, parts: int, k: int) -> int:
    """Part ``k`` of ``total`` in ``parts`` near-equal integers (they sum to ``total``)."""
    return total // parts + (k < total % parts)


def split_heads(graph: OpGraph, heads: int, parts: int) -> OpGraph:
    """``graph`` with every backward attention op over ``heads`` slices split into ``parts`` head
    groups (see the module docstring); ``parts`` is capped at ``heads``. Ids stay topological."""
    parts = min(parts, heads)
    if parts <= 1:
        return graph
    out, new_ids = OpGraph(), {}
    for op in graph:
        fields = dict(m=op.m, n=op.n, k=op.k, count=op.count, weight=op.weight, transposed=op.transposed,
                      vector_kind=op.vector_kind, elements=op.elements, nbytes=op.nbytes, chunk=op.chunk,
                      part=op.part, parts=op.parts, channel=op.channel, peer=op.peer, step=op.step)
        if not head_parallel(op, heads):
            ds = [d for old in op.deps for d in new_ids[old]]
            new_ids[op.id] = [out.add(op.name, op.kind, op.phase, op.layer, ds, **fields)]
            continue
        per_head = op.elements // heads if op.kind == "vector" else 0
        ids = []
        for g in range(parts):
            h = share(heads, parts, g)
            # part g of a split dep (the same heads); every part of anything else
            ds = [d for old in op.deps
                  for d in ([new_ids[old][g]] if head_parallel(graph.ops[old], heads) else new_ids[old])]
            f = dict(fields, part=g, parts=parts)
            if op.kind == "vector":
                f["elements"] = h * per_head
            else:
                f["count"] = h
            ids.append(out.add(f"{op.name}.h{g}", op.kind, op.phase, op.layer, ds, **f))
        new_ids[op.id] = ids
    return out

"""The typed op graph of one step (Chakra-like): ops with kinds, shapes, phase and data deps.

Kinds and the tier that executes them (Atleus' split):

- ``static_mm``  matmul with a frozen weight operand: ReRAM (forward, or ``transposed`` for dX)
- ``dynamic_mm`` matmul whose operands are both dynamic (QK^T, AV, their gradients, LoRA adapters,
  weight gradients): systolic
- ``vector``     softmax, norms, activations, residual adds, loss, optimizer update: systolic
- ``hbm_read`` / ``hbm_write`` saved activations, optimizer state, streamed weights: HBM
- ``program``    (re)writing a weight block into ReRAM crossbars: ReRAM
- ``link_send`` / ``link_wait`` / ``link_recv``  an off-chip transfer in a system of chips
  (:mod:`atleus_dist.workload.stages`): the send occupies the chip's link port for the bytes'
  serialisation; the wait stands for the far end (it never runs: a link message releases it); the
  receive (no time) hands the data to its consumers on this chip. ``peer`` is the other chip.

A matmul op is ``count`` independent (m x k) x (k x n) products. With layer pipelining an op
covers one ``chunk`` of the tokens (see the compiler for the dependency rule between chunks). Ops are stored in a topological
order (every dep has a smaller id). Knows nothing of hardware timing, LPs, files or Ray.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from atleus_dist.hw.links import LINK_KINDS
from atleus_dist.kernel.errors import ConfigError

KINDS = ("static_mm", "dynamic_mm", "vector", "hbm_read", "hbm_write", "program") + LINK_KINDS
# prefill / decode: mode ``generate`` (:mod:`atleus_dist.workload.decode`); decode ops also carry their ``step``
PHASES = ("fwd", "bwd", "update", "prefill", "decode")
TIER_OF_KIND = {"static_mm": "reram", "program": "reram", "dynamic_mm": "systolic", "vector": "systolic",
                "hbm_read": "hbm", "hbm_write": "hbm", "link_send": "link", "link_wait": "link", "link_recv": "link"}


@dataclass(frozen=True, slots=True)
class Op:
    id: int
    name: str
    kind: str
    phase: str
    layer: int  # -1 before the first layer (embedding), L for the head
    m: int = 0
    n: int = 0
    k: int = 0
    count: int = 1
    weight: str = ""  # static weight key such as "L3.q" (static_mm / program) or "" otherwise
    transposed: bool = False
    vector_kind: str = ""
    elements: int = 0
    nbytes: int = 0
    deps: tuple[int, ...] = ()
    chunk: int = 0  # pipeline chunk (token group) of the op; 0 for whole-step ops
    # part ``part`` of ``parts`` of a head-parallel op the mapper split over cores (its heads'
    # share of the count or elements; :mod:`atleus_dist.workload.head_split`); 0 of 1: whole
    part: int = 0
    parts: int = 1
    # an HBM op whose data the mapper placed in one channel (a streamed weight slice,
    # :mod:`atleus_dist.workload.streaming`): its index; -1: interleaved over every channel
    channel: int = -1
    # a link op: the chip at the other end (-1: not a link op)
    peer: int = -1
    # mode generate: the decode step (0 .. new_tokens - 1) of a decode op; -1 for every other op
    step: int = -1

    @property
    def tier(self) -> str:
        return TIER_OF_KIND[self.kind]

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k * self.count if self.kind in ("static_mm", "dynamic_mm") else 0

    @property
    def flops(self) -> int:
        return 2 * self.macs


class OpGraph:
    """Ops in topological order, built with :meth:`add`."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def add(self, name: str, kind: str, phase: str, layer: int, deps=(), **fields) -> int:
        if kind not in KINDS:
            raise ConfigError("kind", f"unknown op kind {kind!r}", allowed=", ".join(KINDS))
        if phase not in PHASES:
            raise ConfigError("phase", f"unknown phase {phase!r}", allowed=", ".join(PHASES))
        oid = len(self.ops)
        clean = tuple(sorted({int(d) for d in deps if d is not None}))
        if clean and clean[-1] >= oid:
            raise ValueError(f"op {name}: dependency {clean[-1]} is not earlier than {oid}")
        self.ops.append(Op(oid, name, kind, phase, layer, deps=clean, **fields))
        return oid

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self):
        return iter(self.ops)

    def flops_by_phase(self) -> dict[str, int]:
        out = {p: 0 for p in PHASES}
        for op in self.ops:
            out[op.phase] += op.flops
        return out

    def macs_by_tier(self) -> dict[str, int]:
        out = {"reram": 0, "systolic": 0}
        for op in self.ops:
            if op.macs:
                out[op.tier] += op.macs
        return out

    def kinds(self) -> Counter:
        return Counter(op.kind for op in self.ops)

    def layer_subgraph(self, layer: int) -> "OpGraph":
        """The ops of one layer, with deps outside the layer dropped and ids renumbered."""
        keep = [op for op in self.ops if op.layer == layer]
        new_id = {op.id: i for i, op in enumerate(keep)}
        g = OpGraph()
        for op in keep:
            g.ops.append(Op(new_id[op.id], op.name, op.kind, op.phase, op.layer, op.m, op.n, op.k, op.count,
                            op.weight, op.transposed, op.vector_kind, op.elements, op.nbytes,
                            tuple(new_id[d] for d in op.deps if d in new_id), op.chunk, op.part, op.parts,
                            op.channel, op.peer, op.step))
        return g

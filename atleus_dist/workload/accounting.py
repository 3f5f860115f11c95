"""Counting what a step does, as published figures count it: FLOPs per phase (matmul and vector)
and the share of operations on the ReRAM tiers under two conventions.

- ``whole step`` (ours): every matmul MAC of the step - forward, backward (transposed ReRAM reads,
  attention and LoRA gradients) and the head - with attention counted densely (all s x s scores,
  as dense kernels and our systolic timing compute them).
- ``paper`` (Atleus, Dhingra et al. TCAD 2025: "91.9% of operations run on ReRAM" for GPT-2 Medium
  at s1024): the forward pass only, with a causal model's masked attention scores skipped (a query
  at position p reads p + 1 keys), LoRA adapters on the systolic side.

Vector FLOPs are elements x element-ops of their kind (the vector unit's table in
:class:`~atleus_dist.hw.systolic.SystolicCoreConfig`, one source for timing and counting); an
optimizer update is vector work, which is why a matmul-only count shows ``update 0``.
Knows nothing of mapping, LPs, files or Ray.
"""

from __future__ import annotations

import re

from atleus_dist.hw.systolic import SystolicCoreConfig
from atleus_dist.workload.graph import PHASES, OpGraph
from atleus_dist.workload.scenario import Scenario

ATTENTION_OPS = ("qk", "av")  # L{i}.qk / L{i}.av (forward); backward names add a suffix


def step_flops(graph: OpGraph, vector_cfg: SystolicCoreConfig | None = None) -> dict[str, dict[str, int]]:
    """``{"matmul": {phase: FLOPs}, "vector": {phase: FLOPs}, "total": {phase: FLOPs}}``, with a
    ``"total"`` key in each inner dict. A MAC is 2 FLOPs; a vector element-op is 1."""
    cfg = vector_cfg or SystolicCoreConfig()
    phases = [p for p in PHASES if p in ("fwd", "bwd", "update") or any(op.phase == p for op in graph)]
    mm = {p: 0 for p in phases}
    vec = {p: 0 for p in phases}
    for op in graph:
        if op.kind == "vector":
            vec[op.phase] += op.elements * getattr(cfg, f"{op.vector_kind}_ops_per_elem")
        else:
            mm[op.phase] += op.flops
    tot = {p: mm[p] + vec[p] for p in phases}
    for d in (mm, vec, tot):
        d["total"] = sum(d[p] for p in phases)
    return {"matmul": mm, "vector": vec, "total": tot}


def _attention_op(name: str) -> bool:
    base = re.sub(r"\.h\d+$", "", name.split("[", 1)[0])  # drop the chunk "[c3]" and head-group ".h2" suffixes
    return base.rsplit(".", 1)[-1] in ATTENTION_OPS and base.startswith("L")


def causal_kept_macs(sc: Scenario, op) -> int:
    """MACs of a forward QK^T or AV op of chunk ``op.chunk`` counting only unmasked scores: the
    chunk's rows sit at positions a..a+c-1 and row p reads keys 0..p."""
    a, c = sc.chunks()[op.chunk]
    head_dim = op.k if op.n == sc.seq else op.n  # qk: (c x hd)(hd x s); av: (c x s)(s x hd)
    kept_scores = c * a + c * (c + 1) // 2
    return op.count * head_dim * kept_scores


def reram_op_share(sc: Scenario, graph: OpGraph) -> dict[str, float]:
    """ReRAM share of matmul MACs: ``whole_step`` (ours) and ``paper`` (forward, causal skipped)."""
    whole = {"reram": 0, "systolic": 0}
    paper = {"reram": 0, "systolic": 0}
    for op in graph:
        if not op.macs:
            continue
        whole[op.tier] += op.macs
        if op.phase != "fwd":
            continue
        macs = op.macs
        if sc.model.causal and op.kind == "dynamic_mm" and _attention_op(op.name):
            macs = causal_kept_macs(sc, op)
        paper[op.tier] += macs

    def share(d):
        total = d["reram"] + d["systolic"]
        return d["reram"] / total if total else 0.0

    return {"whole_step": share(whole), "paper": share(paper)}

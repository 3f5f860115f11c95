"""The work of a system of chips: one step cut into pipeline stages over chips, micro-batches
under a schedule, data-parallel replicas whose gradients are all-reduced over the links - as one
op graph per chip, with the off-chip transfers as link ops (:mod:`atleus_dist.workload.graph`).

- **Stages**: the layers cut into ``system.stages`` contiguous stages minimising the largest
  stage's crossbars (the embedding read joins the first stage, the final norm, head and loss the
  last, the head's crossbars counted there); each stage runs on its own chip, its weights resident
  when they fit (the chip's mapper streams them otherwise).
- **Micro-batches**: each replica's share of the batch is cut into ``micro_batches`` micro-batches
  of whole sequences. A stage runs one micro-batch phase at a time (a *unit*: the forward ``F k``
  or backward ``B k`` of micro-batch k on that stage), in the order of the schedule - ``gpipe``:
  every forward, then every backward (Huang et al. 2019); ``1f1b``: ``stages - s - 1`` warm-up
  forwards, then one forward and one backward in turn, then the remaining backwards (Narayanan et
  al., SC 2021). The order is enforced by control deps: the first ops of a unit wait for the last
  ops of the previous unit on that chip; sends leave on the link port without holding the next unit.
- **Transfers**: an op whose input was produced on another stage gets a ``link_recv`` (fed by a
  ``link_wait`` standing for the far end); the producing chip a ``link_send`` of the producer's
  result. Activations go forward, activation gradients backward, per micro-batch and pipeline chunk.
- **Gradients**: micro-batches accumulate into one update per stage; with ``data_parallel`` > 1 the
  trainable gradients (16-bit, ``ACT_BYTES``) are all-reduced over each stage's replicas by a ring
  (2 (n - 1) steps of 1/n each; the I/O controller adds at line rate - assumed, docs/assumptions.md)
  per layer as backward produces them (``bucketed``, as PyTorch DDP) or once after the whole
  backward (``after-backward``); each layer's update waits for its reduced gradients.
- **Generate** (mode ``generate``, :mod:`atleus_dist.workload.decode`): a stage's units are the
  prefill ``P k`` of every micro-batch, then decode step t of every micro-batch (``D t.k``), t
  after t; a token's activations cross the links at every stage boundary, and its sampled token
  goes from the last stage back to the first (the next step's embedding read waits for it).

Knows nothing of hardware timing beyond crossbar counts, of LPs, files, processes or Ray.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from atleus_dist.hw.chip_program import result_bytes
from atleus_dist.hw.links import SystemConfig
from atleus_dist.hw.params import ACT_BYTES
from atleus_dist.hw.reram import ReramCore
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.workload.compiler import compile_step
from atleus_dist.workload.graph import Op, OpGraph
from atleus_dist.workload.scenario import Scenario

GRAD_BYTES = ACT_BYTES  # gradients all-reduced in 16 bits, as the activations (mixed precision)


@dataclass(frozen=True)
class Transfer:
    """One off-chip transfer: ``send`` (an op name on ``src``) feeds ``wait`` (on ``dst``)."""

    src: int
    send: str
    dst: int
    wait: str
    nbytes: int


@dataclass
class SystemWork:
    graphs: list[OpGraph]  # per chip
    transfers: list[Transfer]
    stage_layers: list[tuple[int, int]]  # per stage: its layers [first, end)
    stage_crossbars: list[int]
    system: SystemConfig
    micro_batches: int
    schedule: str
    micro_batch_size: int
    order: list[list[str]] = field(default_factory=list)  # per stage: its units ("F0", "B0", ...)

    def meta(self) -> dict:
        return {"stages": [list(r) for r in self.stage_layers], "stage_crossbars": self.stage_crossbars,
                "micro_batches": self.micro_batches, "schedule": self.schedule,
                "micro_batch_size": self.micro_batch_size, "data_parallel": self.system.data_parallel,
                "unit_order": self.order}


def _out_bytes(op: Op) -> int:
    return result_bytes(op, op.nbytes)


def layer_crossbars(sc: Scenario, rc: ReramCore) -> tuple[list[int], int]:
    """Crossbars of each layer's frozen weights and of the head, at the scenario's bits."""
    m = sc.model
    per_layer = sum(rc.block(k, n, sc.quant.bits_for(w)).crossbars for w, (k, n) in m.linear_shapes().items())
    head = m.head_shape()
    return [per_layer] * m.layers, rc.block(head[0], head[1], sc.quant.bits_for("head")).crossbars if head else 0


def split_stages(costs: list[int], head: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous layer ranges minimising the largest stage's cost (the head on the last)."""
    n = len(costs)
    if not 1 <= parts <= n:
        raise ConfigError("system.pipeline_stages", f"{parts} stages for {n} layers", allowed=f"1..{n}")
    lo, hi = max(costs + [costs[-1] + head]), sum(costs) + head

    def cut(limit: int) -> list[tuple[int, int]] | None:
        out, start, acc = [], 0, 0
        for i, c in enumerate(costs):
            c = c + (head if i == n - 1 else 0)
            if acc + c > limit or n - i < parts - len(out):  # leave a layer for every later stage
                if i == start:
                    return None
                out.append((start, i))
                start, acc = i, 0
            acc += c
        out.append((start, n))
        return out if len(out) == parts else None

    while lo < hi:  # the least limit that cuts into exactly ``parts`` stages
        mid = (lo + hi) // 2
        if cut(mid) is None:
            lo = mid + 1
        else:
            hi = mid
    best = cut(lo)
    if best is None:  # a limit that cuts into fewer stages: split the largest until there are enough
        raise ConfigError("system.pipeline_stages", f"cannot cut {n} layers into {parts} stages")
    return best


def fewest_chips(sc: Scenario, arch) -> dict:
    """The fewest pipeline stages (chips) whose largest stage's weights fit one chip's crossbars,
    and that split (``model-info``)."""
    rc = ReramCore(arch.reram)
    costs, head = layer_crossbars(sc, rc)
    cap = arch.crossbar_capacity
    for p in range(1, len(costs) + 1):
        split = split_stages(costs, head, p)
        per = [sum(costs[a:b]) + (head if b == len(costs) else 0) for a, b in split]
        if max(per) <= cap:
            return {"chips": p, "stages": [list(r) for r in split], "stage_crossbars": per, "capacity": cap}
    return {"chips": None, "stages": None, "stage_crossbars": None, "capacity": cap}


def generate_units(m: int, new_tokens: int) -> list[str]:
    """A stage's units in mode generate: every micro-batch's prefill, then decode step by step."""
    return [f"P{k}" for k in range(m)] + [f"D{t}.{k}" for t in range(new_tokens) for k in range(m)]


def _unit(u: str) -> tuple[str, int, int]:
    """(phase, decode step or -1, micro-batch) of a unit name (``F3``, ``B3``, ``P3``, ``D5.3``)."""
    if u[0] == "D":
        t, k = u[1:].split(".")
        return "decode", int(t), int(k)
    return {"F": "fwd", "B": "bwd", "P": "prefill"}[u[0]], -1, int(u[1:])


def schedule_units(schedule: str, stages: int, stage: int, m: int, train: bool) -> list[str]:
    if not train:
        return [f"F{k}" for k in range(m)]
    if schedule == "gpipe":
        return [f"F{k}" for k in range(m)] + [f"B{k}" for k in range(m)]
    warm = min(stages - stage - 1, m)
    out = [f"F{k}" for k in range(warm)]
    f, b = warm, 0
    while b < m:
        if f < m:
            out.append(f"F{f}")
            f += 1
        out.append(f"B{b}")
        b += 1
    return out


def system_work(sc: Scenario, arch, system: SystemConfig, micro_batches: int, schedule: str) -> SystemWork:
    """The per-chip graphs of one step of ``sc`` on ``system``."""
    dp, p, m = system.data_parallel, system.stages, micro_batches
    if sc.batch % (dp * m):
        raise ConfigError("scenario.micro_batches", f"{dp} replica(s) x {m} micro-batches do not divide the "
                          f"batch of {sc.batch} sequences", allowed="a divisor of scenario.batch / system.data_parallel")
    mb = dataclasses.replace(sc, batch=sc.batch // (dp * m))
    g = compile_step(mb)
    L = sc.model.layers
    costs, head = layer_crossbars(sc, ReramCore(arch.reram))
    split = split_stages(costs, head, p)
    stage_of_layer = {-1: 0, L: p - 1}
    for s, (a, b) in enumerate(split):
        stage_of_layer.update({i: s for i in range(a, b)})
    builder = _Builder(g, [stage_of_layer[op.layer] for op in g], system, sc)
    order = [generate_units(m, sc.new_tokens) if sc.mode == "generate" else
             schedule_units(schedule, p, s, m, sc.mode == "finetune") for s in range(p)]
    for r in range(dp):
        for s in range(p):
            builder.chip_graph(s, r, order[s])
    per = [sum(costs[a:b]) + (head if b == L else 0) for a, b in split]
    return SystemWork(builder.graphs, builder.transfers, split, per, system, m, schedule, mb.batch, order)


class _Builder:
    """Copies the micro-batch graph ``g`` into per-chip graphs (see the module docstring)."""

    def __init__(self, g: OpGraph, stage: list[int], system: SystemConfig, sc: Scenario) -> None:
        self.g, self.stage, self.sys, self.sc = g, stage, system, sc
        self.graphs = [OpGraph() for _ in range(system.chips)]
        self.transfers: list[Transfer] = []
        consumers: dict[int, list[int]] = {}
        for op in g:
            for d in op.deps:
                consumers.setdefault(d, []).append(op.id)
        self.consumers = consumers
        # producer -> stages (other than its own) that consume it
        self.remote = {d: sorted({stage[c] for c in cs} - {stage[d]}) for d, cs in consumers.items()}

    def _unit_set(self, s: int, phase: str, step: int = -1) -> list[int]:
        return [op.id for op in self.g if self.stage[op.id] == s and op.phase == phase and op.step == step]

    def chip_graph(self, s: int, r: int, units: list[str]) -> None:
        sysc, g = self.sys, self.g
        chip = sysc.chip_of(s, r)
        out = self.graphs[chip]
        ids: dict[tuple[int, int], int] = {}  # (op of g, micro-batch) -> id in out
        recv: dict[tuple[int, int], int] = {}
        prev_sinks: list[int] = []
        grads: dict[int, list[int]] = {}  # layer -> its weight-gradient ops, every micro-batch
        for u in units:
            phase, step, k = _unit(u)
            members = self._unit_set(s, phase, step)
            inside = set(members)
            made = []
            for o in members:
                op = g.ops[o]
                deps, root = [], True
                for d in op.deps:
                    if self.stage[d] != s:
                        deps.append(self._recv(out, chip, recv, d, k, r, step))
                    elif d in inside:
                        deps.append(ids[(d, k)])
                        root = False
                    else:
                        deps.append(ids[(d, k)])  # a forward op of this micro-batch, earlier on this chip
                if root:
                    deps += prev_sinks
                ids[(o, k)] = new = out.add(f"{op.name}@mb{k}", op.kind, op.phase, op.layer, deps, **_fields(op))
                made.append((o, new))
                if phase == "bwd" and self._feeds_update(o):
                    grads.setdefault(op.layer, []).append(new)
                for dst_stage in self.remote.get(o, ()):
                    self._send(out, chip, sysc.chip_of(dst_stage, r), f"{op.name}@mb{k}", new, _out_bytes(op))
            prev_sinks = [new for o, new in made if not any(c in inside for c in self.consumers.get(o, ()))]
        if self.sc.mode != "finetune":
            return
        reduced = self._allreduce(out, s, r, grads)
        for o in self._unit_set(s, "update"):
            op = g.ops[o]
            deps = [x for d in op.deps for x in (grads.get(op.layer, []) if g.ops[d].phase == "bwd" else [ids[(d, 0)]])]
            deps += reduced.get(op.layer, [])
            if not any(self.stage[d] == s and g.ops[d].phase == "update" for d in op.deps):
                deps += prev_sinks
            ids[(o, 0)] = out.add(op.name, op.kind, op.phase, op.layer, deps, **_fields(op))

    def _feeds_update(self, o: int) -> bool:
        return any(self.g.ops[c].phase == "update" for c in self.consumers.get(o, ()))

    def _send(self, out: OpGraph, chip: int, dst: int, what: str, producer: int, nbytes: int) -> int:
        name = f"link.send:{what}>c{dst}"
        p = out.ops[producer]
        sid = out.add(name, "link_send", p.phase, p.layer, [producer], nbytes=nbytes, peer=dst, step=p.step)
        self.transfers.append(Transfer(chip, name, dst, f"link.wait:{what}<c{chip}", nbytes))
        return sid

    def _recv(self, out: OpGraph, chip: int, recv: dict, d: int, k: int, r: int, step: int = -1) -> int:
        """The receive of op ``d``'s result of micro-batch ``k`` (``step``: the decode step of the
        unit that needs it, so a sampled token's trip back to the first stage is the next step's)."""
        if (d, k) in recv:
            return recv[(d, k)]
        op, src = self.g.ops[d], self.sys.chip_of(self.stage[d], r)
        what = f"{op.name}@mb{k}"
        w = out.add(f"link.wait:{what}<c{src}", "link_wait", op.phase, op.layer, (), nbytes=_out_bytes(op), peer=src,
                    step=step)
        recv[(d, k)] = rid = out.add(f"link.recv:{what}<c{src}", "link_recv", op.phase, op.layer, [w],
                                     nbytes=_out_bytes(op), peer=src, step=step)
        return rid

    def _allreduce(self, out: OpGraph, s: int, r: int, grads: dict[int, list[int]]) -> dict[int, list[int]]:
        """Ring all-reduce of each bucket's gradients over the stage's replicas; layer -> the ops
        its update must wait for (the all-gather's receives, every chunk of the reduced gradient)."""
        sysc = self.sys
        n = sysc.data_parallel
        if n == 1:
            return {}
        layers = sorted(grads, reverse=True)  # backward produces the last layer's gradients first
        buckets = [[la] for la in layers] if sysc.allreduce == "bucketed" else [layers]
        ring = [sysc.chip_of(s, q) for q in range(n)]
        me, nxt, prv = ring[r], ring[(r + 1) % n], ring[(r - 1) % n]
        out_of: dict[int, list[int]] = {}
        for bucket in buckets:
            nbytes = sum(self._grad_bytes(la) for la in bucket)
            chunk = -(-nbytes // n)
            tag = f"ar:L{bucket[0]}" + (f"-{bucket[-1]}" if len(bucket) > 1 else "")
            dep = [x for la in bucket for x in grads[la]]
            gathered = []
            for j in range(2 * (n - 1)):
                out.add(f"link.send:{tag}.{j}>c{nxt}", "link_send", "update", bucket[0], dep, nbytes=chunk, peer=nxt)
                self.transfers.append(Transfer(me, f"link.send:{tag}.{j}>c{nxt}", nxt, f"link.wait:{tag}.{j}<c{me}",
                                               chunk))
                w = out.add(f"link.wait:{tag}.{j}<c{prv}", "link_wait", "update", bucket[0], (), nbytes=chunk, peer=prv)
                rid = out.add(f"link.recv:{tag}.{j}<c{prv}", "link_recv", "update", bucket[0], [w], nbytes=chunk,
                              peer=prv)
                dep = [rid]
                if j >= n - 2:  # the all-gather's chunks (and the last reduce-scatter step's own)
                    gathered.append(rid)
            for la in bucket:
                out_of[la] = gathered
        return out_of

    def _grad_bytes(self, layer: int) -> int:
        sc, m = self.sc, self.sc.model
        if sc.uses_lora:
            return sc.lora_params() // m.layers * GRAD_BYTES
        if layer < m.layers:
            return m.layer_params() * GRAD_BYTES
        return (m.param_count() - m.layers * m.layer_params()) * GRAD_BYTES


def _fields(op: Op) -> dict:
    return dict(m=op.m, n=op.n, k=op.k, count=op.count, weight=op.weight, transposed=op.transposed,
                vector_kind=op.vector_kind, elements=op.elements, nbytes=op.nbytes, chunk=op.chunk,
                part=op.part, parts=op.parts, channel=op.channel, peer=op.peer, step=op.step)


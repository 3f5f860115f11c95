"""Mode ``generate``: a prefill of the prompt, then token-by-token decode with a KV cache.

The op graph (built from the inference graph of the prompt, :func:`generate_graph`):

- **prefill** (phase ``prefill``, step -1): today's forward pass over ``seq`` prompt tokens of
  ``batch`` sequences (pipelined in chunks as any forward), plus, per layer and chunk, an
  ``hbm_write`` of the chunk's K and V to the KV cache; the LM head on the last position of each
  sequence only (m = batch rows) and the sampling of the first new token: its end is the time to
  first token.
- **decode step t** (phase ``decode``, ``step`` t, t = 0 .. new_tokens - 1): one token of each
  sequence (position seq + t) through every layer: the static matmuls as matrix-vector work on the
  ReRAM cores holding the weights (m = batch: one input row per sequence), the K/V of the
  seq + t previous positions read from the cache (one ``hbm_read`` per layer of
  batch x (seq + t) x bytes_per_token_layer) and attention over them and the new position on the
  layer's systolic core (grouped-query: each KV head's h / kv_heads query heads as the rows of
  one matmul), the new K/V appended (one ``hbm_write`` of batch x bytes_per_token_layer), the LM
  head and the sampling (:data:`SAMPLING`). Step t + 1 starts from step t's token (its embedding
  read waits for the sampling), and a layer's cache read waits for the previous step's append.

KV bytes per token per layer: 2 x kv_heads x head_dim x ``KV_BYTES`` (16-bit, as the
activations). ``kv_cache: hbm`` interleaves the cache over the HBM channels as saved activations
are (every read is striped over the memory's ports on the chip); ``edram`` keeps it on chip in
the ReRAM tiles' eDRAM buffers when it fits (:func:`check_kv_fits`), with no KV ops at all: an
optimistic bound (no buffer reads or NoC traffic charged for the cache).

The new tokens are counted as the issue states them: the prefill yields the first token, then
``new_tokens`` decode steps yield one more each (``batch x (new_tokens + 1)`` tokens in all).
Knows nothing of hardware timing, mapping, LPs, files or Ray.
"""

from __future__ import annotations

import dataclasses

from atleus_dist.hw.params import ACT_BYTES
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.workload.graph import OpGraph
from atleus_dist.workload.scenario import Scenario

KV_BYTES = ACT_BYTES  # K and V cached at the activations' 16 bits
# Greedy sampling: argmax over the vocabulary of each sequence's logits on the vector unit, one
# compare-and-select per logit (the vector kind ``argmax``); the token id goes to the embedding read.
SAMPLING = "argmax"


def prompt_scenario(sc: Scenario) -> Scenario:
    """The prompt's forward pass (mode inference) of a generate scenario: what the prefill runs."""
    return dataclasses.replace(sc, mode="inference", new_tokens=None, kv_cache="hbm")


def kv_bytes_per_token_layer(sc: Scenario) -> int:
    """2 x kv_heads x head_dim x bytes: one position's K and V in one layer (GQA: kv_heads)."""
    m = sc.model
    return 2 * m.kv_heads * m.head_dim * KV_BYTES


def kv_cache_bytes(sc: Scenario) -> int:
    """The cache at the end of the run: every layer, seq + new_tokens positions, every sequence."""
    return sc.model.layers * kv_bytes_per_token_layer(sc) * (sc.seq + (sc.new_tokens or 0)) * sc.batch


def check_kv_fits(sc: Scenario, edram_bytes: int) -> None:
    """Refuse ``kv_cache: edram`` when the cache exceeds the chip's eDRAM buffers."""
    if sc.mode == "generate" and sc.kv_cache == "edram" and kv_cache_bytes(sc) > edram_bytes:
        raise ConfigError("kv_cache", f"the KV cache needs {kv_cache_bytes(sc):,} bytes but the ReRAM tiles' "
                          f"eDRAM buffers hold {edram_bytes:,}", allowed="hbm")


class _Decoder:
    def __init__(self, sc: Scenario, prompt: OpGraph) -> None:
        self.sc, self.m, self.prompt = sc, sc.model, prompt
        self.g = OpGraph()
        self.hbm = sc.kv_cache == "hbm"
        self.kvpt = kv_bytes_per_token_layer(sc)
        # per layer: the cache op the next read must follow (the last append or the prefill's writes)
        self.last_write: dict[int, list[int]] = {}

    # --- prefill -------------------------------------------------------------------------------
    def prefill(self) -> int:
        """The prompt's graph as phase prefill with KV writes; returns the first token's sampling."""
        g, m, B = self.g, self.m, self.sc.batch
        last = max(op.chunk for op in self.prompt)
        new_id: dict[int, int] = {}
        kv_of: dict[tuple[int, int], int] = {}  # (layer, chunk) -> the K projection
        head = None
        for op in self.prompt:
            fields = dict(m=op.m, n=op.n, k=op.k, count=op.count, weight=op.weight, vector_kind=op.vector_kind,
                          elements=op.elements, nbytes=op.nbytes, chunk=op.chunk)
            if op.layer == m.layers:  # final norm and head: the last position of each sequence only
                if op.chunk != last:
                    continue
                if op.kind == "vector":
                    fields["elements"] = B * m.d_model
                else:
                    fields["m"] = B
            deps = [new_id[d] for d in op.deps if d in new_id]
            new_id[op.id] = g.add(op.name, op.kind, "prefill", op.layer, deps, **fields)
            if op.weight == "head":
                head = new_id[op.id]
            key = (op.layer, op.chunk)
            if op.kind == "static_mm" and op.weight == f"L{op.layer}.k":
                kv_of[key] = new_id[op.id]
            if op.kind == "static_mm" and op.weight == f"L{op.layer}.v" and self.hbm:
                c = self.prompt_rows(op)
                w = g.add(f"L{op.layer}.kv_write" + (f"[c{op.chunk}]" if last else ""), "hbm_write", "prefill",
                          op.layer, [kv_of[key], new_id[op.id]], nbytes=c * self.kvpt, chunk=op.chunk)
                self.last_write.setdefault(op.layer, []).append(w)
        return self.sample(head, "prefill", -1)

    def prompt_rows(self, op) -> int:
        return op.m * op.count  # a projection's rows: the chunk's positions of every sequence

    def sample(self, head: int, phase: str, step: int) -> int:
        name = "sample" if step < 0 else f"t{step}.sample"
        return self.g.add(name, "vector", phase, self.m.layers, [head], vector_kind=SAMPLING,
                          elements=self.sc.batch * self.m.vocab, step=step)

    # --- one decode step -----------------------------------------------------------------------
    def step(self, t: int, token: int) -> int:
        """Decode step ``t`` from the sampling op ``token`` of the previous token; returns its own."""
        m, sc, g = self.m, self.sc, self.g
        B, d, hd, L = sc.batch, m.d_model, m.head_dim, m.layers
        group, ctx = m.heads // m.kv_heads, sc.seq + t + 1  # keys: the cached seq + t and the new one
        pre = m.norm_position == "pre"

        def add(name, kind, layer, deps, **f):
            return g.add(f"t{t}.{name}", kind, "decode", layer, deps, step=t, **f)

        def vec(name, kind, elements, layer, deps):
            return add(name, "vector", layer, deps, vector_kind=kind, elements=elements)

        def lin(i, w, x):
            k, n = m.linear_shapes()[w]
            return add(f"L{i}.{w}", "static_mm", i, [x], m=B, n=n, k=k, weight=f"L{i}.{w}")

        x = add("embed", "hbm_read", -1, [token], nbytes=B * d * ACT_BYTES)
        for i in range(L):
            a_in = vec(f"L{i}.norm1", m.norm, B * d, i, [x]) if pre else x
            q, k, v = (lin(i, w, a_in) for w in ("q", "k", "v"))
            kv = []
            if self.hbm:
                kv = [add(f"L{i}.kv_read", "hbm_read", i, [a_in, *self.last_write.get(i, [])],
                          nbytes=B * (sc.seq + t) * self.kvpt)]
            qk = add(f"L{i}.qk", "dynamic_mm", i, [q, k, *kv], m=group, n=ctx, k=hd, count=B * m.kv_heads)
            sm = vec(f"L{i}.softmax", "softmax", B * m.heads * ctx, i, [qk])
            av = add(f"L{i}.av", "dynamic_mm", i, [sm, v, *kv], m=group, n=hd, k=ctx, count=B * m.kv_heads)
            if self.hbm:
                self.last_write[i] = [add(f"L{i}.kv_append", "hbm_write", i, [k, v], nbytes=B * self.kvpt)]
            o = lin(i, "o", av)
            r1 = vec(f"L{i}.residual1", "add", B * d, i, [o, x])
            f_in = vec(f"L{i}.norm2", m.norm, B * d, i, [r1]) if pre else r1
            ups = [lin(i, "gate", f_in), lin(i, "up", f_in)] if m.activation == "swiglu" else [lin(i, "up", f_in)]
            act = vec(f"L{i}.{m.activation}", m.activation, B * m.d_ff, i, ups)
            down = lin(i, "down", act)
            x = vec(f"L{i}.residual2", "add", B * d, i, [down, r1])
            if not pre:
                x = vec(f"L{i}.norm_post", m.norm, B * d, i, [x])
        if m.final_norm:
            x = vec("final_norm", m.norm, B * d, L, [x])
        k, n = m.head_shape()
        head = add("head", "static_mm", L, [x], m=B, n=n, k=k, weight="head")
        return self.sample(head, "decode", t)


def generate_graph(sc: Scenario, prompt: OpGraph) -> OpGraph:
    """The graph of mode generate from ``prompt``, the inference graph of the same prompt."""
    dec = _Decoder(sc, prompt)
    token = dec.prefill()
    for t in range(sc.new_tokens):
        token = dec.step(t, token)
    return dec.g

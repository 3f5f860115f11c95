"""Step compiler: a scenario -> the op graph of one inference pass or one fine-tuning step.

Forward through every layer and the head; for fine-tuning also the loss, backward (activation
gradients through frozen weights as transposed ReRAM reads, through attention on the systolic
tier, LoRA adapter gradients, or weight gradients for full fine-tuning), saved activations written
to and read back from HBM, and the optimizer update (with ReRAM rewrites for full fine-tuning).
Shapes only: knows nothing of hardware timing, mapping, LPs, files or Ray.
"""

from __future__ import annotations

from atleus_dist.hw.params import ACT_BYTES
from atleus_dist.workload.decode import generate_graph, prompt_scenario
from atleus_dist.workload.graph import OpGraph
from atleus_dist.workload.scenario import Scenario

# Korthikanti et al. 2022 ("Reducing Activation Recomputation"): a layer saves 34*s*b*h + 5*a*s^2*b
# bytes of 16-bit activations for backward.
SAVED_PER_TOKEN_D = 34
SAVED_PER_HEAD_S2 = 5
# ... of which the attention block keeps 11*s*b*h + 5*a*s^2*b (its input, Q, K, softmax output and
# dropout mask, dropout output, V, the output projection's input, its dropout mask) and the MLP
# with both LayerNorms the other 23*s*b*h (19 + 4). Backward reloads each part where it is used.
SAVED_ATTN_PER_TOKEN_D = 11
OPT_STATE_BYTES = 12  # Adam in fp32: master weight + two moments (4 bytes each)


class _Compiler:
    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.m = sc.model
        self.g = OpGraph()
        self.T = sc.tokens
        self.train = sc.mode == "finetune"
        self.shapes = self.m.linear_shapes()
        self.lora = set(sc.lora_targets) if sc.uses_lora else set()
        self.weight_grad_ops: dict[int, list[int]] = {}
        self.chunks = sc.chunks()
        self.n = len(self.chunks)

    # --- helpers -------------------------------------------------------------------------------
    def nm(self, base: str, j: int) -> str:
        return base if self.n == 1 else f"{base}[c{j}]"

    def rows(self, j: int) -> int:
        """Token rows of chunk ``j`` (its positions in every sequence of the batch)."""
        return self.chunks[j][1] * self.sc.batch

    def keys(self, j: int) -> list[int]:
        """Chunks whose keys/values query chunk ``j`` reads: itself and earlier ones when causal."""
        return list(range(j + 1)) if self.m.causal else list(range(self.n))

    def queries(self, j: int) -> list[int]:
        """Query chunks that read chunk ``j``'s keys/values (the chunks dK_j/dV_j sum over)."""
        return list(range(j, self.n)) if self.m.causal else list(range(self.n))

    def add(self, name, kind, phase, layer, j, deps=(), **fields):
        return self.g.add(self.nm(name, j), kind, phase, layer, deps, chunk=j, **fields)

    def vec(self, name, kind, elements, phase, layer, deps, j=0):
        return self.add(name, "vector", phase, layer, j, deps, vector_kind=kind, elements=elements)

    def linear_fwd(self, layer: int, w: str, x: int, j: int) -> int:
        k, n = self.shapes[w]
        T = self.rows(j)
        y = self.add(f"L{layer}.{w}", "static_mm", "fwd", layer, j, [x], m=T, n=n, k=k, weight=f"L{layer}.{w}")
        if w in self.lora:
            r = self.sc.lora_rank
            a = self.add(f"L{layer}.{w}.lora_a", "dynamic_mm", "fwd", layer, j, [x], m=T, n=r, k=k)
            b = self.add(f"L{layer}.{w}.lora_b", "dynamic_mm", "fwd", layer, j, [a], m=T, n=n, k=r)
            y = self.vec(f"L{layer}.{w}.lora_add", "add", T * n, "fwd", layer, [y, b], j)
        return y

    def linear_bwd(self, layer: int, w: str, dy: int, j: int, extra: tuple = ()) -> int:
        """dX through W (ReRAM, transposed read); LoRA or full weight gradients (systolic) of chunk
        ``j``: partial sums over its tokens, accumulated in place (the update waits for all chunks).
        ``extra`` are further deps (the saved activations a weight gradient needs)."""
        k, n = self.shapes[w]
        T, key = self.rows(j), f"L{layer}.{w}"
        dx = self.add(f"{key}.dx", "static_mm", "bwd", layer, j, [dy, *extra], m=T, n=k, k=n, weight=key,
                      transposed=True)
        grads = self.weight_grad_ops.setdefault(layer, [])
        if self.sc.full_finetune:
            grads.append(self.add(f"{key}.dw", "dynamic_mm", "bwd", layer, j, [dy, *extra], m=k, n=n, k=T))
        if w in self.lora:
            r = self.sc.lora_rank
            grads.append(self.add(f"{key}.lora_b.dw", "dynamic_mm", "bwd", layer, j, [dy, *extra], m=r, n=n, k=T))
            db = self.add(f"{key}.lora_b.dx", "dynamic_mm", "bwd", layer, j, [dy], m=T, n=r, k=n)
            grads.append(self.add(f"{key}.lora_a.dw", "dynamic_mm", "bwd", layer, j, [db], m=k, n=r, k=T))
            da = self.add(f"{key}.lora_a.dx", "dynamic_mm", "bwd", layer, j, [db], m=T, n=k, k=r)
            dx = self.vec(f"{key}.lora_dx_add", "add", T * k, "bwd", layer, [dx, da], j)
        return dx

    # --- forward -------------------------------------------------------------------------------
    def layer_fwd(self, i: int, xs: list[int]) -> tuple[list[int], list[int | None]]:
        """Layer ``i`` over every chunk. Causal: chunk by chunk (chunk j's attention needs K/V of
        chunks <= j only). Bidirectional: Q/K/V of every chunk first, then the rest chunk by chunk."""
        m, sc, n = self.m, self.sc, self.n
        d, s, B, h, hd = m.d_model, sc.seq, sc.batch, m.heads, m.head_dim
        pre = m.norm_position == "pre"
        q, k, v, a_ins = [0] * n, [0] * n, [0] * n, [0] * n
        outs: list[int] = [0] * n
        saves: list[int | None] = [None] * n

        def qkv(j):
            a_in = self.vec(f"L{i}.norm1", m.norm, self.rows(j) * d, "fwd", i, [xs[j]], j) if pre else xs[j]
            a_ins[j] = a_in
            q[j], k[j], v[j] = (self.linear_fwd(i, w, a_in, j) for w in ("q", "k", "v"))

        def rest(j):
            T, c, x = self.rows(j), self.chunks[j][1], xs[j]
            ks = self.keys(j)
            # scores against all s keys (masked ones included, as in the unchunked graph and dense
            # kernels), so MACs do not depend on the chunking; only the data dependency is causal
            qk = self.add(f"L{i}.qk", "dynamic_mm", "fwd", i, j, [q[j], *(k[a] for a in ks)], m=c, n=s, k=hd,
                          count=B * h)
            sm = self.vec(f"L{i}.softmax", "softmax", B * h * c * s, "fwd", i, [qk], j)
            av = self.add(f"L{i}.av", "dynamic_mm", "fwd", i, j, [sm, *(v[a] for a in ks)], m=c, n=hd, k=s,
                          count=B * h)
            o = self.linear_fwd(i, "o", av, j)
            r1 = self.vec(f"L{i}.residual1", "add", T * d, "fwd", i, [o, x], j)
            f_in = self.vec(f"L{i}.norm2", m.norm, T * d, "fwd", i, [r1], j)
            if m.activation == "swiglu":
                up = [self.linear_fwd(i, "gate", f_in, j), self.linear_fwd(i, "up", f_in, j)]
            else:
                up = [self.linear_fwd(i, "up", f_in, j)]
            act = self.vec(f"L{i}.{m.activation}", m.activation, T * m.d_ff, "fwd", i, up, j)
            down = self.linear_fwd(i, "down", act, j)
            out = self.vec(f"L{i}.residual2", "add", T * d, "fwd", i, [down, f_in if not pre else r1], j)
            if not pre:
                out = self.vec(f"L{i}.norm_post", m.norm, T * d, "fwd", i, [out], j)
            outs[j] = out
            if self.train:
                # the write waits for (and the NoC carries to HBM) the tensors backward reuses:
                # the attention's input, Q, K, V, softmax output and result, the MLP's input, up
                # projection(s) and activation - then the layer's output
                kept = dict.fromkeys([a_ins[j], q[j], k[j], v[j], sm, av, f_in, *up, act, out])
                saves[j] = self.add(f"L{i}.save_act", "hbm_write", "fwd", i, j, list(kept), nbytes=self.saved_bytes(j))

        if m.causal:
            for j in range(n):
                qkv(j)
                rest(j)
        else:
            for j in range(n):
                qkv(j)
            for j in range(n):
                rest(j)
        return outs, saves

    def saved_bytes(self, j: int) -> int:
        """Chunk ``j``'s share of a layer's saved activations: its tokens' 34*d bytes and its query
        rows of the 5*h*s^2 attention term (the shares sum exactly to the layer's total)."""
        m, sc = self.m, self.sc
        c = self.chunks[j][1]
        return c * sc.batch * m.d_model * SAVED_PER_TOKEN_D + self.saved_attn_s2(j)

    def saved_attn_s2(self, j: int) -> int:
        return SAVED_PER_HEAD_S2 * self.m.heads * self.chunks[j][1] * self.sc.seq * self.sc.batch

    def saved_attn_bytes(self, j: int) -> int:
        """The attention block's part of :meth:`saved_bytes` (the rest is the MLP's and the norms')."""
        return self.chunks[j][1] * self.sc.batch * self.m.d_model * SAVED_ATTN_PER_TOKEN_D + self.saved_attn_s2(j)

    # --- backward ------------------------------------------------------------------------------
    def layer_bwd(self, i: int, dys: list[int], saves: list[int | None]) -> list[int]:
        """Backward of layer ``i``, chunks in reverse order (the last chunk's gradient is ready first).

        Row-local ops of chunk j (FFN, norms, residuals, O, dP = dAV V^T, softmax backward,
        dQ = dS K) need chunk j's gradient and the saved K/V of the chunks it attended to. dV and dK
        of key chunk j sum over the query chunks that read it (dV_j = sum_q P_qj^T dAV_q, dK_j =
        sum_q dS_qj^T Q_q): chunks >= j when causal - which is why the backward runs last chunk
        first - and every chunk when bidirectional (then all row-local work precedes any dK/dV)."""
        m, sc, g, n = self.m, self.sc, self.g, self.n
        d, s, B, h, hd = m.d_model, sc.seq, sc.batch, m.heads, m.head_dim
        order = list(reversed(range(n)))
        # chunk j's saved activations come back in two reads, each to where it is used: the MLP's
        # and norms' part (``load``) and the attention block's (``load_at``: softmax backward and,
        # for K and V, the attention of the chunks that attended to j)
        load, load_at = [0] * n, [0] * n
        for j in order:
            attn = self.saved_attn_bytes(j)
            load_at[j] = self.add(f"L{i}.load_act.attn", "hbm_read", "bwd", i, j, [saves[j]], nbytes=attn)
            load[j] = self.add(f"L{i}.load_act.mlp", "hbm_read", "bwd", i, j, [saves[j]],
                               nbytes=g.ops[saves[j]].nbytes - attn)
        dy, d_r1, d_av, dp, ds, dq, dk, dv = ([0] * n for _ in range(8))

        def rows_a(j):  # up to dP: the FFN, the output projection
            T, c = self.rows(j), self.chunks[j][1]
            dy[j] = self.vec(f"L{i}.norm_post.bwd", m.norm, T * d, "bwd", i, [dys[j], load[j]], j) \
                if m.norm_position == "post" else dys[j]
            d_down = self.linear_bwd(i, "down", dy[j], j, (load[j],))
            d_act = self.vec(f"L{i}.{m.activation}.bwd", m.activation, T * m.d_ff, "bwd", i, [d_down], j)
            ups = ["gate", "up"] if m.activation == "swiglu" else ["up"]
            d_f = [self.linear_bwd(i, w, d_act, j) for w in ups]
            d_n2 = self.vec(f"L{i}.norm2.bwd", m.norm, T * d, "bwd", i, d_f, j)
            d_r1[j] = self.vec(f"L{i}.residual1.bwd", "add", T * d, "bwd", i, [d_n2, dy[j]], j)
            d_av[j] = self.linear_bwd(i, "o", d_r1[j], j)
            # dP_j = dAV_j V^T needs V of the chunks j attended to (saved; own chunk already a dep)
            others = [load_at[a] for a in self.keys(j) if a != j]
            dp[j] = self.add(f"L{i}.av.dp", "dynamic_mm", "bwd", i, j, [d_av[j], *others], m=c, n=s, k=hd,
                             count=B * h)

        def dv_of(j):
            c = self.chunks[j][1]
            dv[j] = self.add(f"L{i}.av.dv", "dynamic_mm", "bwd", i, j, [d_av[a] for a in self.queries(j)],
                             m=c, n=hd, k=s, count=B * h)

        def rows_b(j):  # softmax backward and dQ
            c = self.chunks[j][1]
            ds[j] = self.vec(f"L{i}.softmax.bwd", "softmax", B * h * c * s, "bwd", i, [dp[j], load_at[j]], j)
            others = [load_at[a] for a in self.keys(j) if a != j]
            dq[j] = self.add(f"L{i}.qk.dq", "dynamic_mm", "bwd", i, j, [ds[j], *others], m=c, n=hd, k=s,
                             count=B * h)

        def dk_of(j):
            c = self.chunks[j][1]
            dk[j] = self.add(f"L{i}.qk.dk", "dynamic_mm", "bwd", i, j, [ds[a] for a in self.queries(j)],
                             m=c, n=hd, k=s, count=B * h)

        dxs: list[int] = [0] * n

        def tail(j):  # Q/K/V projections backward, norm1, residual
            T = self.rows(j)
            parts = [self.linear_bwd(i, "q", dq[j], j), self.linear_bwd(i, "k", dk[j], j),
                     self.linear_bwd(i, "v", dv[j], j)]
            dx = self.vec(f"L{i}.qkv.dx_sum", "add", T * d, "bwd", i, parts, j)
            if m.norm_position == "pre":
                dx = self.vec(f"L{i}.norm1.bwd", m.norm, T * d, "bwd", i, [dx], j)
            dxs[j] = self.vec(f"L{i}.residual0.bwd", "add", T * d, "bwd", i, [dx, d_r1[j]], j)

        stages = (rows_a, dv_of, rows_b, dk_of, tail)
        if m.causal:  # every dependency of chunk j's stage lies in chunks >= j: already emitted
            for j in order:
                for f in stages:
                    f(j)
        else:
            for f in stages:
                for j in order:
                    f(j)
        return dxs

    # --- whole step -----------------------------------------------------------------------------
    def compile(self) -> OpGraph:
        m, g, L, n = self.m, self.g, self.m.layers, self.n
        xs = [self.add("embed", "hbm_read", "fwd", -1, j, nbytes=self.rows(j) * m.d_model * ACT_BYTES)
              for j in range(n)]
        saves = []
        for i in range(L):
            xs, save = self.layer_fwd(i, xs)
            saves.append(save)
        head = m.head_shape()
        lm = m.head == "lm"
        dys: list[int] = [0] * n
        # an LM head and its loss are per token (per chunk); a classifier (or no head) reads the
        # class token only, which sits in chunk 0
        for j in range(n):
            x = xs[j]
            if m.final_norm:
                x = self.vec("final_norm", m.norm, self.rows(j) * m.d_model, "fwd", L, [x], j)
            if not (lm or j == 0):
                continue
            rows = self.rows(j) if lm else self.sc.batch
            if head is not None:
                x = self.add("head", "static_mm", "fwd", L, j, [x], m=rows, n=head[1], k=head[0], weight="head")
            if self.train:
                dys[j] = self.vec("loss", "loss", rows * (head[1] if head else m.d_model), "fwd", L, [x], j)
        if not self.train:
            return g
        for j in (reversed(range(n)) if lm else [0]):
            dy = dys[j]
            rows = self.rows(j) if lm else self.sc.batch
            if head is not None:
                if self.sc.full_finetune:
                    self.weight_grad_ops.setdefault(L, []).append(
                        self.add("head.dw", "dynamic_mm", "bwd", L, j, [dy], m=head[0], n=head[1], k=rows))
                dy = self.add("head.dx", "static_mm", "bwd", L, j, [dy], m=rows, n=head[0], k=head[1],
                              weight="head", transposed=True)
            dys[j] = dy
        if not lm:
            dys = [dys[0]] * n
        for j in reversed(range(n)):
            if m.final_norm:
                dys[j] = self.vec("final_norm.bwd", m.norm, self.rows(j) * m.d_model, "bwd", L, [dys[j]], j)
        for i in reversed(range(L)):
            dys = self.layer_bwd(i, dys, saves[i])
        self.update()
        return g

    def update(self) -> None:
        sc, m, g = self.sc, self.m, self.g
        per_layer = (sc.lora_params() // m.layers) if sc.uses_lora else m.layer_params()
        layers = range(m.layers) if sc.uses_lora else range(m.layers + 1)
        for i in layers:
            n = per_layer if i < m.layers else m.param_count() - m.layers * m.layer_params()
            deps = self.weight_grad_ops.get(i, [])
            state = g.add(f"L{i}.opt_state.load", "hbm_read", "update", i, deps, nbytes=n * OPT_STATE_BYTES)
            upd = g.add(f"L{i}.{sc.optimizer}", "vector", "update", i, [state] + deps, vector_kind=sc.optimizer,
                        elements=n)
            g.add(f"L{i}.opt_state.store", "hbm_write", "update", i, [upd], nbytes=n * OPT_STATE_BYTES)
            if sc.full_finetune:  # new weights must be written back into the crossbars
                names = list(self.shapes) if i < m.layers else (["head"] if m.head_shape() else [])
                for w in names:
                    key = w if w == "head" else f"L{i}.{w}"
                    k, nout = self.shapes[w] if w != "head" else m.head_shape()
                    g.add(f"{key}.rewrite", "program", "update", i, [upd], m=1, n=nout, k=k, weight=key)


def compile_step(sc: Scenario) -> OpGraph:
    """The op graph of one step of ``sc`` (inference: forward only; generate: workload.decode)."""
    if sc.mode == "generate":
        return generate_graph(sc, _Compiler(prompt_scenario(sc)).compile())
    return _Compiler(sc).compile()

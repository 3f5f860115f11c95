"""Step compiler: a scenario -> the op graph of one inference pass or one fine-tuning step.

Forward through every layer and the head; for fine-tuning also the loss, backward (activation
gradients through frozen weights as transposed ReRAM reads, through attention on the systolic
tier, LoRA adapter gradients, or weight gradients for full fine-tuning), saved activations written
to and read back from HBM, and the optimizer update (with ReRAM rewrites for full fine-tuning).
Shapes only: knows nothing of hardware timing, mapping, LPs, files or Ray.
"""

from __future__ import annotations

from atleus_dist.workload.graph import OpGraph
from atleus_dist.workload.scenario import Scenario

ACT_BYTES = 2  # 16-bit activations and gradients
# Korthikanti et al. 2022 ("Reducing Activation Recomputation"): a layer saves 34*s*b*h + 5*a*s^2*b
# bytes of 16-bit activations for backward.
SAVED_PER_TOKEN_D = 34
SAVED_PER_HEAD_S2 = 5
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

    # --- helpers -------------------------------------------------------------------------------
    def vec(self, name, kind, elements, phase, layer, deps):
        return self.g.add(name, "vector", phase, layer, deps, vector_kind=kind, elements=elements)

    def linear_fwd(self, layer: int, w: str, x: int) -> int:
        k, n = self.shapes[w]
        y = self.g.add(f"L{layer}.{w}", "static_mm", "fwd", layer, [x], m=self.T, n=n, k=k, weight=f"L{layer}.{w}")
        if w in self.lora:
            r = self.sc.lora_rank
            a = self.g.add(f"L{layer}.{w}.lora_a", "dynamic_mm", "fwd", layer, [x], m=self.T, n=r, k=k)
            b = self.g.add(f"L{layer}.{w}.lora_b", "dynamic_mm", "fwd", layer, [a], m=self.T, n=n, k=r)
            y = self.vec(f"L{layer}.{w}.lora_add", "add", self.T * n, "fwd", layer, [y, b])
        return y

    def linear_bwd(self, layer: int, w: str, dy: int, extra: tuple = ()) -> int:
        """dX through W (ReRAM, transposed read); LoRA or full weight gradients (systolic).
        ``extra`` are further deps (the saved activations a weight gradient needs)."""
        k, n = self.shapes[w]
        g, T, key = self.g, self.T, f"L{layer}.{w}"
        dx = g.add(f"{key}.dx", "static_mm", "bwd", layer, [dy, *extra], m=T, n=k, k=n, weight=key,
                   transposed=True)
        grads = self.weight_grad_ops.setdefault(layer, [])
        if self.sc.full_finetune:
            grads.append(g.add(f"{key}.dw", "dynamic_mm", "bwd", layer, [dy, *extra], m=k, n=n, k=T))
        if w in self.lora:
            r = self.sc.lora_rank
            grads.append(g.add(f"{key}.lora_b.dw", "dynamic_mm", "bwd", layer, [dy, *extra], m=r, n=n, k=T))
            db = g.add(f"{key}.lora_b.dx", "dynamic_mm", "bwd", layer, [dy], m=T, n=r, k=n)
            grads.append(g.add(f"{key}.lora_a.dw", "dynamic_mm", "bwd", layer, [db], m=k, n=r, k=T))
            da = g.add(f"{key}.lora_a.dx", "dynamic_mm", "bwd", layer, [db], m=T, n=k, k=r)
            dx = self.vec(f"{key}.lora_dx_add", "add", T * k, "bwd", layer, [dx, da])
        return dx

    # --- forward -------------------------------------------------------------------------------
    def layer_fwd(self, i: int, x: int) -> tuple[int, int | None]:
        m, T, sc = self.m, self.T, self.sc
        d, s, B, h, hd = m.d_model, sc.seq, sc.batch, m.heads, m.head_dim
        pre = m.norm_position == "pre"
        a_in = self.vec(f"L{i}.norm1", m.norm, T * d, "fwd", i, [x]) if pre else x
        q, k, v = (self.linear_fwd(i, w, a_in) for w in ("q", "k", "v"))
        qk = self.g.add(f"L{i}.qk", "dynamic_mm", "fwd", i, [q, k], m=s, n=s, k=hd, count=B * h)
        sm = self.vec(f"L{i}.softmax", "softmax", B * h * s * s, "fwd", i, [qk])
        av = self.g.add(f"L{i}.av", "dynamic_mm", "fwd", i, [sm, v], m=s, n=hd, k=s, count=B * h)
        o = self.linear_fwd(i, "o", av)
        r1 = self.vec(f"L{i}.residual1", "add", T * d, "fwd", i, [o, x])
        f_in = self.vec(f"L{i}.norm2", m.norm, T * d, "fwd", i, [r1])
        if m.activation == "swiglu":
            up = [self.linear_fwd(i, "gate", f_in), self.linear_fwd(i, "up", f_in)]
        else:
            up = [self.linear_fwd(i, "up", f_in)]
        act = self.vec(f"L{i}.{m.activation}", m.activation, T * m.d_ff, "fwd", i, up)
        down = self.linear_fwd(i, "down", act)
        out = self.vec(f"L{i}.residual2", "add", T * d, "fwd", i, [down, f_in if not pre else r1])
        if not pre:
            out = self.vec(f"L{i}.norm_post", m.norm, T * d, "fwd", i, [out])
        save = None
        if self.train:
            nbytes = s * B * d * SAVED_PER_TOKEN_D + SAVED_PER_HEAD_S2 * h * s * s * B
            save = self.g.add(f"L{i}.save_act", "hbm_write", "fwd", i, [out], nbytes=nbytes)
        return out, save

    def layer_bwd(self, i: int, dy: int, save: int | None) -> int:
        m, T, sc = self.m, self.T, self.sc
        d, s, B, h, hd = m.d_model, sc.seq, sc.batch, m.heads, m.head_dim
        g = self.g
        load = g.add(f"L{i}.load_act", "hbm_read", "bwd", i, [save], nbytes=g.ops[save].nbytes)
        dy = self.vec(f"L{i}.norm_post.bwd", m.norm, T * d, "bwd", i, [dy, load]) \
            if m.norm_position == "post" else dy
        d_down = self.linear_bwd(i, "down", dy, (load,))
        d_act = self.vec(f"L{i}.{m.activation}.bwd", m.activation, T * m.d_ff, "bwd", i, [d_down])
        ups = ["gate", "up"] if m.activation == "swiglu" else ["up"]
        d_f = [self.linear_bwd(i, w, d_act) for w in ups]
        d_n2 = self.vec(f"L{i}.norm2.bwd", m.norm, T * d, "bwd", i, d_f)
        d_r1 = self.vec(f"L{i}.residual1.bwd", "add", T * d, "bwd", i, [d_n2, dy])
        d_av = self.linear_bwd(i, "o", d_r1)
        dp = g.add(f"L{i}.av.dp", "dynamic_mm", "bwd", i, [d_av], m=s, n=s, k=hd, count=B * h)
        dv = g.add(f"L{i}.av.dv", "dynamic_mm", "bwd", i, [d_av], m=s, n=hd, k=s, count=B * h)
        ds = self.vec(f"L{i}.softmax.bwd", "softmax", B * h * s * s, "bwd", i, [dp])
        dq = g.add(f"L{i}.qk.dq", "dynamic_mm", "bwd", i, [ds], m=s, n=hd, k=s, count=B * h)
        dk = g.add(f"L{i}.qk.dk", "dynamic_mm", "bwd", i, [ds], m=s, n=hd, k=s, count=B * h)
        dxs = [self.linear_bwd(i, "q", dq), self.linear_bwd(i, "k", dk), self.linear_bwd(i, "v", dv)]
        dx = self.vec(f"L{i}.qkv.dx_sum", "add", T * d, "bwd", i, dxs)
        if m.norm_position == "pre":
            dx = self.vec(f"L{i}.norm1.bwd", m.norm, T * d, "bwd", i, [dx])
        return self.vec(f"L{i}.residual0.bwd", "add", T * d, "bwd", i, [dx, d_r1])

    # --- whole step -----------------------------------------------------------------------------
    def compile(self) -> OpGraph:
        m, T, g, L = self.m, self.T, self.g, self.m.layers
        emb_bytes = T * m.d_model * ACT_BYTES
        x = g.add("embed", "hbm_read", "fwd", -1, nbytes=emb_bytes)
        saves = []
        for i in range(L):
            x, save = self.layer_fwd(i, x)
            saves.append(save)
        if m.final_norm:
            x = self.vec("final_norm", m.norm, T * m.d_model, "fwd", L, [x])
        head = m.head_shape()
        rows = T if m.head == "lm" else self.sc.batch  # a classifier reads the class token only
        if head is not None:
            x = g.add("head", "static_mm", "fwd", L, [x], m=rows, n=head[1], k=head[0], weight="head")
        if not self.train:
            return g
        dy = self.vec("loss", "loss", rows * (head[1] if head else m.d_model), "fwd", L, [x])
        if head is not None:
            if self.sc.full_finetune:
                self.weight_grad_ops.setdefault(L, []).append(
                    g.add("head.dw", "dynamic_mm", "bwd", L, [dy], m=head[0], n=head[1], k=rows))
            dy = g.add("head.dx", "static_mm", "bwd", L, [dy], m=rows, n=head[0], k=head[1],
                       weight="head", transposed=True)
        if m.final_norm:
            dy = self.vec("final_norm.bwd", m.norm, T * m.d_model, "bwd", L, [dy])
        for i in reversed(range(L)):
            dy = self.layer_bwd(i, dy, saves[i])
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
            upd = self.vec(f"L{i}.{sc.optimizer}", sc.optimizer, n, "update", i, [state] + deps)
            g.add(f"L{i}.opt_state.store", "hbm_write", "update", i, [upd], nbytes=n * OPT_STATE_BYTES)
            if sc.full_finetune:  # new weights must be written back into the crossbars
                names = list(self.shapes) if i < m.layers else (["head"] if m.head_shape() else [])
                for w in names:
                    key = w if w == "head" else f"L{i}.{w}"
                    k, nout = self.shapes[w] if w != "head" else m.head_shape()
                    g.add(f"{key}.rewrite", "program", "update", i, [upd], m=1, n=nout, k=k, weight=key)


def compile_step(sc: Scenario) -> OpGraph:
    """The op graph of one step of ``sc`` (inference: forward only)."""
    return _Compiler(sc).compile()

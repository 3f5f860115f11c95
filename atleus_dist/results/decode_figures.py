"""Figures of a ``generate`` run (prefill, then token-by-token decode), from its ``ops`` table.

A generate run's ``ops`` table has a ``step`` column (-1: prefill; t: decode step t) beside
``phase``. Token t's time is the end of the last op of its step (the steps are a chain: a step
starts from the previous step's sampled token), so:

- ``ttft_ps``: first op's start to the prefill's end (its sampling: the first new token);
- per decode step t, ``token_ps[t] = end(t) - end(t - 1)`` (end(-1): the prefill's end):
  ``decode_token_ps_mean`` / ``_p50`` / ``_p99`` over the steps; ``decode_tokens_per_s`` =
  batch x steps / (end of the last step - end of the prefill);
- ``prefill_energy_per_token_j`` = the prefill's energy / (batch x seq) prompt tokens,
  ``decode_energy_per_token_j`` = the decode's energy / (batch x steps) tokens; each phase's energy
  is its ops' energy plus the NoC links' energy split between the phases by time (the ``links``
  table is not per phase);
- what bounds decode (``decode_bound``): the decode time split over the classes of op running
  (:data:`CLASSES`; time when several run at once is split equally among them, time when none runs
  is a transfer between ops: the NoC, or the stub), the largest share named; on a GPU baseline
  (ops in series) also the share of decode time in memory-bound ops (bytes / bandwidth > FLOPs /
  peak, from the run's recorded GPU config).

Knows the ``ops`` table's columns only (:mod:`atleus_dist.results.summary` passes what the
manifest says); nothing of hardware models or LPs.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

PS_PER_S = 1e12
PJ_PER_J = 1e12

# op kind -> what it is in decode
CLASSES = {"static_mm": "ReRAM matrix-vector", "dynamic_mm": "systolic attention", "vector": "vector unit",
           "hbm_read": "HBM (KV cache, embeddings, streamed weights)", "hbm_write": "HBM (KV cache, embeddings, "
           "streamed weights)", "program": "ReRAM programming (streamed weights)", "link_send": "off-chip links",
           "link_recv": "off-chip links", "link_wait": "off-chip links"}
# ... on a GPU baseline (one device, ops in series): what the same kinds are there
GPU_CLASSES = {"static_mm": "weight matmuls", "dynamic_mm": "attention matmuls", "vector": "vector ops",
               "hbm_read": "memory ops", "hbm_write": "memory ops", "program": "weight writes"}
# ... on the 3D-TPU baseline (every matmul on a systolic core, static weights read from HBM per use)
TPU_CLASSES = dict(CLASSES, static_mm="systolic weight matmuls", hbm_read="HBM (weights, KV cache, embeddings)")
TRANSFER = "transfers between ops (NoC or stub)"


def token_times(ops: pa.Table) -> tuple[int, np.ndarray, np.ndarray] | None:
    """(run start, end of the prefill, end of every decode step) in ps; None if not a generate run."""
    if "step" not in ops.column_names or ops.num_rows == 0:
        return None
    step = ops.column("step").to_numpy().astype(np.int64)
    end = ops.column("end_ps").to_numpy()
    n = int(step.max()) + 1
    ends = np.zeros(n + 1, dtype=np.int64)
    np.maximum.at(ends, step + 1, end)
    return int(ops.column("start_ps").to_numpy().min()), int(ends[0]), ends[1:]


def decode_figures(ops: pa.Table | None, kind_names: dict[int, str], batch: int, seq: int,
                   noc_energy_pj: float | None = None, gpu: dict | None = None, baseline: str | None = None) -> dict:
    """The figures named in the module docstring; {} for a run that is not a generate run.
    ``kind_names``: op kind code -> name; ``gpu``: a GPU baseline's recorded config; ``baseline``:
    the simulated baseline's kind (``3d-tpu`` names its op classes as that chip runs them)."""
    times = None if ops is None else token_times(ops)
    if times is None:
        return {}
    start, prefill_end, ends = times
    tokens = np.diff(np.concatenate([[prefill_end], ends])) if len(ends) else np.zeros(0, dtype=np.int64)
    step = ops.column("step").to_numpy()
    energy = ops.column("energy_pj").to_numpy().astype(np.float64)
    total_ps = max(1, int(ends[-1] if len(ends) else prefill_end) - start)
    noc = noc_energy_pj or 0.0
    prefill_ps = prefill_end - start
    e_pre = float(energy[step < 0].sum()) + noc * prefill_ps / total_ps
    e_dec = float(energy[step >= 0].sum()) + noc * (total_ps - prefill_ps) / total_ps
    out = {"ttft_ps": prefill_ps, "prefill_energy_per_token_j": e_pre / (batch * seq) / PJ_PER_J,
           "decode_steps": len(tokens)}
    if len(tokens):
        p50, p99 = np.percentile(tokens, [50, 99])
        span = int(ends[-1] - prefill_end)
        out.update({"decode_token_ps_mean": float(tokens.mean()), "decode_token_ps_p50": float(p50),
                    "decode_token_ps_p99": float(p99), "decode_token_ps_first": int(tokens[0]),
                    "decode_token_ps_last": int(tokens[-1]), "decode_span_ps": span,
                    "decode_tokens_per_s": batch * len(tokens) / (span / PS_PER_S) if span else 0.0,
                    "decode_energy_per_token_j": e_dec / (batch * len(tokens)) / PJ_PER_J})
        shares = decode_shares(ops, kind_names, prefill_end, int(ends[-1]),
                               GPU_CLASSES if isinstance(gpu, dict) else TPU_CLASSES if baseline == "3d-tpu"
                               else CLASSES)
        out.update({f"decode_share_{_key(k)}": v for k, v in shares.items()})
        out["decode_bound"] = max(shares, key=shares.get)
        if isinstance(gpu, dict):
            out["decode_memory_bound_share"] = memory_bound_share(ops, gpu, step >= 0)
    return out


def _key(name: str) -> str:
    return name.split(" (")[0].replace(" ", "_").replace("-", "_").lower()


def decode_shares(ops: pa.Table, names: dict[int, str], t0: int, t1: int,
                  classes: dict[str, str] = CLASSES) -> dict[str, float]:
    """Share of [t0, t1) per class of op running (``classes``: op kind -> class), equal split when
    several run at once, :data:`TRANSFER` when none does (left out when 0). One pass over the
    sorted op boundaries."""
    step = ops.column("step").to_numpy()
    keep = step >= 0
    s = np.clip(ops.column("start_ps").to_numpy()[keep], t0, t1)
    e = np.clip(ops.column("end_ps").to_numpy()[keep], t0, t1)
    kinds = ops.column("kind").to_numpy()[keep]
    labels = sorted({classes.get(names.get(int(k), ""), "other") for k in np.unique(kinds)})
    cls = np.array([labels.index(classes.get(names.get(int(k), ""), "other")) for k in kinds], dtype=np.int64)
    cuts = np.unique(np.concatenate([[t0, t1], s, e]))
    dt = np.diff(cuts).astype(np.float64)
    active = np.zeros((len(labels), len(cuts)), dtype=np.int64)
    np.add.at(active, (cls, np.searchsorted(cuts, s)), 1)
    np.add.at(active, (cls, np.searchsorted(cuts, e)), -1)
    running = (np.cumsum(active, axis=1)[:, :-1] > 0).astype(np.float64)  # class c runs in interval i
    n = running.sum(axis=0)
    span = float(t1 - t0) or 1.0
    out = {lab: float((running[c] * np.where(n > 0, dt / np.maximum(n, 1), 0)).sum() / span)
           for c, lab in enumerate(labels)}
    if dt[n == 0].sum() > 0:
        out[TRANSFER] = float(dt[n == 0].sum() / span)
    return out


def memory_bound_share(ops: pa.Table, gpu: dict, mask: np.ndarray) -> float:
    """Of a GPU baseline's ops in ``mask``, the share of their time in ops whose bytes at the
    achieved bandwidth take longer than their FLOPs at the achieved peak."""
    macs = ops.column("macs").to_numpy()[mask].astype(np.float64)
    nbytes = ops.column("bytes").to_numpy()[mask].astype(np.float64)
    dur = (ops.column("end_ps").to_numpy()[mask] - ops.column("start_ps").to_numpy()[mask]).astype(np.float64)
    compute = 2 * macs / (gpu["peak_flops_per_s"] * gpu.get("compute_efficiency", 1.0))
    memory = nbytes / (gpu["hbm_bytes_per_s"] * gpu.get("memory_efficiency", 1.0))
    return float(dur[memory > compute].sum() / (dur.sum() or 1.0))


# --- words ---------------------------------------------------------------------------------------
def decode_bound_text(s: dict) -> str:
    """What bounds decode, in words, from the summary figures."""
    if "decode_bound" not in s:
        return "no decode steps"
    shares = sorted(((k[len("decode_share_"):], v) for k, v in s.items() if k.startswith("decode_share_")),
                    key=lambda kv: -kv[1])
    text = f"{s['decode_bound']} ({shares[0][1]:.0%} of decode time" + "".join(
        f", {k} {v:.0%}" for k, v in shares[1:4] if v >= 0.005) + ")"
    if "decode_memory_bound_share" in s:
        text += f"; {s['decode_memory_bound_share']:.0%} of it in memory-bound ops (weights + KV bytes / bandwidth)"
    return text


def format_decode(s: dict) -> list[str]:
    """Report lines of a generate run (none for other runs)."""
    if "ttft_ps" not in s:
        return []
    lines = [f"time to first token {s['ttft_ps'] / 1e9:.4g} ms (prefill), prefill "
             f"{s['prefill_energy_per_token_j']:.4g} J per prompt token"]
    if "decode_token_ps_mean" in s:
        lines += [f"decode         {s['decode_steps']} steps, per token mean {s['decode_token_ps_mean'] / 1e6:.4g} us, "
                  f"p50 {s['decode_token_ps_p50'] / 1e6:.4g} us, p99 {s['decode_token_ps_p99'] / 1e6:.4g} us "
                  f"(first {s['decode_token_ps_first'] / 1e6:.4g}, last {s['decode_token_ps_last'] / 1e6:.4g} us)",
                  f"               {s['decode_tokens_per_s']:.4g} tokens/s, {s['decode_energy_per_token_j']:.4g} J "
                  f"per token",
                  f"decode bound   {decode_bound_text(s)}"]
    return lines


def compare_decode(sa: dict, sb: dict) -> dict | None:
    """A's decode advantage over B (> 1: A wins), when both are generate runs."""
    if "decode_tokens_per_s" not in sa or "decode_tokens_per_s" not in sb:
        return None

    def r(num, den):
        return float(num) / float(den) if num and den else None

    return {"decode_speedup": r(sa["decode_tokens_per_s"], sb["decode_tokens_per_s"]),
            "decode_energy_ratio": r(sb["decode_energy_per_token_j"], sa["decode_energy_per_token_j"]),
            "ttft_speedup": r(sb["ttft_ps"], sa["ttft_ps"]),
            "prefill_energy_ratio": r(sb["prefill_energy_per_token_j"], sa["prefill_energy_per_token_j"]),
            "decode_bound_a": decode_bound_text(sa), "decode_bound_b": decode_bound_text(sb)}


def format_compare_decode(d: dict | None) -> list[str]:
    if not d:
        return []

    def x(v):
        return "n/a" if v is None else f"{v:.3g}x"

    return [f"decode speed-up of A over B      {x(d['decode_speedup'])} (tokens/s), energy per token "
            f"{x(d['decode_energy_ratio'])} less",
            f"prefill (TTFT) speed-up of A     {x(d['ttft_speedup'])}, energy per prompt token "
            f"{x(d['prefill_energy_ratio'])} less",
            f"A's decode is bound by: {d['decode_bound_a']}",
            f"B's decode is bound by: {d['decode_bound_b']}"]

"""Figures of a run on a system of chips, from its ``ops`` (with their ``chip`` column) and
``system_links`` tables: each chip's busy time, the pipeline bubble, the all-reduce, the links'
use, and what bounds the step.

- A chip is *active* while any of its compute ops runs (the union of their intervals; link ops
  excluded); the **bubble share** is the share of the step the chips are not active, averaged
  over chips - for a balanced GPipe pipeline (p - 1) / (m + p - 1).
- The **all-reduce** of a chip spans from its first gradient send (an update-phase ``link_send``)
  to its last received chunk; *exposed* is the part after the chip's last backward op.
- A link port's **utilisation** is its busy (serialising) time over the step.

Knows the table schemas only; nothing of hardware models, LPs or backends.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def _union_ps(start: np.ndarray, end: np.ndarray) -> int:
    """Length of the union of intervals [start, end)."""
    if not len(start):
        return 0
    order = np.argsort(start, kind="stable")
    s, e = start[order], end[order]
    reach = np.maximum.accumulate(e)
    gaps = np.maximum(s[1:] - reach[:-1], 0)
    return int(reach[-1] - s[0] - gaps.sum())


def system_figures(ops: pa.Table, links: pa.Table | None, kind_codes: dict[str, int],
                   phase_codes: dict[str, int]) -> dict:
    """The system's figures (empty for a one-chip run: no ``chip`` column)."""
    if ops is None or "chip" not in ops.column_names or ops.num_rows == 0:
        return {}
    col = {c: ops.column(c).to_numpy() for c in ("chip", "kind", "phase", "start_ps", "end_ps")}
    chips = int(col["chip"].max()) + 1
    t0, t1 = int(col["start_ps"].min()), int(col["end_ps"].max())
    step = max(1, t1 - t0)
    link = np.isin(col["kind"], [kind_codes[k] for k in ("link_send", "link_wait", "link_recv")])
    active = []
    ar_span, ar_exposed = [], []
    for c in range(chips):
        mine = col["chip"] == c
        comp = mine & ~link
        active.append(_union_ps(col["start_ps"][comp], col["end_ps"][comp]))
        upd = mine & link & (col["phase"] == phase_codes["update"])
        sends = upd & (col["kind"] == kind_codes["link_send"])
        recvs = upd & (col["kind"] == kind_codes["link_recv"])
        if sends.any() and recvs.any():
            end = int(col["end_ps"][recvs].max())
            ar_span.append(end - int(col["start_ps"][sends].min()))
            bwd = comp & (col["phase"] == phase_codes["bwd"])
            ar_exposed.append(max(0, end - int(col["end_ps"][bwd].max())) if bwd.any() else end - t0)
    act = np.array(active, dtype=np.float64)
    fig = {"chips": chips, "chip_active_ps": [int(a) for a in active],
           "chip_active_share_min": float(act.min() / step), "chip_active_share_max": float(act.max() / step),
           "pipeline_bubble_share": float(1.0 - act.mean() / step)}
    if ar_span:
        fig.update(allreduce_ps=int(max(ar_span)), allreduce_exposed_ps=int(max(ar_exposed)),
                   allreduce_exposed_share=float(max(ar_exposed) / step))
    if links is not None and links.num_rows:
        busy = links.column("busy_ps").to_numpy().astype(np.float64)
        util = busy / step
        # named like the NoC's link classes (``<class>_links``, ...): the report lists them alike
        fig.update(offchip_links=links.num_rows, offchip_link_transfers=int(links.column("transfers").to_numpy().sum()),
                   offchip_link_bytes=int(links.column("bytes").to_numpy().sum()),
                   offchip_link_energy_pj=float(links.column("energy_pj").to_numpy().sum()),
                   offchip_link_utilisation_max=float(util.max()), offchip_link_utilisation_mean=float(util.mean()))
    fig["system_bound"] = system_bound(fig)
    return fig


def system_bound(fig: dict) -> str:
    """What bounds the step, in words: a link kept busy, the pipeline's fill and drain, an exposed
    all-reduce, or the slowest chip's own work (its NoC, memory or cores: ``report`` of that chip)."""
    if fig.get("offchip_link_utilisation_max", 0.0) > 0.5:
        return "off-chip link: a port is busy {:.0%} of the step".format(fig["offchip_link_utilisation_max"])
    if fig.get("allreduce_exposed_share", 0.0) > 0.2:
        return "all-reduce: {:.0%} of the step after the last backward op".format(fig["allreduce_exposed_share"])
    if fig["pipeline_bubble_share"] > 0.3:
        return "pipeline bubble: chips idle {:.0%} of the step (more micro-batches shrink it)".format(
            fig["pipeline_bubble_share"])
    return "the slowest chip's own work: active {:.0%} of the step".format(fig["chip_active_share_max"])



def system_lines(fig: dict, system: dict | None) -> list[str]:
    """The report's lines on a system of chips (none for one chip)."""
    if "chips" not in fig:
        return []
    system = system or {}
    step = max(1, fig.get("step_latency_ps") or 1)
    head = f"system         {fig['chips']} chips"
    if system:
        head += (f" ({len(system.get('stages', []))} pipeline stages x {system.get('data_parallel', 1)} replicas, "
                 f"{system.get('topology')} of {system.get('link', {}).get('preset')} links), "
                 f"{system.get('micro_batches')} micro-batch(es) under {system.get('schedule')}")
    lines = [head]
    if system.get("stages"):
        lines.append("    stages (layers) " + ", ".join(f"{a}-{b - 1}" for a, b in system["stages"])
                     + f"; crossbars per stage {system.get('stage_crossbars')}; streamed on chips "
                     f"{system.get('streamed_chips') or 'none'}")
    lines.append("    chip active (ms, share of the step): " + ", ".join(
        f"{c}: {a / 1e9:.4g} ({a / step:.0%})" for c, a in enumerate(fig["chip_active_ps"])))
    lines.append(f"    pipeline bubble {fig['pipeline_bubble_share']:.1%} of the step (chips idle, mean)")
    if "allreduce_ps" in fig:
        lines.append(f"    all-reduce {fig['allreduce_ps'] / 1e9:.4g} ms per chip (ring), exposed after backward "
                     f"{fig['allreduce_exposed_ps'] / 1e9:.4g} ms ({fig['allreduce_exposed_share']:.1%})")
    if "offchip_link_bytes" in fig:
        lines.append(f"    off-chip: {fig['offchip_link_transfers']:,} transfers, {fig['offchip_link_bytes']:,} bytes, "
                     f"busiest port {fig['offchip_link_utilisation_max']:.2%} of the step")
    lines.append(f"    what bounds the step: {fig['system_bound']}")
    return lines

"""PNG plots of a run directory: per-core timeline, energy breakdown, NoC latency histogram and a
per-tier link-utilisation heatmap. Each plot is drawn from the Arrow tables with numpy arrays in one
call per artist (a PolyCollection for the timeline, ``imshow`` per tier), never a loop over rows.

Uses matplotlib's Agg backend (no display). A plot whose table the run lacks is skipped and named
in the returned ``skipped`` dict. Knows the table schemas; knows nothing of hardware models or LPs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from atleus_dist.results.codes import code_names, recorded, tier_names
from atleus_dist.results.figure import pyplot, spans_decades
from atleus_dist.results.plot_bounds import critical_path_plot
from atleus_dist.results.summary import clock_ps_of, link_utilisation, packet_latency_ps

MAX_TIMELINE_OPS = 200_000  # beyond this the longest ops are drawn (others are < 1 pixel anyway)


def time_unit(span_ps: float) -> tuple[str, float]:
    """The one time unit of every plot of a run, chosen from its step latency (ps per unit)."""
    return next(((u, f) for u, f in (("s", 1e12), ("ms", 1e9), ("us", 1e6), ("ns", 1e3))
                 if span_ps >= 10 * f), ("ps", 1.0))


def timeline(ops: pa.Table, manifest: dict, path: Path) -> None:
    """One row per (tier, core), one rectangle per op coloured by op kind."""
    plt = pyplot()
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    tier = ops.column("tier").to_numpy().astype(np.int64)
    core = ops.column("core").to_numpy().astype(np.int64)
    start = ops.column("start_ps").to_numpy().astype(np.float64)
    end = ops.column("end_ps").to_numpy().astype(np.float64)
    span = float(end.max()) if len(end) else 0.0
    unit, scale = time_unit(span)
    start, end = start / scale, end / scale
    kind = ops.column("kind").to_numpy().astype(np.int64)
    # a system of chips: its cores grouped by chip (one chip: all 0, the rows as before)
    chip = ops.column("chip").to_numpy().astype(np.int64) if "chip" in ops.column_names else np.zeros_like(tier)
    if len(start) > MAX_TIMELINE_OPS:
        keep = np.argsort(start - end, kind="stable")[:MAX_TIMELINE_OPS]
        chip, tier, core, start, end, kind = chip[keep], tier[keep], core[keep], start[keep], end[keep], kind[keep]
    rows, row = np.unique(np.stack([chip, tier, core], axis=1), axis=0, return_inverse=True)
    row = row.reshape(-1)
    y0, y1 = row - 0.4, row + 0.4
    verts = np.stack([np.stack([start, y0], 1), np.stack([end, y0], 1),
                      np.stack([end, y1], 1), np.stack([start, y1], 1)], axis=1)
    kinds, kidx = np.unique(kind, return_inverse=True)
    cmap = plt.get_cmap("tab10")
    colors = cmap(kidx.reshape(-1) % 10)
    fig, ax = plt.subplots(figsize=(12, max(3.0, 0.18 * len(rows) + 1.5)))
    ax.add_collection(PolyCollection(verts, facecolors=colors, edgecolors="none"))
    ax.set_xlim(float(start.min()), float(end.max()) or 1.0)
    ax.set_ylim(-1, len(rows))
    tnames = tier_names(ops, manifest)
    multi = rows[-1, 0] > 0
    labels = [("chip%d." % ch if multi else "") + (f"{tnames.get(int(t), f'tier{t}')}.c{int(c)}" if c >= 0
                                                   else f"{tnames.get(int(t), f'tier{t}')}.hbm")
              for ch, t, c in rows]  # one label per core row (a negative core is the HBM port or a link)
    for y in np.flatnonzero(np.diff(rows[:, 0])):  # a line between chips
        ax.axhline(y + 0.5, color="0.6", linewidth=0.6)
    step = max(1, len(rows) // 40)
    ax.set_yticks(np.arange(0, len(rows), step))
    ax.set_yticklabels(labels[::step], fontsize=7)
    knames = code_names(ops, "kind_codes", "kind")
    ax.legend(handles=[Patch(color=cmap(i % 10), label=knames.get(int(k), f"kind{k}"))
                       for i, k in enumerate(kinds)], fontsize=7, loc="upper right")
    ax.set_xlabel(f"time ({unit})")
    ax.set_title("per-core timeline")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


ENERGY_PARTS = (("ReRAM", ("static_mm", "program")), ("systolic", ("dynamic_mm",)), ("vector", ("vector",)),
                ("HBM", ("hbm_read", "hbm_write")))


def energy_parts(breakdowns: dict[str, dict], noc_energy_pj: float | None) -> dict[str, float]:
    """Energy (pJ) by unit class - ReRAM, systolic arrays, vector units, HBM - plus the NoC links
    and the total (the run's ``energy_pj``: ops + NoC)."""
    kinds = breakdowns.get("kind", {})
    out = {name: float(sum(kinds[k]["energy_pj"] for k in ks if k in kinds)) for name, ks in ENERGY_PARTS}
    if noc_energy_pj is not None:
        out["NoC"] = float(noc_energy_pj)
    out["total"] = float(sum(out.values()))
    return out


def energy_breakdown(breakdowns: dict[str, dict], path: Path, noc_energy_pj: float | None = None) -> None:
    """Energy by unit class with the NoC, HBM and the total (left), and by phase (right), in J;
    a log axis when the bars span two decades or more."""
    plt = pyplot()
    parts = energy_parts(breakdowns, noc_energy_pj)
    phases = {k: v["energy_pj"] for k, v in breakdowns.get("phase", {}).items()}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [len(parts), max(2, len(phases))]})
    for ax, (title, d) in zip(axes, (("energy by unit (NoC = links)", parts), ("energy by phase", phases))):
        names = list(d)
        vals = np.array([d[n] for n in names]) / 1e12
        colors = ["tab:gray" if n == "total" else "tab:blue" for n in names]
        ax.bar(np.arange(len(names)), vals, color=colors)
        for x, v in enumerate(vals):
            ax.annotate(f"{v:.3g}", (x, v), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(np.arange(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        if spans_decades([v for v in vals if v != 0]):  # a zero bar draws nothing either way
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_ylabel("energy (J)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def latency_histogram(packets: pa.Table, clock_ps: int | None, path: Path, unit_scale: tuple[str, float]) -> bool:
    """Packet latency in the run's time unit: total, and its source-queueing and network parts
    (log-spaced bins and a log axis when latencies span decades, as queueing makes them)."""
    plt = pyplot()
    lat = packet_latency_ps(packets, clock_ps)
    if lat is None or lat.size == 0:
        return False
    unit, scale = unit_scale
    series = {"total": lat / scale}
    if clock_ps and {"ctime_cycle", "itime_cycle", "atime_cycle"} <= set(packets.column_names):
        ct, it, at = (packets.column(n).to_numpy().astype(np.float64) for n in ("ctime_cycle", "itime_cycle",
                                                                                   "atime_cycle"))
        series["source queueing"] = (it - ct) * clock_ps / scale
        series["network"] = (at - it) * clock_ps / scale
    pos = np.concatenate([v[v > 0] for v in series.values()])
    log = pos.size > 1 and pos.max() / pos.min() >= 100
    bins = (np.geomspace(pos.min(), pos.max(), 50) if log else
            np.linspace(0, float(lat.max() / scale) or 1.0, 50))
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for (name, v), color in zip(series.items(), ("tab:blue", "tab:orange", "tab:green")):
        ax.hist(v[v > 0] if log else v, bins=bins, histtype="step", linewidth=2.5 if name == "total" else 1.2,
                linestyle="--" if name == "total" else "-", label=name, color=color)
    p50, p99 = np.percentile(lat / scale, [50, 99])
    ax.axvline(p50, color="k", linestyle="--", label=f"total p50 {p50:.3g} {unit}")
    ax.axvline(p99, color="r", linestyle=":", label=f"total p99 {p99:.3g} {unit}")
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(f"packet latency ({unit})")
    ax.set_ylabel("packets (sampled)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def mesh_dims(manifest: dict) -> tuple[int, int, int] | None:
    """(X, Y, Z) of a ``mesh:XxYxZ`` topology in the config (router id = x + X*(y + Y*z))."""
    topo = recorded(manifest, ("noc", "topology"), ("topology",))  # a chip run's NoC, a noc run's
    if not isinstance(topo, str) or not topo.startswith("mesh:"):
        return None
    try:
        dims = [int(p) for p in topo.split(":", 1)[1].lower().split("x")]
    except ValueError:
        return None
    dims += [1] * (3 - len(dims))
    return tuple(dims[:3]) if len(dims) == 3 else None


def link_heatmap(links: pa.Table, manifest: dict, path: Path) -> bool:
    """Per tier, mean utilisation of each router's outgoing links (local ports excluded)."""
    dims = mesh_dims(manifest)
    if dims is None or links.num_rows == 0:
        return False
    plt = pyplot()
    X, Y, Z = dims
    names = code_names(links, "link_classes", "class")
    local = [c for c, n in names.items() if n == "local"]
    cls = links.column("link_class").to_numpy()
    keep = ~np.isin(cls, local)
    router = links.column("router").to_numpy()[keep].astype(np.int64)
    step = (manifest.get("figures") or {}).get("step_latency_ps")
    util = link_utilisation(links, step, clock_ps_of(manifest))[keep]
    n = X * Y * Z
    if router.size == 0 or router.max() >= n:
        return False
    count = np.bincount(router, minlength=n)
    mean = np.bincount(router, weights=util, minlength=n) / np.maximum(count, 1)
    grid = mean.reshape(Z, Y, X)
    vmax = float(grid.max()) or 1.0
    fig, axes = plt.subplots(1, Z, figsize=(3 * Z + 1.5, 3.2), squeeze=False, layout="constrained")
    for z, ax in enumerate(axes[0]):
        im = ax.imshow(grid[z], origin="lower", vmin=0, vmax=vmax, cmap="viridis")
        ax.set_title(f"tier {z}")
        ax.set_xticks(np.arange(X))
        ax.set_yticks(np.arange(Y))
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    fig.colorbar(im, ax=axes[0].tolist(), label="mean link utilisation")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_plots(run_dir: str | os.PathLike, manifest: dict, tables: dict[str, pa.Table],
                breakdowns: dict | None, clock_ps: int | None, bounds: dict | None = None) -> dict:
    """Write every plot the run's tables allow into ``run_dir/plots``; returns written and skipped."""
    out = Path(run_dir) / "plots"
    out.mkdir(exist_ok=True)
    written, skipped = [], {}
    ops, packets, links = tables.get("ops"), tables.get("packets"), tables.get("links")
    step = float(ops.column("end_ps").to_numpy().max()) if ops is not None and ops.num_rows else \
        float((manifest.get("figures") or {}).get("step_latency_ps") or 1.0)
    unit = time_unit(step)
    if ops is not None and ops.num_rows:
        timeline(ops, manifest, out / "timeline.png")
        noc_pj = float(links.column("energy_pj").to_numpy().sum()) if links is not None and links.num_rows else None
        energy_breakdown(breakdowns, out / "energy_breakdown.png", noc_pj)
        written += ["timeline.png", "energy_breakdown.png"]
    else:
        skipped["timeline.png"] = skipped["energy_breakdown.png"] = "no ops table"
    if bounds and ops is not None and critical_path_plot(ops, bounds, manifest, unit, out / "critical_path.png"):
        written.append("critical_path.png")
    else:
        skipped["critical_path.png"] = "no ops table"
    if packets is not None and latency_histogram(packets, clock_ps, out / "noc_latency_hist.png", unit):
        written.append("noc_latency_hist.png")
    else:
        skipped["noc_latency_hist.png"] = "no packets with latencies"
    if links is not None and link_heatmap(links, manifest, out / "link_utilisation.png"):
        written.append("link_utilisation.png")
    else:
        skipped["link_utilisation.png"] = "no links table or no mesh topology in the config"
    return {"dir": str(out), "written": written, "skipped": skipped}

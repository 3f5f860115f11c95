"""The report of a sweep directory: its table (one row per point) as text, and PNG plots - each
figure against the first swept key with one line per combination of the other keys (log axes
where the values span a decade or more), and the Pareto plot of step latency vs energy.

Also resolves ``DIR@key=value,...`` to the point directory of a sweep, so that ``compare`` and
``report`` take points of a sweep by their values.

Reads ``DIR/manifest.json`` and ``DIR/sweep.parquet`` only; knows nothing of how points ran.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pyarrow.parquet as pq

from atleus_dist.kernel.errors import ConfigError
from atleus_dist.results.figure import pyplot, spans_decades
from atleus_dist.results.manifest import MANIFEST, read_manifest

SWEEP_TABLE = "sweep.parquet"
# (column, label) of the figures plotted against the first swept key
PLOTTED = (("step_latency_ms", "step latency (ms)"), ("energy_j", "energy (J)"), ("edp_j_s", "EDP (J*s)"),
           ("tokens_per_s", "tokens/s"), ("reram_energy_share", "ReRAM share of energy"))


def is_sweep(path: str | os.PathLike) -> bool:
    p = Path(path) / MANIFEST
    if not p.is_file():
        return False
    try:
        return read_manifest(path).get("command") == "sweep"
    except ValueError:
        return False


def resolve_point(arg: str, field: str) -> str:
    """``DIR@k=v,k2=v2`` -> ``DIR/points/<id>`` of the one point of sweep DIR with those values
    (any subset of the swept keys that picks one point); anything else is returned unchanged."""
    root, at, spec = arg.rpartition("@")
    if not at or not is_sweep(root):
        return arg
    want = {}
    for item in spec.split(","):
        k, eq, v = item.partition("=")
        if not eq:
            raise ConfigError(field, f"expected DIR@KEY=VALUE,..., got {arg!r}")
        want[k.strip()] = v.strip()
    man = read_manifest(root)
    unknown = sorted(set(want) - set(man.get("keys", [])))
    if unknown:
        raise ConfigError(field, f"{', '.join(unknown)} not swept in {root!r}", allowed=", ".join(man.get("keys", [])))
    hits = [p for p in man.get("points", []) if all(str(p["params"].get(k)) == v for k, v in want.items())]
    if len(hits) != 1:
        raise ConfigError(field, f"{len(hits)} points of {root!r} match {spec!r}; name one point")
    return str(Path(root) / "points" / hits[0]["id"])


def build_sweep_report(sweep_dir: str | os.PathLike, plots: bool = False) -> dict:
    man = read_manifest(sweep_dir)
    path = Path(sweep_dir) / SWEEP_TABLE
    rows = pq.read_table(path).to_pylist() if path.is_file() else []
    rep = {"sweep_dir": str(sweep_dir), "status": man.get("status"), "keys": man.get("keys", []),
           "counts": man.get("counts"), "base": man.get("base"), "rows": rows}
    if plots and rows:
        rep["plots"] = write_sweep_plots(Path(sweep_dir), rep["keys"], rows)
    return rep


def _g(v, digits: int = 4) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def format_sweep_report(rep: dict) -> list[str]:
    keys = rep["keys"]
    counts = ", ".join(f"{n} {s}" for s, n in (rep.get("counts") or {}).items() if n)
    lines = [f"sweep {rep['sweep_dir']} ({rep['status']}; {len(rep['rows'])} points: {counts})"]
    cols = [*keys, "status", "latency ms", "energy J", "EDP J*s", "tokens/s", "ReRAM E", "wall s"]
    table = [[_g(r.get(k)) for k in keys] + [r["status"], _g(r.get("step_latency_ms")), _g(r.get("energy_j")),
             _g(r.get("edp_j_s")), _g(r.get("tokens_per_s")), _g(r.get("reram_energy_share"), 3),
             _g(r.get("wall_s"), 3)] for r in rep["rows"]]
    widths = [max(len(c), *(len(t[i]) for t in table)) if table else len(c) for i, c in enumerate(cols)]
    lines.append("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    lines += ["  ".join(v.rjust(w) for v, w in zip(t, widths)) for t in table]
    lines += [f"failed {r['point']}: {r['error']}" for r in rep["rows"] if r.get("error")]
    if rep.get("plots"):
        lines.append(f"plots          {', '.join(rep['plots']['written']) or 'none'} in {rep['plots']['dir']}")
    return lines


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats in both coordinates (lower is better), by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front, best_y = [], math.inf
    for i in order:
        if points[i][1] < best_y:
            front.append(i)
            best_y = points[i][1]
    return front


def write_sweep_plots(sweep_dir: Path, keys: list[str], rows: list[dict]) -> dict:
    plt = pyplot()
    out = sweep_dir / "plots"
    out.mkdir(exist_ok=True)
    done = [r for r in rows if r["status"] == "complete"]
    written, skipped = [], {}
    x_key, others = (keys[0], keys[1:]) if keys else (None, [])
    for col, label in PLOTTED:
        have = [r for r in done if r.get(col) is not None]
        if not have or x_key is None:
            skipped[col] = "no values" if x_key else "nothing swept"
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        series: dict[tuple, list[dict]] = {}
        for r in have:
            series.setdefault(tuple(r[k] for k in others), []).append(r)
        numeric_x = all(isinstance(r[x_key], (int, float)) and not isinstance(r[x_key], bool) for r in have)
        for combo, rs in series.items():
            rs = sorted(rs, key=lambda r: r[x_key]) if numeric_x else rs
            name = ", ".join(f"{k}={v}" for k, v in zip(others, combo)) or col
            xs = [r[x_key] for r in rs] if numeric_x else [str(r[x_key]) for r in rs]
            ax.plot(xs, [r[col] for r in rs], marker="o", label=name)
        if numeric_x and spans_decades([r[x_key] for r in have]):
            ax.set_xscale("log")
        if spans_decades([r[col] for r in have]):
            ax.set_yscale("log")
        ax.set_xlabel(x_key)
        ax.set_ylabel(label)
        if others:
            ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / f"sweep_{col}.png", dpi=110)
        plt.close(fig)
        written.append(f"sweep_{col}.png")
    pts = [r for r in done if r.get("step_latency_ms") is not None and r.get("energy_j") is not None]
    if pts:
        xy = [(r["step_latency_ms"], r["energy_j"]) for r in pts]
        front = pareto_front(xy)
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        ax.scatter([x for x, _ in xy], [y for _, y in xy], color="0.6", label="points")
        ax.plot([xy[i][0] for i in front], [xy[i][1] for i in front], "o-", color="C3", label="Pareto front")
        for i, r in enumerate(pts):  # every point named by its swept values
            ax.annotate(", ".join(f"{k}={r[k]}" for k in keys), xy[i], fontsize=5.5, xytext=(3, 3),
                        textcoords="offset points", color="C3" if i in front else "0.35")
        if spans_decades([x for x, _ in xy]):
            ax.set_xscale("log")
        if spans_decades([y for _, y in xy]):
            ax.set_yscale("log")
        ax.set_xlabel("step latency (ms)")
        ax.set_ylabel("energy (J)")
        ax.set_title("latency vs energy (lower left is better)")
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "sweep_pareto.png", dpi=110)
        plt.close(fig)
        written.append("sweep_pareto.png")
    else:
        skipped["pareto"] = "no complete point with latency and energy"
    return {"dir": str(out), "written": written, "skipped": skipped}

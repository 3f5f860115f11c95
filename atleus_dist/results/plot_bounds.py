"""The critical-path / utilisation plot of a run: where the step's time goes along its critical
path (compute by unit class, transfers, idle) next to how busy every unit was. Drawn from the
report's ``bounds`` (see :mod:`atleus_dist.results.critical`) and the ``ops`` table.

Knows the table schemas and the bounds dict; nothing of hardware models or LPs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from atleus_dist.results.critical import unit_occupancy
from atleus_dist.results.codes import code_names, tier_names
from atleus_dist.results.figure import pyplot

COLORS = {"reram": "tab:blue", "program": "tab:cyan", "systolic": "tab:orange", "vector": "tab:olive", "hbm": "tab:red",
          "other": "tab:gray", "transfer": "tab:purple", "idle": "lightgray"}
UNIT_COLORS = {"reram core": "tab:blue", "systolic core": "tab:orange", "hbm": "tab:red", "other": "tab:gray"}


def critical_path_plot(ops: pa.Table, bounds: dict, manifest: dict, unit: tuple[str, float], path: Path) -> bool:
    cp = bounds.get("critical_path")
    if not cp or ops.num_rows == 0:
        return False
    plt = pyplot()
    name, scale = unit
    parts = [(k, v, COLORS.get(k, "tab:gray")) for k, v in cp["compute_ps"].items() if v]
    parts.append(("gaps between ops" if cp["transfer"] == "gap" else f"{cp['transfer']} transfer", cp["transfer_ps"],
                  COLORS["transfer"]))
    if cp["idle_before_first_op_ps"]:
        parts.append(("idle", cp["idle_before_first_op_ps"], COLORS["idle"]))
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1, 1.6]})
    left = 0.0
    for label, v, color in parts:
        ax0.barh([0], [v / scale], left=[left], color=color, label=f"{label} {v / scale:.3g} {name} "
                 f"({v / (cp['step_ps'] or 1):.0%})")
        left += v / scale
    ax0.set_yticks([])
    ax0.set_xlabel(f"time along the critical path ({name})")
    how = "op graph" if cp["exact"] else "inferred from timeline"
    ax0.set_title(f"critical path ({how}): {cp['ops']:,} ops, bound: {cp['bound']}")
    ax0.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    step, kinds = unit_occupancy(ops, code_names(ops, "kind_codes", "kind"))
    tnames = tier_names(ops, manifest)
    labels, vals, colors = [], [], []
    for uk, occ in kinds.items():
        for (t, c), busy in occ.items():
            labels.append("hbm" if uk == "hbm" else f"{tnames.get(t, f'tier{t}')}.c{c}")
            vals.append(busy / (step or 1))
            colors.append(UNIT_COLORS.get(uk, "tab:gray"))
    x = np.arange(len(vals))
    ax1.bar(x, vals, color=colors)
    if max(vals) / max(min(v for v in vals if v > 0), 1e-12) >= 100:
        ax1.set_yscale("log")
    tick = max(1, len(x) // 30)
    ax1.set_xticks(x[::tick])
    ax1.set_xticklabels(labels[::tick], rotation=90, fontsize=6)
    ax1.set_ylabel("occupied share of the step")
    ax1.set_title("utilisation of every unit that ran")
    from matplotlib.patches import Patch

    ax1.legend(handles=[Patch(color=UNIT_COLORS[k], label=k) for k in kinds if k in UNIT_COLORS], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

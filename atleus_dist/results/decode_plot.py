"""The per-token latency of a ``generate`` run against the token's position (``decode_latency.png``).

Drawn from the ``ops`` table's ``step`` column (:func:`~atleus_dist.results.decode_figures.token_times`)
with matplotlib's Agg backend, as the other plots. Knows the table schemas only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from atleus_dist.results.decode_figures import token_times
from atleus_dist.results.figure import pyplot

PLOT = "decode_latency.png"


def decode_latency_plot(ops: pa.Table | None, seq: int, path: Path) -> bool:
    """Token latency (us) of each decode step at its position (seq + t); False when not a generate run."""
    times = None if ops is None else token_times(ops)
    if times is None or not len(times[2]):
        return False
    _start, prefill_end, ends = times
    lat_us = np.diff(np.concatenate([[prefill_end], ends])) / 1e6
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(seq + np.arange(len(lat_us)), lat_us, marker=".", lw=1)
    ax.set_xlabel("position of the token fed to the step (prompt + t)")
    ax.set_ylabel("decode step latency (us)")
    ax.set_title(f"decode: {len(lat_us)} steps after a {seq}-token prompt (TTFT {(prefill_end - _start) / 1e9:.3g} ms)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

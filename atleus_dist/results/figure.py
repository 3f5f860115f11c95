"""What every plot of ``results/`` shares: matplotlib's pyplot on the Agg backend (no display),
loaded on first use (~0.3 s that a run that draws nothing must not pay), and the one rule for a
logarithmic axis. Knows nothing of tables, runs or hardware.
"""

from __future__ import annotations

import math
import numbers

LOG_AXIS_RATIO = 100.0  # two decades: below this a linear axis shows every value readably


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def spans_decades(values) -> bool:
    """Whether an axis of ``values`` wants a log scale: at least two values, every one a finite
    number > 0 (a log axis would silently drop anything else; a bar chart passes its non-zero
    bars, as a zero bar draws nothing on either axis), the largest at least ``LOG_AXIS_RATIO``
    times the smallest."""
    nums = list(values)
    if len(nums) < 2 or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in nums):
        return False
    nums = [float(v) for v in nums]
    if not all(math.isfinite(v) and v > 0 for v in nums):
        return False
    return max(nums) / min(nums) >= LOG_AXIS_RATIO

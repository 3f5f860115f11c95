"""Channels between LPs and the conservative horizon computation (window / LBTS).

A channel ``j -> i`` with lookahead L promises that every message j sends to i carries a time at
least L after the event that sends it. Every future arrival at LP i is caused by a chain of
messages that starts at some pending event of some LP j (messages in flight count as pending at
their receiver), so LP i may safely process every event earlier than

    horizon_i = min over j of (next_time_j + D[j, i])     (capped by the end time)

where ``D[j, i]`` is the *shortest path* of lookaheads from j to i through the channel graph (one
edge or more; ``D[i, i]`` is the shortest cycle through i, or the self-channel's lookahead).
Looking only at direct in-neighbours (``L[j, i]`` instead of ``D[j, i]``) is not enough: an LP
with nothing pending imposes no bound on its neighbours, yet a message from a third LP can wake it
up one round later and it can then send at ``next_k + L_kj + L_ji``, long before what the
neighbour already processed. D is computed once (Floyd-Warshall) when the map is built.

A self-channel ``i -> i`` states the smallest delay between an event of LP i and an event it
schedules for itself; it lets a model process a whole window as one batch (see the PHOLD model).
Models that process their own events one by one inside ``advance`` do not need it.

``max_window_ps`` caps every horizon at ``min_j next_time_j + max_window_ps``: a run with one LP
(or no channels) would otherwise finish in a single round, with no progress to report and nothing
flushed until the end. Smaller windows never change results, only the number of rounds.
"""

from __future__ import annotations

import numpy as np

from atleus_dist.kernel.errors import ConfigError
from atleus_dist.kernel.time import NEVER_PS, add_sat


SMALL_LPS = 24


class ChannelMap:
    """Lookahead matrix ``L[j, i]`` (ps) for every channel j->i; NEVER_PS where there is none."""

    def __init__(self, n_lps: int, channels: list[tuple[int, int, int]], max_window_ps: int | None = None) -> None:
        if not isinstance(n_lps, int) or n_lps <= 0:
            raise ConfigError("lps", f"must be a positive integer, got {n_lps!r}")
        if max_window_ps is not None and (not isinstance(max_window_ps, (int, np.integer)) or max_window_ps <= 0):
            raise ConfigError("max_window_ps", f"must be an integer > 0 or None, got {max_window_ps!r}")
        self.max_window_ps = None if max_window_ps is None else int(max_window_ps)
        self.n_lps = n_lps
        la = np.full((n_lps, n_lps), NEVER_PS, dtype=np.int64)
        for src, dst, lookahead in channels:
            for name, lp in (("src", src), ("dst", dst)):
                if not 0 <= lp < n_lps:
                    raise ConfigError(f"channel.{name}", f"LP {lp} out of range 0..{n_lps - 1}")
            if not isinstance(lookahead, (int, np.integer)) or lookahead <= 0:
                raise ConfigError("lookahead_ps", f"must be an integer > 0, got {lookahead!r}")
            la[src, dst] = min(la[src, dst], int(lookahead))
        self.lookahead_ps = la
        self.distance_ps = shortest_paths(la)
        # a round's horizons cost O(n^2): plain ints beat numpy's per-call overhead for few LPs
        self._senders = [[(j, int(self.distance_ps[j, i])) for j in range(n_lps)
                          if self.distance_ps[j, i] != NEVER_PS] for i in range(n_lps)]
        self._small = n_lps <= SMALL_LPS

    def horizons(self, next_ps: np.ndarray, end_ps: int, out_ps: np.ndarray | None = None) -> np.ndarray:
        """Per-LP horizon given every LP's next event time (vector of length n_lps) and, where
        known, the earliest time each LP can send anything (``out_ps`` >= what it holds can cause:
        :meth:`~atleus_dist.kernel.lp.LogicalProcess.next_output_time`, messages in flight to it
        included); the window cap follows the next events."""
        if self.max_window_ps is not None:
            m = int(next_ps.min())
            if m < NEVER_PS - self.max_window_ps:
                end_ps = min(end_ps, m + self.max_window_ps)
        if out_ps is not None:
            next_ps = out_ps
        if self._small:
            nxt = next_ps.tolist()
            out = []
            for senders in self._senders:
                h = end_ps
                for j, d in senders:
                    t = nxt[j]
                    if t != NEVER_PS and t + d < h:
                        h = t + d
                out.append(h)
            return np.array(out, dtype=np.int64)
        bound = add_sat(next_ps[:, None], self.distance_ps).min(axis=0)
        return np.minimum(bound, end_ps)

    def min_cut_lookahead(self, group_of_lp: np.ndarray) -> int:
        """Smallest lookahead on a channel that crosses between groups (NEVER_PS if none)."""
        cut = group_of_lp[:, None] != group_of_lp[None, :]
        vals = self.lookahead_ps[cut]
        return int(vals.min()) if vals.size else NEVER_PS

    def to_list(self) -> list[tuple[int, int, int]]:
        src, dst = np.nonzero(self.lookahead_ps != NEVER_PS)
        return [(int(s), int(d), int(self.lookahead_ps[s, d])) for s, d in zip(src, dst)]


def shortest_paths(la: np.ndarray) -> np.ndarray:
    """All-pairs shortest paths of one or more edges (Floyd-Warshall), NEVER_PS where none."""
    d = la.copy()
    for k in range(len(d)):
        d = np.minimum(d, add_sat(d[:, k:k + 1], d[k:k + 1, :]))
    return d

"""PHOLD one event at a time on the kernel's heap-based :class:`EventLP`.

An independent reference for the vectorised :mod:`atleus_dist.models.phold`: same counter-based
random numbers, but every event is popped from a heap and handled by itself, in key order. Both
must give byte-identical ``phold_objects`` tables. It also measures the kernel's per-event path.
"""

from __future__ import annotations

import math

import numpy as np

from atleus_dist.kernel import EventLP
from atleus_dist.kernel.messages import HEADER_DTYPE
from atleus_dist.models.phold import PholdConfig

_M64 = (1 << 64) - 1


def mix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def unit(h: int) -> float:
    return ((h >> 11) + 0.5) * 2.0 ** -53


class ScalarPholdLP(EventLP):
    def __init__(self, lp_id: int, cfg: PholdConfig, sink=None) -> None:
        super().__init__(lp_id, {"phold": HEADER_DTYPE})
        self.cfg = cfg
        self.sink = sink
        self.base = lp_id * cfg.objects
        self.seed_key = mix64(cfg.seed)
        self.next_seq = [cfg.events_per_object] * cfg.objects
        self.processed = [0] * cfg.objects
        self.hsum = [0] * cfg.objects
        self.handlers["phold"] = self.on_event
        for o in range(self.base, self.base + cfg.objects):
            for k in range(cfg.events_per_object):
                t = cfg.lookahead_ps + math.floor(-cfg.mean_ps * math.log(unit(self._hash(o, o, k))))
                self.schedule(t, 0, o, k, "phold", (t, 0, o, k, o, 0))

    def _hash(self, dst: int, src: int, seq: int) -> int:
        return mix64(mix64(mix64(self.seed_key ^ dst) ^ src) ^ seq)

    def on_event(self, t: int, row, _payload) -> None:
        cfg = self.cfg
        _t, _prio, src, seq, dst, _port = row
        i = dst - self.base
        h = self._hash(dst, src, seq)
        self.hsum[i] = (self.hsum[i] + mix64(h ^ t)) & _M64
        self.processed[i] += 1
        new_seq = self.next_seq[i]
        self.next_seq[i] += 1
        new_t = t + cfg.lookahead_ps + math.floor(-cfg.mean_ps * math.log(unit(mix64((h + 1) & _M64))))
        dest_lp = self.lp_id
        if cfg.lps > 1 and cfg.remote > 0 and unit(mix64((h + 2) & _M64)) < cfg.remote:
            hop = 1 + math.floor(unit(mix64((h + 3) & _M64)) * (cfg.lps - 1))
            dest_lp = (self.lp_id + hop) % cfg.lps
        new_dst = dest_lp * cfg.objects + math.floor(unit(mix64((h + 4) & _M64)) * cfg.objects)
        msg = (new_t, 0, dst, new_seq, new_dst, 0)
        if dest_lp == self.lp_id:
            self.schedule(new_t, 0, dst, new_seq, "phold", msg)
        else:
            self.send(dest_lp, "phold", msg)

    def close(self) -> None:
        if self.sink is not None:
            self.sink.write("phold_objects", {
                "obj": np.arange(self.base, self.base + self.cfg.objects, dtype=np.int64),
                "events": np.array(self.processed, dtype=np.int64),
                "hash": np.array(self.hsum, dtype=np.uint64),
            })

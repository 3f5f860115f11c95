"""PHOLD, the standard parallel discrete-event benchmark, as a kernel model (no hardware).

N LPs x M objects; every object starts with ``events_per_object`` events. Processing an event at
object o schedules one new event ``lookahead_ps + Exp(mean_ps)`` later, at a random object of
another LP with probability ``remote`` and of o's own LP otherwise.

Each LP processes a whole window as one numpy batch. That is exact, not an approximation: the
self-channel with lookahead L bounds every horizon by ``next_time + L``, and every event it
schedules is at least L after its cause, so no event created in a window falls inside it.
Random numbers are counter-based (a hash of the seed and the event's key ``(dst, src,
src_seq)``), so they do not depend on which LP or process draws them, and new events get
``src_seq`` numbers in each object's processing order ``(time, priority, src, src_seq)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from atleus_dist.hw.params import param, validate_fields
from atleus_dist.kernel import Block, ConfigError, LogicalProcess, NEVER_PS
from atleus_dist.kernel.messages import HEADER_DTYPE
from atleus_dist.kernel.rng import mix64, unit

MAX_EVENTS = 10**11


@dataclass(frozen=True)
class PholdConfig:
    lps: int = param(8, 1, 4096, "Fujimoto's PHOLD: a few LPs per core")
    objects: int = param(64, 1, 1_000_000, "objects per LP")
    events_per_object: int = param(1, 1, 1000, "initial events per object (PHOLD's population)")
    mean_ps: int = param(1000, 0, 10**15, "mean of the exponential part of every increment")
    lookahead_ps: int = param(1000, 1, 10**15, "the minimum increment, and every channel's lookahead")
    remote: float = param(0.5, 0.0, 1.0, "fraction of events sent to another LP")
    seed: int = param(1, 0, 2**63 - 1, "any fixed seed (64-bit: the counter-based RNG's key)")
    end_ps: int = param(1_000_000, 1, 2**62, "simulated end time (int64 ps)")
    trace: bool = param(False, source="also write every committed event (small runs, strongest check)")

    def __post_init__(self) -> None:
        validate_fields(self)
        population = self.lps * self.objects * self.events_per_object
        if population > 100_000_000:
            raise ConfigError("objects", f"{self.lps} LPs x {self.objects} objects x {self.events_per_object} "
                              "events is too many to hold", allowed="lps x objects x events <= 1e8")
        events = population * self.end_ps // (self.lookahead_ps + self.mean_ps)
        if events > MAX_EVENTS:  # about a day at this machine's ~1e6 events/s: a typo, not a run
            raise ConfigError("end_ps", f"{self.end_ps:,} ps means about {events:,} events",
                              allowed=f"at most ~{MAX_EVENTS:.0e} events (population x end_ps / increment)")

    def channels(self) -> list[tuple[int, int, int]]:
        if self.remote > 0 and self.lps > 1:
            return [(j, i, self.lookahead_ps) for j in range(self.lps) for i in range(self.lps)]
        return [(i, i, self.lookahead_ps) for i in range(self.lps)]

    def to_dict(self) -> dict:
        return asdict(self)


class PholdLP(LogicalProcess):
    def __init__(self, lp_id: int, cfg: PholdConfig, sink=None) -> None:
        super().__init__(lp_id)
        self.cfg = cfg
        self.sink = sink
        m = cfg.objects
        self.base = lp_id * m
        self.seed_key = mix64(np.array([cfg.seed], dtype=np.uint64))[0]
        objs = np.repeat(np.arange(self.base, self.base + m, dtype=np.int64), cfg.events_per_object)
        seqs = np.tile(np.arange(cfg.events_per_object, dtype=np.int64), m)
        h = self._hash(objs, objs, seqs)
        self.t = cfg.lookahead_ps + np.floor(-cfg.mean_ps * np.log(unit(h))).astype(np.int64)
        self.dst = objs
        self.src = objs.copy()
        self.seq = seqs
        self.next_seq = np.full(m, cfg.events_per_object, dtype=np.int64)
        self.processed = np.zeros(m, dtype=np.int64)
        self.hsum = np.zeros(m, dtype=np.uint64)

    def _hash(self, dst: np.ndarray, src: np.ndarray, seq: np.ndarray) -> np.ndarray:
        k = mix64(self.seed_key ^ dst.astype(np.uint64))
        k = mix64(k ^ src.astype(np.uint64))
        return mix64(k ^ seq.astype(np.uint64))

    def next_time(self) -> int:
        return int(self.t.min()) if self.t.size else NEVER_PS

    def receive(self, blocks: list[Block]) -> None:
        rows = [b.rows for b in blocks]
        self.t = np.concatenate([self.t] + [r["time_ps"] for r in rows])
        self.dst = np.concatenate([self.dst] + [r["dst"] for r in rows])
        self.src = np.concatenate([self.src] + [r["src"] for r in rows])
        self.seq = np.concatenate([self.seq] + [r["src_seq"] for r in rows])

    def process(self, horizon_ps: int) -> dict[int, list[Block]]:
        due = self.t < horizon_ps
        if not due.any():
            return {}
        keep = ~due
        t, dst, src, seq = self.t[due], self.dst[due], self.src[due], self.seq[due]
        self.t, self.dst, self.src, self.seq = self.t[keep], self.dst[keep], self.src[keep], self.seq[keep]
        order = np.lexsort((seq, src, t, dst))  # by object, then processing order
        t, dst, src, seq = t[order], dst[order], src[order], seq[order]
        n = len(t)
        self.events_committed += n

        starts = np.flatnonzero(np.r_[True, dst[1:] != dst[:-1]])
        counts = np.diff(np.r_[starts, n])
        local = dst[starts] - self.base
        rank = np.arange(n, dtype=np.int64) - np.repeat(starts, counts)
        new_seq = np.repeat(self.next_seq[local], counts) + rank
        self.next_seq[local] += counts
        self.processed[local] += counts

        cfg = self.cfg
        h = self._hash(dst, src, seq)
        self.hsum[local] += np.add.reduceat(mix64(h ^ t.astype(np.uint64)), starts)
        delay = cfg.lookahead_ps + np.floor(-cfg.mean_ps * np.log(unit(mix64(h + np.uint64(1))))).astype(np.int64)
        new_t = t + delay
        dest_lp = np.full(n, self.lp_id, dtype=np.int64)
        if cfg.lps > 1 and cfg.remote > 0:
            remote = unit(mix64(h + np.uint64(2))) < cfg.remote
            hop = 1 + np.floor(unit(mix64(h + np.uint64(3))) * (cfg.lps - 1)).astype(np.int64)
            dest_lp = np.where(remote, (self.lp_id + hop) % cfg.lps, dest_lp)
        new_dst = dest_lp * cfg.objects + np.floor(unit(mix64(h + np.uint64(4))) * cfg.objects).astype(np.int64)

        if cfg.trace and self.sink is not None:
            self.sink.write("phold_events", {"time_ps": t, "obj": dst, "src": src, "src_seq": seq})

        mine = dest_lp == self.lp_id
        self.t = np.concatenate([self.t, new_t[mine]])
        self.dst = np.concatenate([self.dst, new_dst[mine]])
        self.src = np.concatenate([self.src, dst[mine]])
        self.seq = np.concatenate([self.seq, new_seq[mine]])
        out: dict[int, list[Block]] = {}
        if not mine.all():
            idx = np.flatnonzero(~mine)
            idx = idx[np.argsort(dest_lp[idx], kind="stable")]
            rows = np.zeros(len(idx), dtype=HEADER_DTYPE)
            rows["time_ps"] = new_t[idx]
            rows["src"] = dst[idx]
            rows["src_seq"] = new_seq[idx]
            rows["dst"] = new_dst[idx]
            lps = dest_lp[idx]
            cuts = np.flatnonzero(np.r_[True, lps[1:] != lps[:-1]])
            for a, b in zip(cuts, np.r_[cuts[1:], len(idx)]):
                out[int(lps[a])] = [Block("phold", rows[a:b])]
        return out

    def close(self) -> None:
        if self.sink is not None:
            self.sink.write("phold_objects", {
                "obj": np.arange(self.base, self.base + self.cfg.objects, dtype=np.int64),
                "events": self.processed,
                "hash": self.hsum,
            })

"""A group of LPs driven together by one worker, and the description of a whole run.

Every backend runs the same round on every group, so results cannot depend on the backend:

1. ``deliver(inbound)``: decode the buffers other groups sent last round and hand each LP its
   blocks;
2. the coordinator (or every worker, identically) computes ``next_j = min(local_next_j,
   min over senders of sent_min[., j])`` for all LPs, stops when every ``next_j >= end``, and
   otherwise takes the horizons from :class:`ChannelMap`;
3. ``advance(horizons)``: each LP processes its window; the group returns its LPs' next event times,
   the earliest time it sent to each LP, and one encoded buffer per destination group.

Knowing ``sent_min`` lets step 2 happen before delivery, so a round needs a single exchange.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from atleus_dist.kernel.channels import ChannelMap
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.kernel.lp import LogicalProcess, total_work
from atleus_dist.kernel.messages import decode_outbox, encode_outbox
from atleus_dist.kernel.time import NEVER_PS, check_time_ps

WINDOW_FLUSH_ROWS = 4096


@dataclass(frozen=True)
class RunSpec:
    """Everything a backend needs, picklable so that workers and actors can rebuild their LPs.

    ``lp_factory(lp_id, sink)`` builds one LP; ``sink_factory(lp_id)`` returns its result sink (an
    object with ``write(table, columns, kind=..., wallclock=...)`` and ``close()``) or None.
    ``groups`` lists the LP ids of each worker group.
    """

    n_lps: int
    channels: list[tuple[int, int, int]]
    end_ps: int
    lp_factory: Callable[[int, Any], LogicalProcess]
    groups: list[list[int]]
    sink_factory: Callable[[int], Any] | None = None
    meta: dict = field(default_factory=dict)
    max_window_ps: int | None = None  # cap on a round's window (see ChannelMap); None: lookahead only
    first_round: int = 0  # rounds run before this one (a resumed run): ``windows`` rows go on numbering

    def __post_init__(self) -> None:
        check_time_ps("end_ps", self.end_ps, positive=True)
        seen = sorted(lp for g in self.groups for lp in g)
        if seen != list(range(self.n_lps)):
            raise ConfigError("groups", f"must partition LPs 0..{self.n_lps - 1} exactly once")
        if any(len(g) == 0 for g in self.groups):
            raise ConfigError("workers", f"{len(self.groups)} groups for {self.n_lps} LPs leaves one empty")

    def channel_map(self) -> ChannelMap:
        return ChannelMap(self.n_lps, self.channels, self.max_window_ps)

    def group_of_lp(self) -> np.ndarray:
        out = np.empty(self.n_lps, dtype=np.int64)
        for g, lps in enumerate(self.groups):
            out[lps] = g
        return out


@dataclass(frozen=True)
class LPFactory:
    """Picklable ``lp_factory``: LP i is ``cls(i, *args, sink=sink)`` in whichever worker hosts it."""

    cls: type
    args: tuple = ()

    def __call__(self, lp_id: int, sink: Any) -> LogicalProcess:
        return self.cls(lp_id, *self.args, sink=sink)


def contiguous_groups(n_lps: int, n_groups: int) -> list[list[int]]:
    """Split LPs 0..n-1 into ``n_groups`` contiguous, nearly equal groups."""
    if not isinstance(n_groups, int) or n_groups <= 0:
        raise ConfigError("workers", f"must be a positive integer, got {n_groups!r}")
    n_groups = min(n_groups, n_lps)
    bounds = np.linspace(0, n_lps, n_groups + 1).round().astype(int)
    return [list(range(bounds[g], bounds[g + 1])) for g in range(n_groups)]


def global_next(local_next: np.ndarray, sent_min: np.ndarray) -> np.ndarray:
    """Next event time of every LP after this round's messages are delivered."""
    return np.minimum(local_next, sent_min.min(axis=0)) if sent_min.size else local_next


@dataclass
class StepResult:
    local_next: np.ndarray  # for this group's LPs, in group order
    sent_min: np.ndarray  # length n_lps: earliest message time this group sent to each LP
    outbound: list[bytes]  # one buffer per destination group (b"" when nothing)
    events: int
    messages: int
    local_out: np.ndarray | None = None  # for this group's LPs: LogicalProcess.next_output_time


class LPGroup:
    """The LPs of one worker. Plain object: backends wrap it in a process or a Ray actor."""

    def __init__(self, spec: RunSpec, group: int) -> None:
        self.spec = spec
        self.group = group
        self.lp_ids = list(spec.groups[group])
        self.group_of_lp = spec.group_of_lp()
        self.group_of_lp_list = self.group_of_lp.tolist()
        self.n_groups = len(spec.groups)
        self.sinks = {lp: (spec.sink_factory(lp) if spec.sink_factory else None) for lp in self.lp_ids}
        self.lps = {lp: spec.lp_factory(lp, self.sinks[lp]) for lp in self.lp_ids}
        self.round = spec.first_round
        self._windows: dict[int, list[tuple]] = {lp: [] for lp in self.lp_ids}
        self._pending_sync_s = 0.0
        self._deliver_s = 0.0
        self.events = 0
        self.messages = 0

    def work_done(self) -> int | None:
        """The sum of this group's LPs' :meth:`LogicalProcess.work_done` (None if none counts)."""
        return total_work(lp.work_done() for lp in self.lps.values())

    def local_next(self) -> np.ndarray:
        return np.array([self.lps[lp].next_time() for lp in self.lp_ids], dtype=np.int64)

    def local_out(self) -> np.ndarray:
        return np.array([self.lps[lp].next_output_time() for lp in self.lp_ids], dtype=np.int64)

    def add_sync_time(self, seconds: float) -> None:
        self._pending_sync_s += seconds

    def deliver(self, inbound: list[bytes | memoryview]) -> None:
        t0 = time.perf_counter()
        per_lp: dict[int, list] = {}
        for data in inbound:
            for lp, blocks in decode_outbox(data).items():
                per_lp.setdefault(lp, []).extend(blocks)
        for lp, blocks in per_lp.items():
            if self.group_of_lp[lp] != self.group:
                raise RuntimeError(f"group {self.group} received messages for LP {lp}")
            self.lps[lp].deliver(blocks)
        self._deliver_s += time.perf_counter() - t0

    def advance(self, horizons: np.ndarray) -> StepResult:
        self.round += 1
        sent: dict[int, int] = {}  # destination LP -> earliest time sent this round
        by_group: list[dict] = [{} for _ in range(self.n_groups)]
        group_of = self.group_of_lp_list
        events = messages = 0
        share_sync = self._pending_sync_s / len(self.lp_ids)
        share_deliver = self._deliver_s / len(self.lp_ids)
        hz = horizons.tolist()
        clock = time.perf_counter
        for lp in self.lp_ids:
            obj = self.lps[lp]
            before = obj.events_committed
            t0 = clock()
            out = obj.advance(hz[lp])
            work_s = clock() - t0 + share_deliver
            n_ev = obj.events_committed - before
            n_msg = 0
            for dst, blocks in out.items():
                if dst == lp:
                    raise RuntimeError(f"LP {lp} sent messages to itself through the kernel")
                for b in blocks:
                    if len(b):
                        n_msg += len(b)
                        t = int(b.rows["time_ps"].min())
                        if t < sent.get(dst, NEVER_PS):
                            sent[dst] = t
                by_group[group_of[dst]].setdefault(dst, []).extend(blocks)
            events += n_ev
            messages += n_msg
            self._windows[lp].append((self.round, hz[lp], n_ev, n_msg, work_s, share_sync))
        self._pending_sync_s = 0.0
        self._deliver_s = 0.0
        sent_min = np.full(self.spec.n_lps, NEVER_PS, dtype=np.int64)
        if sent:
            sent_min[list(sent)] = list(sent.values())
        outbound = [encode_outbox(d) if d else b"" for d in by_group]
        if len(self._windows[self.lp_ids[0]]) >= WINDOW_FLUSH_ROWS:
            self.flush_windows()
        self.events += events
        self.messages += messages
        return StepResult(self.local_next(), sent_min, outbound, events, messages, self.local_out())

    def flush_windows(self) -> None:
        for lp, rows in self._windows.items():
            sink = self.sinks[lp]
            if sink is None or not rows:
                rows.clear()
                continue
            cols = list(zip(*rows))
            sink.write(
                "windows",
                {
                    "round": np.array(cols[0], dtype=np.int64),
                    "lp": np.full(len(rows), lp, dtype=np.int32),
                    "horizon_ps": np.array(cols[1], dtype=np.int64),
                    "events": np.array(cols[2], dtype=np.int64),
                    "messages": np.array(cols[3], dtype=np.int64),
                    "work_s": np.array(cols[4], dtype=np.float64),
                    "sync_s": np.array(cols[5], dtype=np.float64),
                    "rounds": np.ones(len(rows), dtype=np.int64),  # rounds a row stands for
                },
                kind="execution",
                wallclock=("work_s", "sync_s"),
            )
            rows.clear()

    def checkpoint_state(self) -> dict[int, tuple]:
        """Per LP of this group: (state tree, arrays, its sink's stream positions), taken between
        rounds once every message in flight was delivered (:meth:`LogicalProcess.snapshot_state`;
        a sink without ``positions()`` records none)."""
        self.flush_windows()
        out = {}
        for lp in self.lp_ids:
            sink = self.sinks[lp]
            positions = sink.positions() if sink is not None and hasattr(sink, "positions") else {}
            tree, arrays = self.lps[lp].snapshot_state()
            out[lp] = (tree, arrays, positions)
        return out

    def close(self) -> None:
        self.flush_windows()
        for lp in self.lp_ids:
            self.lps[lp].close()
        for sink in self.sinks.values():
            if sink is not None:
                sink.close()

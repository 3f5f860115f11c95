"""The logical-process interface every backend drives, and a heap-based base for scalar models.

An LP owns some components and their pending events. Backends call, in this order each round:
``deliver(blocks)`` with every message addressed to it, then ``advance(horizon_ps)``, which must
process every event with time < horizon and return the messages for *other* LPs grouped by
destination LP. ``next_time()`` is the time of its earliest pending event (NEVER_PS if none).
An LP must never depend on the order in which blocks arrive: it orders by the message key.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable

import numpy as np

from atleus_dist.kernel.errors import CausalityError
from atleus_dist.kernel.messages import Block
from atleus_dist.kernel.snapshot import SnapshotError, object_state, restore_object
from atleus_dist.kernel.time import NEVER_PS


def total_work(counts) -> int | None:
    """The sum of :meth:`LogicalProcess.work_done` counts that are known (None if none is)."""
    known = [c for c in counts if c is not None]
    return sum(known) if known else None


class LogicalProcess:
    """Base class: keeps the processed-time watermark and checks causality on delivery."""

    def __init__(self, lp_id: int) -> None:
        self.lp_id = lp_id
        self.now_ps = 0  # every event with time < now_ps has been processed
        self.events_committed = 0

    # --- the backend-facing interface -------------------------------------------------------
    def deliver(self, blocks: list[Block]) -> None:
        for block in blocks:
            if len(block) == 0:
                continue
            earliest = int(block.rows["time_ps"].min())
            if earliest < self.now_ps:
                raise CausalityError(
                    f"LP {self.lp_id} received a {block.kind!r} message at {earliest} ps but has "
                    f"already processed up to {self.now_ps} ps"
                )
        self.receive(blocks)

    def advance(self, horizon_ps: int) -> dict[int, list[Block]]:
        out = self.process(horizon_ps)
        if horizon_ps > self.now_ps:
            self.now_ps = horizon_ps
        return out

    def next_time(self) -> int:
        raise NotImplementedError

    def next_output_time(self) -> int:
        """A lower bound on the time of any event of this LP that sends a message to another LP,
        given what it holds now (messages it will receive are accounted for by their senders'
        bounds along the channels: :meth:`~atleus_dist.kernel.channels.ChannelMap.horizons`).
        The default, :meth:`next_time`, is always safe; a model that knows its next output lies
        further ahead (a chip whose next off-chip send is a layer away) widens every window."""
        return self.next_time()

    def close(self) -> None:
        """Called once after the last round: flush results."""

    def work_done(self) -> int | None:
        """Units of the model's own work finished so far (a chip LP: ops done), for progress
        estimates; None when the model has no such count. Read between rounds only."""
        return None

    # --- what a model implements ------------------------------------------------------------
    def receive(self, blocks: list[Block]) -> None:
        raise NotImplementedError

    def process(self, horizon_ps: int) -> dict[int, list[Block]]:
        raise NotImplementedError

    # --- checkpoint and resume (kernel.snapshot) ----------------------------------------------
    # attributes the constructor rebuilds and the walk must not save: the result sink (the run
    # saves its streams' positions itself); models add theirs
    snapshot_skip: tuple[str, ...] = ("sink",)

    def snapshot_state(self) -> tuple[Any, list]:
        """This LP's state between rounds, after delivery: (tree, arrays) for
        :func:`kernel.snapshot.encode`. The default walks the LP's attributes
        (:func:`kernel.snapshot.object_state`); a model overrides it only for state the walk
        cannot see."""
        arrays: list = []
        return object_state(self, arrays), arrays

    def restore_state(self, tree: Any, arrays: list) -> None:
        """Write a :meth:`snapshot_state` back into this LP, freshly built by the run's factory."""
        restore_object(self, tree, arrays)

    @classmethod
    def reslice(cls, old: dict[int, "LogicalProcess"], new: dict[int, "LogicalProcess"], t_ps: int) -> None:
        """Write the state of ``old`` - every LP of a run on one partition, restored from its
        checkpoint at ``t_ps`` - into ``new``, every LP of the same run on another partition,
        fresh from the run's factory (``atleus-dist resume --partition``). A model whose state can
        move between partitions overrides this; the default refuses."""
        raise SnapshotError(f"the state of {cls.__name__} LPs cannot be moved to another partition")


class EventLP(LogicalProcess):
    """An LP with a classic event heap, for models whose events are few or irregular.

    Handlers are looked up by message kind: ``self.handlers[kind](time_ps, row, payload)``.
    Local events are scheduled with :meth:`schedule`; messages to other LPs with :meth:`send`,
    which buffers them as one block per (destination LP, kind). The heap key is the message key
    ``(time_ps, priority, src, src_seq)``, so processing order does not depend on arrival order.
    """

    snapshot_skip = ("handlers", "_dtypes")  # wired by the model's constructor

    def __init__(self, lp_id: int, msg_dtypes: dict[str, np.dtype]) -> None:
        super().__init__(lp_id)
        self._heap: list[tuple] = []
        self._dtypes = msg_dtypes
        self._pending_out: dict[tuple[int, str], list[tuple]] = {}
        self._pending_payloads: dict[tuple[int, str], list] = {}
        self.handlers: dict[str, Callable[[int, Any, Any], None]] = {}

    def next_time(self) -> int:
        return self._heap[0][0] if self._heap else NEVER_PS

    def schedule(self, time_ps: int, priority: int, src: int, src_seq: int, kind: str,
                 row: Any = None, payload: Any = None) -> None:
        if time_ps < self.now_ps:
            raise CausalityError(f"LP {self.lp_id} scheduled {kind!r} at {time_ps} < {self.now_ps}")
        heapq.heappush(self._heap, (time_ps, priority, src, src_seq, kind, row, payload))

    def send(self, dst_lp: int, kind: str, row: tuple, payload: Any = None) -> None:
        """Queue one message (a tuple matching the kind's dtype) for another LP."""
        key = (dst_lp, kind)
        self._pending_out.setdefault(key, []).append(row)
        self._pending_payloads.setdefault(key, []).append(payload)

    def receive(self, blocks: list[Block]) -> None:
        push = heapq.heappush
        heap = self._heap
        for block in blocks:
            rows = block.rows
            payloads = block.payloads or [None] * len(rows)
            for row, payload in zip(rows.tolist(), payloads):
                push(heap, (row[0], row[1], row[2], row[3], block.kind, row, payload))

    def process(self, horizon_ps: int) -> dict[int, list[Block]]:
        heap = self._heap
        pop = heapq.heappop
        handlers = self.handlers
        n = 0
        while heap and heap[0][0] < horizon_ps:
            time_ps, _prio, _src, _seq, kind, row, payload = pop(heap)
            self.now_ps = time_ps
            handlers[kind](time_ps, row, payload)
            n += 1
        self.events_committed += n
        return self._flush_out()

    def _flush_out(self) -> dict[int, list[Block]]:
        out: dict[int, list[Block]] = {}
        for (dst_lp, kind), rows in sorted(self._pending_out.items()):
            payloads = self._pending_payloads[(dst_lp, kind)]
            arr = np.array(rows, dtype=self._dtypes[kind])
            keep = payloads if any(p is not None for p in payloads) else None
            out.setdefault(dst_lp, []).append(Block(kind, arr, keep))
        self._pending_out.clear()
        self._pending_payloads.clear()
        return out

"""Rounds that the Ray backend's actors run among themselves, over direct TCP connections.

A Ray actor call costs a round trip through the driver and the raylets (~0.7-3 ms, measured in
``bench/ray_rounds.py``), too slow for the windows of an off-chip link (~0.5 us of simulated
time). So Ray only places the actors and introduces them (each listens on its node's address and
the driver hands every actor the list); the rounds then run without Ray, as the local backend's
workers run them on shared memory: after advancing, each group sends every other group one frame
- its LPs' next-event times and output bounds, the earliest time it sent to every LP, its counts and the encoded
messages for that group - and waits for one frame from every other group. Frames double as the
barrier; every group then computes the same horizons from the same numbers (same arithmetic as
:func:`atleus_dist.kernel.global_next` and :class:`~atleus_dist.kernel.ChannelMap` everywhere), so
results are those of every other backend.

The driver hears from the actors once per chunk: group 0 (the leader) marks the frame of the
round after which a chunk of ``chunk_s`` seconds is over, every group returns after that round's
exchange, and the driver reports progress and calls again. Which round ends a chunk changes no
result (a chunk boundary is between two exchanges).

This module knows nothing of Ray: :class:`PeerRounds` is the protocol (plain object, testable
alone; ``bench/ray_rounds.py`` also drives it through a Ray Compiled Graph), :class:`Mesh` the
sockets. Connections are authenticated by a token the driver gives every actor through Ray.
"""

from __future__ import annotations

import hmac
import os
import select
import socket
import struct
import time

import numpy as np

from atleus_dist.backends.base import frontier_ps
from atleus_dist.kernel import NEVER_PS, LPGroup, RunSpec, SimulationAborted, global_next
from atleus_dist.kernel.lp import total_work

# frame header, int64 each: round, flags, the sender's events so far, its ops done (-1: uncounted)
HEADER = 4
END_CHUNK = 1  # flag: the leader ends the chunk after this round's exchange
LEN = struct.Struct("<q")
HELLO = b"atleus-peer1"
# Waiting for a peer's frame, as the local workers wait on shared memory: non-blocking receive
# attempts, then attempts with a yield between (a peer is often just late; a wake-up from select
# costs tens of us), then sleep in select (a peer in a long window costs no CPU). On the loaded
# 2-core machine 2000 yields against 20 measured 265 vs 374 us per empty round (noisy,
# bench/RESULTS.md "Issue 20: cross-node rounds").
SPIN_TRIES = 20
YIELD_TRIES = 2000


class PeerRounds:
    """One group's side of the rounds: its LPs, and what it knows of every group's last round."""

    def __init__(self, spec: RunSpec, g: int) -> None:
        self.spec = spec
        self.g = g
        self.n = len(spec.groups)
        self.group = LPGroup(spec, g)
        self.cmap = spec.channel_map()
        self.lps_of = [np.asarray(lps, dtype=np.int64) for lps in spec.groups]
        self.local_next = np.full(spec.n_lps, NEVER_PS, dtype=np.int64)
        self.local_out = np.full(spec.n_lps, NEVER_PS, dtype=np.int64)  # LogicalProcess.next_output_time
        self.sent_min = np.full((self.n, spec.n_lps), NEVER_PS, dtype=np.int64)
        self.events = [0] * self.n  # each group's events so far, from its frames
        self.done_ops: list[int | None] = [None] * self.n
        self.inbound: list[bytes] = []
        self._own = b""  # what this group sent itself last round
        self.round = 0  # exchanges completed
        self.started = False
        self.finished = False
        self.end_chunk = False
        self.frontier_ps = 0
        self.last_horizon_ps = 0
        self.work_s = 0.0
        self.sync_s = 0.0

    def _frames(self, flags: int, outbound: list[bytes] | None) -> list[bytes | None]:
        done = self.group.work_done()
        head = np.array([self.round, flags, self.group.events, -1 if done is None else done], dtype=np.int64)
        mine = self.lps_of[self.g]
        body = np.concatenate([head, self.local_next[mine], self.local_out[mine], self.sent_min[self.g]]).tobytes()
        return [None if v == self.g else body + (outbound[v] if outbound else b"") for v in range(self.n)]

    def start(self) -> list[bytes | None]:
        """Frames of round 0: this group's first next-event times, nothing sent."""
        self.started = True
        self.local_next[self.lps_of[self.g]] = self.group.local_next()
        self.local_out[self.lps_of[self.g]] = self.group.local_out()
        return self._frames(0, None)

    def receive(self, frames: list) -> None:
        """Take every other group's frame of this round (``frames[self.g]`` is ignored)."""
        inbound = []
        for v in range(self.n):
            if v == self.g:
                if self._own:
                    inbound.append(self._own)
                continue
            f = memoryview(frames[v])
            k = len(self.lps_of[v])
            nums = np.frombuffer(f[:8 * (HEADER + 2 * k + self.spec.n_lps)], dtype=np.int64)
            if nums[0] != self.round:
                raise RuntimeError(f"group {self.g} got round {nums[0]} from group {v} in round {self.round}")
            if v == 0 and nums[1] & END_CHUNK:
                self.end_chunk = True
            self.events[v] = int(nums[2])
            self.done_ops[v] = None if nums[3] < 0 else int(nums[3])
            self.local_next[self.lps_of[v]] = nums[HEADER:HEADER + k]
            self.local_out[self.lps_of[v]] = nums[HEADER + k:HEADER + 2 * k]
            self.sent_min[v] = nums[HEADER + 2 * k:]
            data = f[8 * (HEADER + 2 * k + self.spec.n_lps):]
            if len(data):
                inbound.append(bytes(data))
        self.inbound = inbound
        self.round += 1

    def advance(self, end_chunk: bool = False) -> list[bytes | None] | None:
        """Run this group's next window; its frames for every other group, or None once every LP is
        done (every group finds that in the same round). ``end_chunk``: the leader ends the chunk."""
        nxt = global_next(self.local_next, self.sent_min)
        end = self.spec.end_ps
        self.frontier_ps = frontier_ps(nxt, end)
        if nxt.min() >= end:
            self.finished = True
            return None
        t0 = time.perf_counter()
        self.group.deliver(self.inbound)
        horizons = self.cmap.horizons(nxt, end, global_next(self.local_out, self.sent_min))
        self.last_horizon_ps = int(horizons.min())
        res = self.group.advance(horizons)
        self.local_next[self.lps_of[self.g]] = res.local_next
        self.local_out[self.lps_of[self.g]] = res.local_out
        self.sent_min[self.g] = res.sent_min
        self._own = res.outbound[self.g]
        self.events[self.g] = self.group.events
        self.end_chunk = end_chunk and self.g == 0
        frames = self._frames(END_CHUNK if self.end_chunk else 0, res.outbound)
        self.work_s += time.perf_counter() - t0
        return frames

    def run_chunk(self, mesh: "Mesh", chunk_s: float) -> dict:
        """Rounds until the leader ends the chunk (after ``chunk_s``) or the run is over."""
        stop_at = time.perf_counter() + chunk_s
        clock = time.perf_counter
        try:
            if not self.started:
                self._exchange(mesh, self.start())
            self.end_chunk = False
            while not self.finished:
                frames = self.advance(end_chunk=self.g == 0 and clock() >= stop_at)
                if frames is None:
                    break
                self._exchange(mesh, frames)
                if self.end_chunk:
                    break
        except BaseException:
            mesh.close()  # the other groups see the connection close and stop, instead of waiting
            raise
        return self.summary()

    def _exchange(self, mesh: "Mesh", frames: list) -> None:
        t0 = time.perf_counter()
        got = mesh.exchange(frames)
        dt = time.perf_counter() - t0
        self.sync_s += dt
        self.group.add_sync_time(dt)
        self.receive(got)

    def summary(self) -> dict:
        self.done_ops[self.g] = self.group.work_done()
        return dict(last_horizon_ps=self.last_horizon_ps, finished=self.finished, rounds=self.round - 1 if self.round else 0,
                    events=self.group.events, messages=self.group.messages, work_s=self.work_s,
                    sync_s=self.sync_s, frontier_ps=self.frontier_ps, all_events=sum(self.events),
                    work_done=total_work(self.done_ops))

    def close(self) -> None:
        self.group.close()


class Mesh:
    """TCP connections from one group to every other: one frame to each, one from each, per round.

    Frames are length-prefixed; sockets are non-blocking and a round's sends and receives are
    interleaved (``select``), so a frame larger than the socket buffers cannot deadlock two groups
    sending to each other. A peer that closes its connection aborts the run.
    """

    def __init__(self, g: int, n: int, host: str) -> None:
        self.g, self.n = g, n
        self.listener = socket.create_server((host, 0), backlog=max(n, 1))
        self.address = (host, self.listener.getsockname()[1])
        self.socks: dict[int, socket.socket] = {}

    def connect(self, addresses: list[tuple[str, int]], token: bytes, timeout_s: float = 120.0) -> None:
        """Connect to every lower group, accept every higher one (checked by ``token``)."""
        for v in range(self.g):
            s = socket.create_connection(tuple(addresses[v]), timeout=timeout_s)
            s.sendall(HELLO + token + LEN.pack(self.g))
            self._keep(v, s)
        self.listener.settimeout(timeout_s)
        while len(self.socks) < self.n - 1:
            s, _addr = self.listener.accept()
            s.settimeout(timeout_s)
            hello = _recv_exact(s, len(HELLO) + len(token) + LEN.size)
            v = LEN.unpack(hello[-LEN.size:])[0]
            if not hmac.compare_digest(hello[:-LEN.size], HELLO + token) or not self.g < v < self.n or v in self.socks:
                s.close()  # not one of ours: ignore it
                continue
            self._keep(v, s)
        self.listener.close()

    def _keep(self, v: int, s: socket.socket) -> None:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        self.socks[v] = s

    def exchange(self, frames: list) -> list:
        """Send ``frames[v]`` to every other group v; return the frame each sent (own slot None)."""
        pending: dict[int, memoryview] = {}
        for v, s in self.socks.items():
            data = LEN.pack(len(frames[v])) + frames[v]
            try:
                k = s.send(data)
            except BlockingIOError:
                k = 0
            except OSError as exc:
                raise SimulationAborted(f"group {v}'s connection failed ({exc}): its actor failed") from None
            if k < len(data):
                pending[v] = memoryview(data)[k:]
        got: list = [None] * self.n
        state = {v: [bytearray(LEN.size), 0, False] for v in self.socks}  # buffer, bytes read, body?
        tries = 0
        while state or pending:
            progressed = False
            for v in list(pending):
                progressed |= self._write(v, pending)
            for v in list(state):
                progressed |= self._read(v, state, got)
            if not progressed and (state or pending):
                tries += 1
                if tries > YIELD_TRIES:
                    select.select([self.socks[v] for v in state], [self.socks[v] for v in pending], [], 1.0)
                elif tries > SPIN_TRIES:
                    os.sched_yield()
        return got

    def _write(self, v: int, pending: dict) -> bool:
        try:
            k = self.socks[v].send(pending[v])
        except BlockingIOError:
            return False
        except OSError as exc:
            raise SimulationAborted(f"group {v}'s connection failed ({exc}): its actor failed") from None
        rest = pending[v][k:]
        if len(rest):
            pending[v] = rest
        else:
            del pending[v]
        return k > 0

    def _read(self, v: int, state: dict, got: list) -> bool:
        """Read what is there of v's frame; True if anything arrived."""
        buf, have, body = state[v]
        try:
            k = self.socks[v].recv_into(memoryview(buf)[have:])
        except BlockingIOError:
            return False
        except OSError as exc:
            raise SimulationAborted(f"group {v}'s connection failed ({exc}): its actor failed") from None
        if k == 0:
            raise SimulationAborted(f"group {v} closed its connection (its actor failed)")
        have += k
        if have == len(buf):
            if body:
                got[v] = buf
                del state[v]
                return True
            buf, have, body = bytearray(LEN.unpack(buf)[0]), 0, True
            if not buf:
                got[v] = buf
                del state[v]
                return True
        state[v] = [buf, have, body]
        return True

    def close(self) -> None:
        for s in self.socks.values():
            s.close()
        self.listener.close()


def _recv_exact(s: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("peer closed during the handshake")
        out += chunk
    return bytes(out)

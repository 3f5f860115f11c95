"""The compiled round path's synchronisation: atomics, an epoch barrier that spins then yields
then sleeps, and the layout of the board LPs publish their round on.

Used by LPs whose windows are microseconds of work (see docs/architecture.md, "Kernel": "two round paths,
one protocol"): each LP runs its rounds in compiled code and meets the others here, with no
Python per round. The protocol is the generic one (:mod:`atleus_dist.kernel.group`), with the
exchange done in shared memory:

* ``board.epoch[i * STRIDE]`` is LP i's round counter (one cache-line pair each: single writer,
  no false sharing - measured ~3x cheaper than packed counters);
* ``board.head[p, i]`` (parity ``p``) holds what LP i published at the end of its round:
  ``H_NEXT`` its next event time, then ``sent_min[j]`` (earliest time it sent to LP j this round)
  and the row counts of its mailboxes to each LP, then ``eot[j]``: the least time at which its
  state (as of that publication, without further input) can cause a message to LP j, if it
  forecasts (0: no forecast - the generic ``next + lookahead`` then stands alone);
* round r reads parity ``r & 1`` (written in round r - 1) and writes the other parity. A writer
  can only overwrite parity p after every LP has passed the barrier of the next round, i.e. after
  it has read parity p, so two parities are enough.

numba has no CPU atomics: the intrinsics below emit LLVM ``load atomic`` (acquire) and ``store
atomic`` (release), so a spin loop re-reads memory instead of hoisting the load, and a reader that
sees epoch r sees everything the writer stored before it. The wait backs off (spin - the first
few with a pause hint - then ``sched_yield``, then 50 us sleeps) so a third runnable process does not turn the barrier into
scheduler-quantum waits (as SST's ``threadsafe.h`` does). Knows nothing of hardware.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from atleus_dist.kernel.time import NEVER_PS as NEVER

STRIDE = 16  # int64 words between epoch counters: 128 bytes, an adjacent cache-line pair
SPIN_PAUSE, SPIN_YIELD = 2000, 20000  # wait iterations spinning, then with sched_yield, then sleeping
SLEEP_US = 50
# pause hints only at first: a long run of them is what KVM's pause-loop exiting watches for - it
# then takes the vCPU away (measured here: a chip run with a slow partner 8.1 s with a pause every
# spin, 2.9 s without; a few pauses keep the short waits' gain, 3.2 vs 3.6 s on another plan)
PAUSES = 16
ABORT_CHECK = 256  # iterations between looks at the abort word while waiting
(H_NEXT, H_SENT) = range(2)  # head row: next_ps, then sent_min[n], nflit[n], ncredit[n], eot[n]


def head_words(n_lps: int) -> int:
    """Words of one head row, rounded up to whole cache-line pairs."""
    return -(-(H_SENT + 4 * n_lps) // STRIDE) * STRIDE


class Board:
    """The shared numbers of a compiled-round run of ``n`` LPs (plain numpy: threads share them;
    processes would map the same layout onto shared memory)."""

    def __init__(self, n_lps: int) -> None:
        self.n = n_lps
        self.epoch = np.full((n_lps + 1) * STRIDE, -1, dtype=np.int64)  # last slot: abort word
        self.epoch[n_lps * STRIDE] = 0
        self.head = np.zeros((2, n_lps, head_words(n_lps)), dtype=np.int64)
        self.head[:, :, H_NEXT] = NEVER
        self.head[:, :, H_SENT:H_SENT + n_lps] = NEVER
        self.head[:, :, H_SENT + 3 * n_lps:H_SENT + 4 * n_lps] = 0  # no forecast yet

    @property
    def abort_index(self) -> int:
        return self.n * STRIDE

    def abort(self) -> None:
        self.epoch[self.abort_index] = 1

    @property
    def aborted(self) -> bool:
        return bool(self.epoch[self.abort_index])


def _elem_ptr(context, builder, aryty, ary_val, idx):
    ary = context.make_array(aryty)(context, builder, ary_val)
    return cgutils.get_item_pointer(context, builder, aryty, ary, [idx], wraparound=False)


@intrinsic
def atomic_load(typingctx, arr, idx):
    """``arr[idx]`` (int64, 1-D) read with acquire ordering."""
    sig = types.int64(arr, idx)

    def codegen(context, builder, signature, args):
        ptr = _elem_ptr(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def atomic_store(typingctx, arr, idx, val):
    """``arr[idx] = val`` (int64, 1-D) with release ordering."""
    sig = types.void(arr, idx, val)

    def codegen(context, builder, signature, args):
        ptr = _elem_ptr(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()

    return sig, codegen


def _call_void(builder, name: str, argtys=(), args=()):
    fnty = ir.FunctionType(ir.VoidType(), list(argtys))
    fn = cgutils.get_or_insert_function(builder.module, fnty, name)
    builder.call(fn, list(args))


@intrinsic
def cpu_pause(typingctx):
    """The x86 spin-wait hint (``pause``): frees the core's pipeline for its sibling."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        _call_void(builder, "llvm.x86.sse2.pause")
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def cycle_counter(typingctx):
    """Monotonic time in ns: ``clock_gettime(CLOCK_MONOTONIC)`` (vDSO) into a stack timespec.
    Not ``rdtsc``: in this VM its ticks did not follow wall time."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        ts = cgutils.alloca_once(builder, ir.ArrayType(i64, 2))
        fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(32), ir.IntType(8).as_pointer()])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "clock_gettime")
        builder.call(fn, [ir.Constant(ir.IntType(32), 1), builder.bitcast(ts, ir.IntType(8).as_pointer())])
        zero = ir.Constant(ir.IntType(32), 0)
        sec = builder.load(builder.gep(ts, [zero, zero]))
        nsec = builder.load(builder.gep(ts, [zero, ir.Constant(ir.IntType(32), 1)]))
        return builder.add(builder.mul(sec, ir.Constant(i64, 1_000_000_000)), nsec)

    return sig, codegen


@intrinsic
def os_yield(typingctx):
    """``sched_yield()`` (libc, resolved from the process at link time)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def os_usleep(typingctx, us):
    """``usleep(us)`` (libc)."""
    sig = types.void(us)

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), [ir.IntType(32)]),
                                            "usleep")
        builder.call(fn, [builder.trunc(args[0], ir.IntType(32))])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def wait_round(epoch, n, r, abort_at):
    """Wait until every LP's epoch is >= r. Returns the wait's ticks, or -1 if the abort word
    was raised (another LP failed)."""
    t0 = cycle_counter()
    spins = 0
    for j in range(n):
        while atomic_load(epoch, j * STRIDE) < r:
            spins += 1
            if spins % ABORT_CHECK == 0 and atomic_load(epoch, abort_at) != 0:
                return -1
            if spins < SPIN_PAUSE:
                if spins < PAUSES:
                    cpu_pause()
            elif spins < SPIN_YIELD:
                os_yield()
            else:
                os_usleep(SLEEP_US)
    return cycle_counter() - t0


@njit(cache=True, nogil=True, inline="always")
def _window_end(nxt, end_ps, max_window_ps):
    """The end time, or the earliest next time plus the widest window allowed if sooner."""
    end = end_ps
    if max_window_ps != NEVER:
        m = NEVER
        for j in range(nxt.shape[0]):
            m = min(m, nxt[j])
        if m < NEVER - max_window_ps:
            end = min(end, m + max_window_ps)
    return end


@njit(cache=True)
def horizon_of(i, nxt, dist, end_ps, max_window_ps):
    """LP i's horizon from every LP's next time (:meth:`ChannelMap.horizons`, compiled)."""
    n = nxt.shape[0]
    h = _window_end(nxt, end_ps, max_window_ps)
    for j in range(n):
        d = dist[j, i]
        if d != NEVER and nxt[j] != NEVER and nxt[j] + d < h:
            h = nxt[j] + d
    return h


@njit(cache=True, nogil=True)
def horizon_forecast(i, head, p, nextv, insent, la, dist, end_ps, max_window_ps, nxt):
    """LP i's horizon when LPs publish earliest-output forecasts (head row ``eot``): the least of

    * ``insent[j] + D[j, i]`` - what LP j was sent last round but had not yet read, and what it
      can cause (``D``: shortest lookahead paths, the diagonal the shortest cycle);
    * ``e[j, m] + D'[m, i]`` for every channel ``j -> m`` - LP j's first message to m from its
      published state, ``e = max(eot[j, m], next[j] + L[j, m])`` (both are lower bounds; a
      self-channel ``j -> j`` has no forecast), and what m can cause after it (``D'[i, i] = 0``:
      a message to i itself).

    Without forecasts (eot 0) this is :func:`horizon_of` exactly: ``next[j] + D[j, i] =
    min_m next[j] + L[j, m] + D'[m, i]``. Every chain of causes that reaches i starts in some LP's
    state or in a message in flight, so nothing later reaches i before the horizon."""
    n = nextv.shape[0]
    h = _window_end(nxt, end_ps, max_window_ps)
    for j in range(n):
        d = dist[j, i]
        if insent[j] != NEVER and d != NEVER and insent[j] + d < h:
            h = insent[j] + d
        if nextv[j] == NEVER:
            continue
        for m in range(n):
            if la[j, m] == NEVER:
                continue
            e = nextv[j] + la[j, m]
            if m != j:  # a self-channel has no forecast
                e = max(e, head[p, j, H_SENT + 3 * n + m])
            if e >= h:
                continue
            dp = 0 if m == i else dist[m, i]
            if dp != NEVER and e + dp < h:
                h = e + dp
    return h

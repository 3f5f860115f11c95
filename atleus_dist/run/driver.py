"""Drive one simulation from a built :class:`RunSpec` to a finished run directory.

The manifest says ``running`` before the first round and ``complete`` only after every LP closed
its result streams and the run sealed (``finish_manifest``); an exception rewrites it as
``failed`` with the error.

SIGTERM, SIGINT and SIGHUP during :func:`execute` raise :class:`RunInterrupted` in the main
thread, so the backend's own cleanup runs (workers stopped, shared memory removed), and the manifest
says ``interrupted`` with the signal and the simulated time reached. A second signal while that
cleanup runs is ignored rather than cutting it short; a signal once the manifest is being written
``complete`` is held until it is written. The CLI prints the exception as one line and exits
128 + the signal number. Local workers are started shielded from a terminal's Ctrl-C
(``hygiene.children_shielded``): the parent alone decides how the run stops.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

from atleus_dist import backends
from atleus_dist.backends import hygiene
from atleus_dist.backends.base import RunStats
from atleus_dist.kernel import ConfigError, RunSpec
from atleus_dist.results import finish_manifest, start_manifest
from atleus_dist.results.manifest import MANIFEST, write_manifest
from atleus_dist.results.seal import seal


def prepare_out_dir(out: str | os.PathLike, field: str = "out") -> Path:
    """Create ``out`` (must be empty or hold no manifest) and check that it is writable."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(field, f"cannot create output directory {str(path)!r}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(field, f"output directory {str(path)!r} is not writable")
    if (path / MANIFEST).exists() or any(path.glob("*/lp*.arrows")) or any(path.glob("*.parquet")):
        raise ConfigError(field, f"output directory {str(path)!r} already holds a run; choose a new one")
    return path


def stderr_progress(label: str, end_ps: int, expected_end_ps: int | None = None, total_ops: int | None = None):
    """A progress callback printing simulated time, rounds, events/s, elapsed and ETA to stderr.

    Two measures of progress: simulated time over ``expected_end_ps`` (the model's estimate of
    where the step ends - a lower bound, so this *over*states progress and is no guide once
    passed) and ops done over ``total_ops`` (the callback's optional 4th argument, when the
    backend reports it). The shown fraction is the smaller of the two that are known (the op share
    alone when there is no estimate: the hard end time is only a bound); past the estimate with no
    op count, the line says so instead of sitting at 99%. The ETA is the
    remaining fraction at the average rate so far, and never rises between two lines (a noisy
    rate only makes it fall more slowly) unless it has run out with work left, when it is revised
    up and marked so; without an estimate the hard end time is the target."""
    t0 = time.monotonic()
    estimate = bool(expected_end_ps)
    hard_end_ps, end_ps = end_ps, expected_end_ps or end_ps
    last = {"eta": float("inf"), "at": t0}

    def fraction(sim_ps: int, ops_done: int | None) -> float | None:
        by_ops = ops_done / total_ops if ops_done is not None and total_ops else None
        by_time = sim_ps / end_ps if end_ps else None
        if estimate and by_time is not None and by_time >= 1:
            by_time = None  # the lower bound is passed: simulated time says nothing more
        if not estimate and by_ops is not None:
            by_time = None  # the hard end lies far past the step's last op: the op count is the measure
        known = [f for f in (by_ops, by_time) if f is not None]
        return min(min(known), 0.999) if known else None

    def report(rounds: int, sim_ps: int, events: int, ops_done: int | None = None) -> None:
        now = time.monotonic()
        elapsed = now - t0
        rate = events / elapsed if elapsed > 0 else 0.0
        if estimate and sim_ps >= hard_end_ps:  # nothing left to simulate: no time to show
            sys.stderr.write(f"[{label}] done  rounds {rounds:,}  events {events:,} "
                             f"({events / max(elapsed, 1e-9):,.0f}/s)  elapsed {elapsed:,.1f}s\n")
            return
        frac = fraction(sim_ps, ops_done)
        ops = f"  ops {ops_done:,}/{total_ops:,}" if ops_done is not None and total_ops else ""
        if frac is None:
            where, eta_text = f"past the {end_ps / 1e6:,.3f} us estimate", "eta unknown"
        else:
            fresh = elapsed * (1 - frac) / frac if frac > 0 else float("inf")
            held = last["eta"] - (now - last["at"])
            # never rises between lines; only once the held ETA has run out with work left is it
            # revised up, and the line says so (rather than showing 0 s for the rest of the run)
            eta, revised = (fresh, held <= 0 < fresh) if held <= 0 else (min(fresh, held), False)
            last["eta"], last["at"] = eta, now
            where = f"{100 * frac:5.1f}%"
            eta_text = "eta ?" if eta == float("inf") else f"eta {eta:,.1f}s" + (" (revised up)" if revised else "")
        sys.stderr.write(
            f"[{label}] sim {sim_ps / 1e6:,.3f} us ({where}){ops}  rounds {rounds:,}  "
            f"events {events:,} ({rate:,.0f}/s)  elapsed {elapsed:,.1f}s  {eta_text}\n"
        )
        sys.stderr.flush()

    return report


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class RunInterrupted(KeyboardInterrupt):
    """A stop signal reached the run. A ``KeyboardInterrupt`` so that code that lets Ctrl-C
    through lets this through too; ``signum`` gives the exit code (128 + signum)."""

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message or f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


class _SignalGuard:
    """Turns the first stop signal into :class:`RunInterrupted`; remembers the last progress seen
    (the simulated time a stopped run reached)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.hold = True  # note a signal, raise it later: until the manifest exists, and while the last is written
        self.sim_ps = 0
        self.rounds = 0
        self.events = 0

    def progress(self, forward):
        def report(rounds: int, sim_ps: int, events: int, *more) -> None:
            note(rounds, sim_ps, events)
            if forward is not None:
                forward(rounds, sim_ps, events, *more)

        def note(rounds: int, sim_ps: int, events: int) -> None:
            # every round (ProgressTicker), not only at the rate-limited lines: the time an
            # interrupted run reached is then the frontier of its last round, not of the last line
            self.rounds, self.sim_ps, self.events = rounds, sim_ps, events

        report.note = note
        return report

    def handler(self, signum, _frame) -> None:
        if self.signum is not None:
            return  # already stopping: let the cleanup finish
        self.signum = signum
        if not self.hold:
            raise RunInterrupted(signum)

    @contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals reach only the main thread; a run in another thread keeps defaults
            return
        previous = {s: signal.signal(s, self.handler) for s in STOP_SIGNALS}
        unraisable = sys.unraisablehook

        def hook(info) -> None:  # the handler raised inside a finalizer (a Parquet writer's __del__):
            if not isinstance(info.exc_value, RunInterrupted):  # Python swallows it there; the signal
                unraisable(info)  # stays noted (signum) and is acted on after the run, with no traceback

        sys.unraisablehook = hook
        try:
            yield self
        finally:
            sys.unraisablehook = unraisable
            for s, h in previous.items():
                signal.signal(s, h)


def execute(command: str, config: dict, spec: RunSpec, backend: str, out: Path,
            progress: bool = True, finalize=None, checkpoint=None, manifest: dict | None = None,
            manifest_extra: dict | None = None, **backend_options) -> tuple[RunStats, dict]:
    """Run ``spec`` on ``backend`` into ``out``. ``finalize(out, manifest, figures)``, if given,
    runs after the simulation and before the manifest says ``complete`` (e.g. to write the
    ``summary`` table) and returns more figures. A stop signal raises :class:`RunInterrupted`
    after the manifest says ``interrupted``; files that do not seal make the run ``failed``
    (:class:`~atleus_dist.kernel.SimulationAborted`). ``checkpoint``: a
    :class:`~atleus_dist.run.checkpoint.CheckpointPlan` for the backend (it adds each checkpoint
    to the manifest); ``manifest``: an existing run's manifest to continue (``resume``) instead of
    starting one; ``manifest_extra``: keys added to a new manifest."""
    partition = {"groups": spec.groups, "n_lps": spec.n_lps, "backend": backend,
                 "min_cut_lookahead_ps": spec.channel_map().min_cut_lookahead(spec.group_of_lp())}
    guard = _SignalGuard()
    cb = guard.progress(stderr_progress(command, spec.end_ps, spec.meta.get("expected_end_ps"),
                                           total_ops=spec.meta.get("total_ops")) if progress else None)
    shield = hygiene.children_shielded() if backend == "local" else nullcontext()
    with guard.installed(), shield:
        if manifest is None:
            manifest = start_manifest(out, command, config, partition)  # a signal from now on finds it
            if manifest_extra:
                manifest.update(manifest_extra)
                write_manifest(out, manifest)
        else:
            manifest = dict(manifest, status="running", finished=None)
            write_manifest(out, manifest)
        if checkpoint is not None:
            checkpoint.manifest = manifest
            backend_options["checkpoint"] = checkpoint
        guard.hold = False
        try:
            if guard.signum is not None:
                raise RunInterrupted(guard.signum)
            stats = backends.run(spec, backend, progress=cb, **backend_options)
            figures = stats.figures()
            if finalize is not None:  # the backend's own figures (rounds, sync, wall) take precedence
                for key, value in finalize(out, manifest, figures).items():
                    figures.setdefault(key, value)
            if guard.signum is not None:  # a signal during the backend's cleanup, after its last round
                raise RunInterrupted(guard.signum)
            sealed = seal(out, manifest)  # may be stopped; only the manifest write below may not
            guard.hold = True
            manifest = finish_manifest(out, manifest, "complete", figures, sealed=sealed)
        except RunInterrupted as exc:
            guard.hold = True
            _interrupted(out, manifest, guard, exc.signum)
        except BaseException as exc:
            guard.hold = True
            if guard.signum is None and isinstance(exc, SystemExit) and exc.code in STOP_SIGNALS:
                guard.signum = exc.code  # ray.init replaces our SIGTERM handler by sys.exit(signum)
            if guard.signum is not None:  # the signal surfaced as another error (e.g. a worker stopped)
                _interrupted(out, manifest, guard, guard.signum)
            finish_manifest(out, manifest, "failed", {}, error=f"{type(exc).__name__}: {exc}")
            raise
    if guard.signum is not None:  # arrived while the complete manifest was written: it stays complete
        raise RunInterrupted(guard.signum, f"interrupted by {signal.Signals(guard.signum).name} after the run "
                             f"completed; results in {out} are complete")
    return stats, manifest


def _interrupted(out: Path, manifest: dict, guard: _SignalGuard, signum: int) -> None:
    name = signal.Signals(signum).name
    # a checkpoint committed after the last progress note (the signal can fall in between) proves more
    guard.sim_ps = max([guard.sim_ps] + [c["sim_time_ps"] for c in manifest.get("checkpoints", ())])
    finish_manifest(out, manifest, "interrupted", {"rounds": guard.rounds, "events": guard.events},
                    error=f"interrupted by {name}", signal=name, sim_time_ps=guard.sim_ps)
    raise RunInterrupted(signum, f"interrupted by {name} at simulated time {guard.sim_ps / 1e6:,.3f} us; "
                         f"manifest says 'interrupted', partial results in {out}") from None

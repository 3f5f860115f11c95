"""The progress line: the smaller of the simulated-time and op fractions, an ETA that never rises,
never parked at 99% when the op count says otherwise."""

from __future__ import annotations

import re

from atleus_dist.run import driver


def _etas(lines):
    return [float(m.group(1)) for m in (re.search(r"eta ([\d.,]+)s", ln) for ln in lines) if m]


def test_ops_fraction_wins_over_an_optimistic_time_estimate(capsys, monkeypatch):
    clock = iter(range(0, 100, 1))
    monkeypatch.setattr(driver.time, "monotonic", lambda: float(next(clock)))
    report = driver.stderr_progress("run", end_ps=10**12, expected_end_ps=1000, total_ops=200)
    report(1, 990, 10, 20)  # time says 99%, ops say 10%: 10% shown
    report(2, 2000, 20, 100)  # past the time estimate: the ops fraction alone
    report(3, 2500, 30, 180)
    lines = capsys.readouterr().err.splitlines()
    assert "( 10.0%)" in lines[0] and "ops 20/200" in lines[0]
    assert "( 50.0%)" in lines[1] and "( 90.0%)" in lines[2]
    etas = _etas(lines)
    assert etas[0] == 9.0  # 1 s elapsed for 10%: 9 s left at that rate
    assert all(a >= b for a, b in zip(etas, etas[1:]))


def test_eta_never_rises_when_the_rate_drops(capsys, monkeypatch):
    times = iter([0.0, 2.0, 2.5, 10.0])
    monkeypatch.setattr(driver.time, "monotonic", lambda: next(times))
    report = driver.stderr_progress("run", end_ps=1000)
    report(1, 500, 1)  # 50% after 2 s: eta 2 s
    report(2, 505, 2)  # 50.5% after 2.5 s: the rate says 2.45 s, the shown ETA may not rise: 1.5 s
    report(3, 510, 3)  # after 10 s the held ETA ran out with half the work left: revised up, said so
    lines = capsys.readouterr().err.splitlines()
    etas = _etas(lines)
    assert etas[:2] == [2.0, 1.5] and "revised up" not in lines[1]
    assert etas[2] > 9 and "(revised up)" in lines[2]


def test_backends_report_the_ops_done_to_the_progress_callback(mapping, tmp_path):
    """The progress callback's 4th argument counts finished ops, so the ETA can follow the share of
    ops done: inline and the compiled-round threads both end with every op of the step."""
    from atleus_dist import backends
    from atleus_dist.hw.chip import chip_run_spec
    from atleus_dist.results import SinkFactory

    for name, part, backend, workers in (("one", "single", "inline", 1), ("two", "blocks:2x1", "local", 2)):
        calls = []
        spec, _ = chip_run_spec(mapping, {}, part, workers, SinkFactory(str(tmp_path / name)), backend=backend)
        backends.run(spec, backend, progress=lambda *args: calls.append(args))
        assert calls and len(calls[-1]) == 4, (name, calls[-1:])
        # every op of the chip's program (HBM ops are one per memory port, so more than the graph's)
        assert calls[-1][3] == spec.meta["total_ops"] >= len(mapping.graph), name
        done = [c[3] for c in calls if len(c) == 4]
        assert done == sorted(done)  # never goes back


def test_without_an_estimate_the_op_share_is_the_progress(capsys):
    from atleus_dist.run.driver import stderr_progress

    report = stderr_progress("run", end_ps=1_000_000_000, total_ops=100)  # a hard end, no estimate
    report(1, 1_000, 1, 40)  # 1e-6 of the hard end, but 40 of 100 ops
    assert "( 40.0%)" in capsys.readouterr().err


def test_generic_worker_processes_report_the_ops_done(mapping, tmp_path):
    """``--backend local --partition by-tier``: several LPs per group, so the generic worker
    processes run (not the compiled rounds); their ops done reach the progress callback through
    shared memory, never go back, and end at every op of the step."""
    from atleus_dist import backends
    from atleus_dist.backends import threads
    from atleus_dist.hw.chip import chip_run_spec
    from atleus_dist.results import SinkFactory

    calls = []
    spec, _ = chip_run_spec(mapping, {}, "by-tier", 2, SinkFactory(str(tmp_path / "tiers")), backend="local")
    assert len(spec.groups) == 2 and not threads.eligible(spec)  # the path under test
    backends.run(spec, "local", progress=lambda *args: calls.append(args))
    done = [c[3] for c in calls if len(c) == 4]
    assert done and len(calls[-1]) == 4
    assert done[-1] == spec.meta["total_ops"] >= len(mapping.graph)
    assert done == sorted(done)


def test_ray_actors_report_the_ops_done_in_their_round_summary(mapping, tmp_path):
    """The Ray backend's actor logic (``GroupActor``, plain Python; ``ray.remote`` wraps it at the
    edge) driven by the same coordinator loop and exchange as ``ray_backend.run``, without Ray:
    each round's summary carries the actor's ops done, whose sum reaches every op of the step."""
    import numpy as np

    from atleus_dist.backends.base import RunStats, coordinator_loop
    from atleus_dist.backends.ray_backend import GroupActor
    from atleus_dist.hw.chip import chip_run_spec
    from atleus_dist.kernel.lp import total_work
    from atleus_dist.results import SinkFactory

    spec, _ = chip_run_spec(mapping, {}, "by-tier", 2, SinkFactory(str(tmp_path / "ray")), backend="ray")
    n = len(spec.groups)
    actors = [GroupActor(spec, g) for g in range(n)]
    local_next = np.empty(spec.n_lps, dtype=np.int64)
    for g, a in enumerate(actors):
        local_next[spec.groups[g]] = a.group.local_next()  # init() also asks Ray for its node
    inbound: list[list] = [[] for _ in range(n)]
    done: list = [None] * n
    seen = []

    def step(horizons):
        outs = [a.step(horizons, *inbound[g]) for g, a in enumerate(actors)]
        for v in range(n):
            inbound[v] = [outs[g][1 + v] for g in range(n) if outs[g][1 + v]]
        for g, out in enumerate(outs):
            local_next[spec.groups[g]] = out[0][0]
            done[g] = out[0][6]
        seen.append(total_work(done))
        return local_next, np.stack([out[0][1] for out in outs])

    calls = []
    coordinator_loop(spec, n, step, local_next.copy(), RunStats("ray", n), lambda *a: calls.append(a),
                     work=lambda: total_work(done))
    for a in actors:
        a.close()
    assert seen[-1] == spec.meta["total_ops"] and seen == sorted(seen)
    assert len(calls[-1]) == 4 and calls[-1][3] == spec.meta["total_ops"]


def test_compiled_rounds_progress_counts_events_as_it_goes(tmp_path):
    """Progress lines of a run on compiled rounds (local x2, two regions, checkpoints every 15k
    cycles) show the events done so far - the LPs' live counts, not the committed ones a segment
    sets only when it ends (every line but the last said ``events 0``) - and rounds from the run's
    start (each segment between checkpoints counted from 0 again)."""
    import re
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "atleus_dist.cli", "noc", "--mesh", "8x8x4", "--traffic", "uniform",
                        "--rate", "0.05", "--measure", "60000", "--partition", "blocks:2x1", "--backend", "local",
                        "--workers", "2", "--checkpoint-every-ps", "15000000", "--out", str(tmp_path / "n")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("[noc] sim")]
    assert len(lines) >= 2, r.stderr  # ~3 s of run: a line a second, and the last
    events, rounds = ([int(re.search(rf"{k} ([\d,]+)", ln).group(1).replace(",", "")) for ln in lines]
                      for k in ("events", "rounds"))
    assert all(e > 0 for e in events) and events == sorted(events), lines
    assert rounds == sorted(rounds), lines  # segments between checkpoints go on counting

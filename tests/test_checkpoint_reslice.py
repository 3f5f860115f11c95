"""Resume on another partition (issue 12 item 5): a checkpointed run killed (SIGKILL) after its
first checkpoint resumes on another partition and worker count - the NoC alone and a chip step
on the flit NoC, from several LPs to one and from one to several - and its digest is the
uninterrupted run's (partitions change only how rounds fall, never the results, so one reference
serves every partition); a re-sliced run killed again resumes on a third partition, the streams
of LPs it dropped still counted; a partition that cannot be built is refused with one line
naming ``--partition``. The stub transport has one partition (a tier per LP): see
tests/test_checkpoint.py's refusals.
"""

from __future__ import annotations

import json
import signal

import pytest

from tests.test_checkpoint import (NOC, NOC_EVERY, NOC_ONLY, NOC_ONLY_EVERY, _manifest, _newest,  # noqa: F401
                                   _stop_after_first_checkpoint, noc_only_reference,
                                   noc_only_reference_run)

# the 4x4x4 mesh of NOC_ONLY with router r in LP r % 3: nearly every link is a cut
THREE = "map:" + ",".join(str(r % 3) for r in range(64))


# a chip finetune step (~4 s on one LP) whose checkpoint at 200 us has cores busy and ops queued
# behind them (the inference step of NOC runs one op at a time)
FINETUNE = ["run", "roberta-base-lora32-s512", "--set", "scenario.seq=8", "--quiet"]
FINETUNE_EVERY = "200000000"


@pytest.fixture(scope="module")
def reference():
    """``reference(args)``: the digest of the uninterrupted run of ``args`` (one LP, inline, no
    checkpoints), computed once per module."""
    import subprocess
    import sys
    import tempfile

    done: dict = {}

    def get(args: list[str]) -> str:
        if tuple(args) not in done:
            with tempfile.TemporaryDirectory() as tmp:
                out = f"{tmp}/ref"
                proc = subprocess.run([sys.executable, "-m", "atleus_dist.cli", *args, "--backend", "inline",
                                       "--partition", "single", "--out", out], capture_output=True, text=True,
                                      timeout=300)
                assert proc.returncode == 0, proc.stderr
                proc = subprocess.run([sys.executable, "-m", "atleus_dist.cli", "digest", out, "--json"],
                                      capture_output=True, text=True, timeout=120)
                done[tuple(args)] = json.loads(proc.stdout)["digest"]
        return done[tuple(args)]

    return get


def _resume_elsewhere(cli, out, resume_on: list[str], killed: dict, n_lps: int) -> dict:
    """Resume ``out`` with ``resume_on`` (``--partition P`` first); checks what the manifest
    records of the move and that the run verifies; returns the manifest."""
    code, data, err = cli("resume", str(out), *resume_on, "--quiet", "--json")
    assert code == 0, err
    assert data["resumed_from_ps"] == killed["checkpoints"][-1]["sim_time_ps"]
    man = _manifest(out)
    last = man["resumes"][-1]
    assert last["from_partition"] == killed["checkpoint"]["partition"] != last["partition"] == resume_on[1]
    assert man["partition"]["n_lps"] == n_lps == man["checkpoint"]["n_lps"]
    code, _, err = cli("verify", str(out))
    assert code == 0, err
    return man


@pytest.mark.parametrize("run_on, resume_on, n_lps", [
    (["--partition", "blocks:2x1", "--backend", "local", "--workers", "2"],
     ["--partition", "single", "--backend", "inline"], 1),
    (["--partition", "single", "--backend", "inline"],
     ["--partition", THREE, "--backend", "local", "--workers", "3"], 3),
])
def test_killed_noc_run_resumes_on_another_partition(tmp_path, cli, digest_of, noc_only_reference, run_on,
                                                    resume_on, n_lps):
    out = tmp_path / "run"
    m = _stop_after_first_checkpoint([*NOC_ONLY, *run_on, "--checkpoint-every-ps", NOC_ONLY_EVERY], out,
                                     signal.SIGKILL)
    assert m["checkpoint"]["partition"] == run_on[1]
    _resume_elsewhere(cli, out, resume_on, m, n_lps)
    assert digest_of(out) == noc_only_reference


@pytest.mark.parametrize("args, every, run_on, resume_on, n_lps", [
    (NOC, NOC_EVERY, ["--partition", "single", "--backend", "inline"],
     ["--partition", "blocks:2x1", "--backend", "local", "--workers", "2"], 2),
    (FINETUNE, FINETUNE_EVERY, ["--partition", "blocks:2x1", "--backend", "local", "--workers", "2"],
     ["--partition", "single", "--backend", "inline"], 1),
])
def test_killed_chip_run_resumes_on_another_partition(tmp_path, cli, digest_of, reference, args, every, run_on,
                                                     resume_on, n_lps):
    """A chip step: cores' schedulers and the NoC's regions both move; ops, packets, links and
    nodes come out as in the uninterrupted run."""
    from atleus_dist.run.checkpoint import read_lp_state

    out = tmp_path / "run"
    m = _stop_after_first_checkpoint([*args, *run_on, "--checkpoint-every-ps", every], out, signal.SIGKILL)
    if args is FINETUNE:  # the state moved holds what the test claims to move
        ckpt = _newest(out)
        scheds = [read_lp_state(ckpt, lp)["state"].attrs["sched"].attrs for lp in range(m["checkpoint"]["n_lps"])]
        assert any(s["busy"] for s in scheds) and any(any(q) for s in scheds for q in s["queues"].values())
    man = _resume_elsewhere(cli, out, resume_on, m, n_lps)
    assert man["config"]["partition"] == resume_on[1]
    assert digest_of(out) == reference(args)


def test_resliced_run_killed_again_resumes(tmp_path, cli, digest_of, noc_only_reference):
    """2 LPs -> 1 (LP 1's streams retired: cut back to the checkpoint and closed), killed again
    after a checkpoint of its own -> 3 LPs (LP 1 continues the retired streams, LP 2 starts)."""
    out = tmp_path / "run"
    m = _stop_after_first_checkpoint([*NOC_ONLY, "--backend", "local", "--workers", "2", "--checkpoint-every-ps",
                                      NOC_ONLY_EVERY], out, signal.SIGKILL)
    m2 = _stop_after_first_checkpoint(["resume", str(out), "--partition", "single", "--backend", "inline", "--quiet"],
                                      out, signal.SIGKILL, count=len(m["checkpoints"]) + 1, new_run=False)
    assert m2["resumes"][0]["partition"] == "single"
    meta = json.loads((_newest(out) / "checkpoint.json").read_text())
    assert meta["partition"] == "single" and meta["lps"] == [0]
    assert sorted(meta["retired_streams"]) == ["windows/lp001.arrows"]  # a noc run writes its tables at the end
    import shutil

    same = shutil.copytree(out, tmp_path / "same")  # on the newest checkpoint's own partition: retired kept too
    code, _, err = cli("resume", str(same), "--backend", "inline", "--quiet")
    assert code == 0, err
    assert digest_of(same) == noc_only_reference and _manifest(same)["tables"]["windows"]["streams"] == 2
    code, _, err = cli("resume", str(out), "--partition", THREE, "--backend", "local", "--workers", "3", "--quiet")
    assert code == 0, err
    assert digest_of(out) == noc_only_reference
    man = _manifest(out)
    assert [r["partition"] for r in man["resumes"]] == ["single", THREE]
    # checkpoints count rounds and events from the run's start across its three processes; each
    # resume records what the run had done at its checkpoint (its figures count the rest)
    for key in ("round", "events"):
        counts = [c[key] for c in man["checkpoints"]]
        assert counts == sorted(set(counts)) and counts[0] > 0, (key, counts)
    by_name = {c["name"]: c for c in man["checkpoints"]}
    for r in man["resumes"]:
        assert r["rounds_before"] == by_name[r["checkpoint"]]["round"] and r["events_before"] > 0
    assert man["resumes"][1]["wall_s_before"] > man["resumes"][0]["wall_s_before"] > 0
    assert man["tables"]["windows"]["streams"] == 3
    code, _, err = cli("verify", str(out))
    assert code == 0, err


@pytest.fixture(scope="module")
def killed_noc(tmp_path_factory):
    out = tmp_path_factory.mktemp("killed") / "noc"
    _stop_after_first_checkpoint([*NOC_ONLY, "--backend", "inline", "--checkpoint-every-ps", NOC_ONLY_EVERY], out,
                                 signal.SIGKILL)
    return out


@pytest.mark.parametrize("value, says", [("blocks:9x9", "does not fit"), ("tiers:0,1", "one per tier"),
                                         ("nonsense", "unknown partition")])
def test_partition_that_cannot_be_built_refused(cli, killed_noc, value, says):
    before = sorted(p.name for p in killed_noc.rglob("*"))
    code, _, err = cli("resume", str(killed_noc), "--partition", value, "--quiet")
    assert code == 2 and err.count("--partition") == 1 and says in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in killed_noc.rglob("*")) == before  # refused before anything was touched


def test_scripted_transfers_resume_on_another_partition(tmp_path, digest_of):
    """Transfers not yet due, loopbacks, and transfers with some packets ejected move with their
    source or destination node, the ``transfers`` table too. The checkpoint's state is checked to
    hold each of them, so the test covers what it claims."""
    import numpy as np

    from atleus_dist.api import noc, resume
    from atleus_dist.hw.noc.config import NocConfig, PhaseConfig, TrafficConfig
    from atleus_dist.run.checkpoint import read_lp_state

    rng = np.random.default_rng(11)
    at = 1500  # cycles: the older of the two checkpoints kept (500-cycle interval, the end at 2050)
    transfers = [(int(rng.integers(0, 1800)), int(s), int(d), int(rng.integers(16, 6000)), 100 + k)
                 for k, (s, d) in enumerate(rng.integers(0, 64, (160, 2)))]
    transfers += [(at - 1, 9, 9, 512, 1), (at - 1, 40, 40, 64, 2), (at + 50, 3, 60, 4000, 3)]  # loopbacks, a late one
    cfg = NocConfig(partition="blocks:2x1", traffic=TrafficConfig(rate=0.02), seed=4,
                    phases=PhaseConfig(warmup_cycles=50, measure_cycles=2000, drain_cycles=0))
    clk = cfg.router.clock_period_ps
    noc(cfg, out=tmp_path / "ref", backend="inline", workers=1, transfers=tuple(transfers))
    run = tmp_path / "run"
    noc(cfg, out=run, backend="inline", workers=2, transfers=tuple(transfers), checkpoint_every_ps=500 * clk)
    ckpt = run / "checkpoints" / f"ckpt-{at * clk:019d}"
    regions = [read_lp_state(ckpt, lp)["state"].attrs["region"].attrs for lp in (0, 1)]
    for name in ("future", "loopback", "remaining"):
        assert any(r[name] for r in regions), f"no {name} at the checkpoint"
    manifest = json.loads((run / "manifest.json").read_text())
    for k, partition in enumerate(("single", THREE)):
        import shutil

        copy = tmp_path / f"copy{k}"
        shutil.copytree(run, copy)
        (copy / "manifest.json").write_text(json.dumps(dict(manifest, status="interrupted")))  # as if killed
        r = resume(copy, partition=partition, checkpoint=ckpt.name, backend="inline")
        assert r.figures["resumed_from_ps"] == at * clk
        assert digest_of(copy) == digest_of(tmp_path / "ref"), partition


def _noc_canonical(st) -> dict:
    """A :class:`NocState` with flit ids replaced by the flits they name and items in a fixed
    order: equal for two sets of regions that hold the same network, however partitioned."""
    import numpy as np

    fl = st.flits.tolist()
    arrays = {k: getattr(st, k) for k in ("rv", "rp", "rr", "ni", "nsv", "nst", "gd", "explicit", "nq")}
    cols = sorted(st.packets[0]) if st.packets else []
    rows = np.concatenate([np.column_stack([p[c] for c in cols]) for p in st.packets]) if st.packets else []
    return dict(
        {k: a.tolist() for k, a in arrays.items()},
        buf=[fl[g] if g >= 0 else None for g in st.buf.ravel().tolist()],
        arrivals=sorted(r[:4] + fl[r[4]] for r in st.arrivals.tolist()),
        ejects=sorted(r[:2] + r[3:] + fl[r[2]] for r in st.ejects.tolist()),
        credits=sorted(st.credits.tolist()), src_credits=sorted(st.src_credits.tolist()),
        future=sorted(f[:1] + f[2:] for f in st.future), loopback=sorted(st.loopback), completed=sorted(st.completed),
        remaining=st.remaining,
        packets=sorted(map(tuple, np.asarray(rows).tolist())), hops=st.hops, cycles_run=st.cycles_run, cycle=st.cycle)


def _sched_canonical(scheds) -> dict:
    return {"waiting": {op: n for s in scheds for op, n in s.waiting.items()},
            "heap": sorted(e for s in scheds for e in s.heap),
            "queues": {u: sorted(q) for s in scheds for u, q in s.queues.items()},
            "busy": sorted(u for s in scheds for u in s.busy),
            "started": {op: t for s in scheds for op, t in s.started.items()},
            "rows": sorted(r for s in scheds for r in s.rows), "ops_done": sum(s.ops_done for s in scheds)}


@pytest.mark.parametrize("kind", ["noc", "chip"])
def test_reslice_moves_every_piece_of_state(tmp_path, kind):
    """The states written for the new partition (read back as a resume reads them) hold exactly
    the network and the schedulers of the checkpoint: merged into one partition-independent form
    (:func:`~atleus_dist.hw.noc.reslice.gather`), old and new LP sets are equal - every router,
    NI, flit, pending item, transfer, packet row, op and unit, in any partition."""
    from atleus_dist.hw.noc.reslice import gather
    from atleus_dist.run.checkpoint_resume import RestoringFactory, plan_resume

    args, every = (NOC_ONLY, NOC_ONLY_EVERY) if kind == "noc" else (FINETUNE, FINETUNE_EVERY)
    out = tmp_path / "run"
    m = _stop_after_first_checkpoint([*args, "--partition", "blocks:2x1", "--backend", "local", "--workers", "2",
                                      "--checkpoint-every-ps", every], out, signal.SIGKILL)
    ckpt, t_ps = _newest(out), m["checkpoints"][-1]["sim_time_ps"]
    rs = plan_resume(out, partition=THREE if kind == "noc" else "tiers:0,1,1,2,2", backend="inline")
    inner = rs.spec.lp_factory.inner
    old_f = RestoringFactory(inner.for_partition("blocks:2x1"), str(ckpt))
    old = [old_f(i, None) for i in range(2)]
    new = [rs.spec.lp_factory(j, None) for j in range(3)]
    assert all(lp.now_ps == t_ps for lp in new)
    cycle = -(-t_ps // new[0].clk)
    before = _noc_canonical(gather([lp.region for lp in old], cycle))
    after = _noc_canonical(gather([lp.region for lp in new], cycle))
    assert before["arrivals"] and before["buf"].count(None) < len(before["buf"])  # flits in flight and buffered
    for key in before:
        assert after[key] == before[key], key
    assert sum(lp.events_committed for lp in new) == sum(lp.events_committed for lp in old)
    if kind == "chip":
        assert _sched_canonical([lp.sched for lp in new]) == _sched_canonical([lp.sched for lp in old])
        for lp in new:  # each op's state is in the LP that owns it
            assert set(lp.sched.waiting) == set(lp.sched.mine)
            assert all(lp.lp_of_router[lp.prog.router[op]] == lp.lp_id for op, _s, _e in lp.sched.rows)

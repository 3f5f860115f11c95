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
                                   _stop_after_first_checkpoint, noc_only_reference)

# the 4x4x4 mesh of NOC_ONLY with router r in LP r % 3: nearly every link is a cut
THREE = "map:" + ",".join(str(r % 3) for r in range(64))


@pytest.fixture(scope="module")
def chip_reference(tmp_path_factory) -> str:
    """Digest of the uninterrupted chip step (one LP, no checkpoints)."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("ref") / "chip"
    proc = subprocess.run([sys.executable, "-m", "atleus_dist.cli", *NOC, "--backend", "inline", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "atleus_dist.cli", "digest", str(out), "--json"],
                          capture_output=True, text=True, timeout=120)
    return json.loads(proc.stdout)["digest"]


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


@pytest.mark.parametrize("run_on, resume_on, n_lps", [
    (["--partition", "blocks:2x1", "--backend", "local", "--workers", "2"],
     ["--partition", "single", "--backend", "inline"], 1),
    (["--partition", "single", "--backend", "inline"],
     ["--partition", "blocks:2x1", "--backend", "local", "--workers", "2"], 2),
])
def test_killed_chip_run_resumes_on_another_partition(tmp_path, cli, digest_of, chip_reference, run_on,
                                                     resume_on, n_lps):
    """A chip step: cores' schedulers and the NoC's regions both move; ops, packets, links and
    nodes come out as in the uninterrupted run."""
    out = tmp_path / "run"
    m = _stop_after_first_checkpoint([*NOC, *run_on, "--checkpoint-every-ps", NOC_EVERY], out, signal.SIGKILL)
    man = _resume_elsewhere(cli, out, resume_on, m, n_lps)
    assert man["config"]["partition"] == resume_on[1]
    assert digest_of(out) == chip_reference


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
    code, _, err = cli("resume", str(out), "--partition", THREE, "--backend", "local", "--workers", "3", "--quiet")
    assert code == 0, err
    assert digest_of(out) == noc_only_reference
    man = _manifest(out)
    assert [r["partition"] for r in man["resumes"]] == ["single", THREE]
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

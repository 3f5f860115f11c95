"""`atleus-dist run`: a scenario end to end (stub transport), determinism, errors."""

from __future__ import annotations

import pytest

from atleus_dist.results import read_manifest, read_table

SMALL = ["gpt2-medium-lora32-s1024", "--set", "scenario.seq=64", "--transport", "stub", "--quiet"]


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    from atleus_dist.cli import main

    out = tmp_path_factory.mktemp("run") / "inline"
    assert main(["run", *SMALL, "--backend", "inline", "--workers", "1", "--out", str(out)]) == 0
    return out


def test_run_writes_ops_summary_and_a_complete_manifest(ref):
    man = read_manifest(ref)
    assert man["status"] == "complete"
    assert man["config"]["scenario"]["seq"] == 64
    assert man["config"]["scenario"]["name"] == "gpt2-medium-lora32-s64"  # the name follows --set seq
    ops = read_table(ref, "ops")
    assert ops.num_rows == man["config"]["ops"]
    fig = man["figures"]
    assert fig["step_latency_ps"] == max(ops.column("end_ps").to_pylist())
    assert fig["tokens"] == 64 and fig["rounds"] > 0 and fig["events"] >= ops.num_rows
    summary = dict(zip(*read_table(ref, "summary").to_pydict().values()))
    assert summary["step_latency_ps"] == fig["step_latency_ps"]


@pytest.mark.parametrize("backend,workers", [("inline", 4), ("local", 2)])
def test_run_digest_is_backend_and_grouping_independent(ref, tmp_path, cli, digest_of, backend, workers):
    out = tmp_path / "r"
    code, data, err = cli("run", *SMALL, "--backend", backend, "--workers", str(workers), "--out", str(out), "--json")
    assert code == 0, err
    assert digest_of(out) == digest_of(ref)
    assert data["step_latency_ps"] == read_manifest(ref)["figures"]["step_latency_ps"]


@pytest.mark.parametrize("args,field", [
    (["no-such-model"], "scenario"),
    (["gpt2-medium-lora32-s1024", "--set", "scenario.seq=0"], "seq"),
    (["gpt2-medium-lora32-s1024", "--set", "scenario.lora_rank=5000"], "lora_rank"),
    (["gpt2-medium-lora32-s1024", "--set", "reram.nonsense=3"], "nonsense"),
    (["gpt2-medium-lora32-s1024", "--transport", "stub", "--partition", "blocks:2x2"], "--partition"),
    (["gpt2-medium-lora32-s1024", "--partition", "rows"], "--partition"),
    (["gpt2-medium-lora32-s1024", "--workers", "0"], "--workers"),
    (["gpt2-medium-lora32-s1024", "--set", "noc.hbm_ports=0"], "noc.hbm_ports"),
    (["gpt2-medium-lora32-s1024", "--set", "scenario.quant=Q9"], "quant"),
])
def test_bad_run_input_is_one_line_exit_2_and_no_complete_run(cli, tmp_path, args, field):
    out = tmp_path / "bad"
    code, _d, err = cli("run", *args, "--quiet", "--out", str(out))
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and field in err
    assert not (out / "manifest.json").exists()


def test_bad_yaml_and_missing_files_leave_no_directory(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: gpt2-medium\nseq: [1, 2\n")
    for args, field in ((["run", str(bad)], "scenario"), (["run", "--arch", str(tmp_path / "none.yaml")], "--arch")):
        out = tmp_path / f"out-{field.strip('-')}"
        code, _d, err = cli(*args, "--quiet", "--out", str(out))
        assert code == 2 and field in err and len(err.strip().splitlines()) == 1
        assert not out.exists()


def test_progress_shows_fraction_of_the_estimate_then_done(capsys):
    from atleus_dist.run.driver import stderr_progress

    report = stderr_progress("run", end_ps=10**12, expected_end_ps=1000)
    report(3, 500, 40)
    report(9, 5000, 90)  # past the estimate (a lower bound): said so, not 500% and not 99%
    report(10, 10**12, 100)  # nothing left before the end: no end-of-time figure
    lines = capsys.readouterr().err.splitlines()
    assert "( 50.0%)" in lines[0] and "past the 0.001 us estimate" in lines[1] and "eta unknown" in lines[1]
    assert lines[2].startswith("[run] done") and "rounds 10" in lines[2] and "sim" not in lines[2]

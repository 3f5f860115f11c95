"""``atleus-dist report``: figures of a tier-only run checked against the mapping that produced it,
NoC figures against the ``noc`` command's own statistics, absent tables, plots and input errors."""

from __future__ import annotations

import dataclasses
import json

import pytest

from atleus_dist.results.report import build_report
from atleus_dist.results.summary import summary_figures, summary_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_tier_run(out, layers: int = 2, seq: int = 128):
    """A tier-only run (fixed-latency stub between tiers) with a manifest; returns (out, mapping, program)."""
    from atleus_dist.hw.tier import TierProgram, tier_run_spec
    from atleus_dist.kernel import contiguous_groups
    from atleus_dist.results import SinkFactory
    from atleus_dist.run import execute, prepare_out_dir
    from atleus_dist.run.baselines import scenario_config
    from atleus_dist.workload import Mapper, Scenario, compile_step, load_model

    sc = Scenario(dataclasses.replace(load_model("gpt2-medium"), layers=layers), seq=seq, lora_rank=8)
    mapping = Mapper().map(sc, compile_step(sc))
    prog = TierProgram.from_mapping(mapping)
    path = prepare_out_dir(out)
    spec = tier_run_spec(prog, contiguous_groups(prog.n_tiers, 2), SinkFactory(str(path)))
    config = {"scenario": scenario_config(sc), "chip": {"reram_tiers": mapping.arch.reram_tiers}}  # as the tree records it
    execute("tier", config, spec, "inline", path, progress=False)
    return path, mapping, prog


NOC_ARGS = ("--mesh", "3x3x2", "--rate", "0.05", "--warmup", "100", "--measure", "1000", "--drain", "1000",
            "--partition", "by-tier", "--workers", "1", "--backend", "inline", "--quiet", "--json")


@pytest.fixture(scope="module")
def tier_run(tmp_path_factory):
    return make_tier_run(tmp_path_factory.mktemp("tier") / "run")


def test_tier_run_figures_match_the_mapping(tier_run):
    out, mapping, prog = tier_run
    s = summary_figures(out)
    assert s["ops"] == len(mapping.graph)
    assert s["energy_pj"] == pytest.approx(sum(mapping.energy_pj), rel=1e-12)
    assert s["macs"] == sum(op.macs for op in mapping.graph)
    # every op ran for exactly its mapped latency, so the busy time is their sum
    assert s["ops_busy_ps"] == sum(prog.latency_ps)
    # the step is at least the critical path (with the stub between tiers) and at most all ops in series
    finish = []
    for i in range(len(prog.tier)):
        ready = max([finish[d] + (prog.stub.latency_ps if prog.tier[d] != prog.tier[i] else 0)
                     for d in prog.deps[i]] or [0])
        finish.append(ready + prog.latency_ps[i])
    assert max(finish) <= s["step_latency_ps"] <= sum(prog.latency_ps) + len(prog.tier) * prog.stub.latency_ps
    assert s["tokens"] == 128
    assert s["tokens_per_s"] == pytest.approx(128 / (s["step_latency_ps"] * 1e-12))
    assert s["energy_per_token_pj"] == pytest.approx(sum(mapping.energy_pj) / 128)
    assert s["edp_j_s"] == pytest.approx(sum(mapping.energy_pj) * 1e-12 * s["step_latency_ps"] * 1e-12)
    assert s["step_latency_ms"] == pytest.approx(s["step_latency_ps"] / 1e9)
    assert sorted(s["absent_tables"]) == ["links", "packets"]
    assert "packet_latency_mean_ps" not in s and "reram_write_ops" not in s
    assert s["rounds"] >= 1 and s["events"] >= len(prog.tier)


def test_breakdowns_match_the_mapping(tier_run):
    out, mapping, _ = tier_run
    rep = build_report(out)
    bd = rep["breakdown"]
    n_reram = mapping.arch.reram_tiers

    def tier_name(i):
        t = mapping.tier_of_op(i)
        return f"reram{t}" if t < n_reram else f"systolic{t - n_reram}"

    for by, key in (("kind", lambda op, i: op.kind), ("phase", lambda op, i: op.phase),
                    ("tier", lambda op, i: tier_name(i))):
        energy: dict[str, float] = {}
        count: dict[str, int] = {}
        for i, op in enumerate(mapping.graph):
            k = key(op, i)
            energy[k] = energy.get(k, 0.0) + mapping.energy_pj[i]
            count[k] = count.get(k, 0) + 1
        assert set(bd[by]) == set(energy), by
        for k in energy:
            assert bd[by][k]["energy_pj"] == pytest.approx(energy[k], rel=1e-12), (by, k)
            assert bd[by][k]["ops"] == count[k]
        assert sum(g["energy_share"] for g in bd[by].values()) == pytest.approx(1.0)
    assert set(bd["phase"]) == {"fwd", "bwd", "update"}
    # phases overlap on Atleus (layers are pipelined), but none outlasts the step
    assert all(0 < g["span_ps"] <= rep["summary"]["step_latency_ps"] for g in bd["phase"].values())


def test_report_cli_json_and_plots(tier_run, cli):
    out, _, _ = tier_run
    code, data, err = cli("report", str(out), "--json")
    assert code == 0, err
    assert data["summary"]["ops"] > 0 and data["status"] == "complete"
    assert sorted(data["plots"]["written"]) == ["critical_path.png", "energy_breakdown.png", "timeline.png"]
    for name in data["plots"]["written"]:
        assert (out / "plots" / name).read_bytes()[:8] == PNG_MAGIC
    assert set(data["plots"]["skipped"]) == {"noc_latency_hist.png", "link_utilisation.png"}


def test_report_text_names_absent_tables(tier_run, capsys):
    from atleus_dist.cli import main

    out, _, _ = tier_run
    assert main(["report", str(out), "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert "step latency" in text and "absent tables: packets, links" in text
    assert "NoC packets    absent" in text and "ReRAM writes   none" in text


def test_noc_run_figures_agree_with_noc_statistics(tmp_path, cli):
    out = tmp_path / "noc"
    code, noc, err = cli("noc", *NOC_ARGS, "--out", str(out))
    assert code == 0, err
    code, data, err = cli("report", str(out), "--json")
    assert code == 0, err
    s = data["summary"]
    assert "ops" in s["absent_tables"] and "step_latency_ps" not in s
    clock = 1000  # default router clock, ps
    assert s["packets"] == noc["packets_delivered"]
    assert s["packet_latency_mean_ps"] == pytest.approx(noc["packet_latency_mean"] * clock)
    assert s["packet_latency_max_ps"] == pytest.approx(noc["packet_latency_max"] * clock)
    assert noc["packet_latency_min"] * clock <= s["packet_latency_p50_ps"] <= s["packet_latency_p99_ps"] \
        <= s["packet_latency_max_ps"]
    for cls in ("planar", "tsv"):
        assert s[f"{cls}_link_utilisation_mean"] == pytest.approx(noc[f"{cls}_link_utilisation_mean"])
        assert s[f"{cls}_link_energy_pj"] == pytest.approx(noc[f"{cls}_energy_pj"])
        assert s[f"{cls}_link_utilisation_max"] >= s[f"{cls}_link_utilisation_mean"]
    # a 3x3x2 mesh: planar links 2 tiers x 2 directions x 2 axes x (3 rows x 2 links); TSVs 2 x 9
    assert s["planar_links"] == 48 and s["tsv_links"] == 18
    assert sorted(data["plots"]["written"]) == ["link_utilisation.png", "noc_latency_hist.png"]


def test_summary_table_holds_numeric_figures(tier_run):
    out, _, _ = tier_run
    fig = summary_figures(out)
    t = summary_table(fig)
    row = dict(zip(t.column("name").to_pylist(), t.column("value").to_pylist()))
    assert row["step_latency_ps"] == fig["step_latency_ps"] and row["energy_pj"] == fig["energy_pj"]
    assert "absent_tables" not in row and t.column("name").to_pylist() == sorted(row)


def test_refuses_missing_and_incomplete_runs(tmp_path, tier_run, cli):
    code, _, err = cli("report", str(tmp_path), "--json")
    assert code == 2 and "no manifest.json" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("report", str(tmp_path / "nope"))
    assert code == 2 and "not a directory" in err
    # a run that did not finish: same tables, manifest says running
    src, _, _ = tier_run
    run = tmp_path / "partial"
    run.mkdir()
    (run / "ops").mkdir()
    (run / "ops" / "lp000.arrows").write_bytes((src / "ops" / "lp000.arrows").read_bytes())
    manifest = json.loads((src / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps(dict(manifest, status="running")))
    code, _, err = cli("report", str(run), "--json")
    assert code == 2 and "'running'" in err and "--allow-incomplete" in err
    code, data, err = cli("report", str(run), "--json", "--allow-incomplete", "--no-plots")
    assert code == 0, err
    assert data["status"] == "running" and data["summary"]["ops"] > 0 and "plots" not in data
    assert not (run / "plots").exists()


def test_written_summary_table_reads_back_and_stays_out_of_the_digest(tmp_path):
    from atleus_dist.results import digest, finish_manifest, read_manifest, read_table
    from atleus_dist.results.summary import write_summary

    out, _, _ = make_tier_run(tmp_path / "run", layers=1, seq=64)
    before = digest(out)[0]
    fig = summary_figures(out)
    write_summary(out, fig)
    man = read_manifest(out)  # a table added to a complete run is foreign until the run is sealed again
    finish_manifest(out, man, "complete", man["figures"])
    t = read_table(out, "summary")
    row = dict(zip(t.column("name").to_pylist(), t.column("value").to_pylist()))
    assert row["step_latency_ps"] == fig["step_latency_ps"] and row["tokens"] == 64
    assert digest(out)[0] == before

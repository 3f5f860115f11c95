"""The one loader: today's README keys are paths of the tree, files can hold every field (the NoC
too), values are YAML-typed, and errors name what the user wrote (issue 11, item 1)."""

from __future__ import annotations

import pytest

from atleus_dist.config.load import load_run_config
from atleus_dist.kernel.errors import ConfigError


def test_readme_keys_are_paths_of_the_tree():
    cfg, _ = load_run_config(None, None, ["scenario.seq=64", "noc.hbm_ports=16", "reram_tiers=3",
                                          "reram.xbar_rows=64", "hbm.stacks=2", "noc.mesh=4x4",
                                          "noc.router.num_vcs=2", "noc.packet_rows=50", "stub.latency_ps=20000",
                                          "chip.systolic.rows=64"])
    assert cfg.scenario.seq == 64 and cfg.scenario.name == "default-gpt2-medium-lora32-s64"
    c = cfg.chip
    assert (c.reram_tiers, c.reram.xbar_rows, c.hbm.stacks, c.systolic.rows) == (3, 64, 2, 64)
    assert (c.noc.hbm_ports, c.noc.mesh, c.noc.router.num_vcs) == (16, "4x4", 2)
    assert cfg.results.packet_rows == 50 and cfg.stub.latency_ps == 20000


def test_defaults_are_the_default_scenario_and_partition_stays_the_transports():
    cfg, _ = load_run_config()
    assert (cfg.scenario.model, cfg.scenario.seq, cfg.transport) == ("gpt2-medium", 128, "noc")
    assert cfg.execution.partition is None and cfg.partition == "auto"  # the planner decides (issue 10)
    assert load_run_config(transport="stub")[0].partition == "by-tier"
    assert load_run_config(partition="auto")[0].partition == "auto"  # passed through to the partitioner


def test_arch_and_scenario_files_hold_any_path(tmp_path):
    arch = tmp_path / "a.yaml"
    arch.write_text("reram_tiers: 5\nnoc:\n  mesh: 8x8\n  router: {num_vcs: 2}\nnoc.hbm_ports: 4\n")
    sc = tmp_path / "s.yaml"
    sc.write_text("model: bert-large-uncased\nseq: 64\nmode: inference\nstub: {latency_ps: 5000}\n")
    cfg, _ = load_run_config(str(sc), str(arch), ["reram_tiers=6"])
    assert cfg.scenario.name == "s" and cfg.scenario.model == "bert-large-uncased" and cfg.stub.latency_ps == 5000
    assert (cfg.chip.reram_tiers, cfg.chip.noc.mesh, cfg.chip.noc.router.num_vcs, cfg.chip.noc.hbm_ports) == \
        (6, "8x8", 2, 4)  # --set wins over the file


@pytest.mark.parametrize("item, named, says", [
    ("reram_tiers=1000", "--set reram_tiers", "1..16"),
    ("reram.xbar_read_pj=1e30", "--set reram.xbar_read_pj", "out of range"),  # 1e30 is a number
    ("noc.bogus.x=1", "--set noc.bogus", "unknown field"),
    ("hbm=", "--set hbm", "mapping"),
    ("scenario.name=[1, 2]", "--set scenario.name", "not a string"),
    ("noc.mesh=1000x1000", "--set noc.mesh", "outside 1..64"),
    ("noc.mesh=2x2", "--set noc.mesh", "cores per tier"),
    ("execution.partition=bogus", "--set execution.partition", "allowed"),
])
def test_errors_name_the_path_as_typed(item, named, says):
    with pytest.raises(ConfigError) as e:
        load_run_config(None, None, [item])
    assert e.value.field == named and says in str(e.value), str(e.value)


def test_file_errors_name_the_file(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("reram_tiers: 1e12\n")  # YAML 1.1: a string, and not an integer either way
    with pytest.raises(ConfigError) as e:
        load_run_config(None, str(f))
    assert e.value.field == f"reram_tiers (in {f})"
    f.write_bytes(b"\xff\xfe: 1\n")
    with pytest.raises(ConfigError) as e:
        load_run_config(None, str(f))
    assert e.value.field == "arch" and "UTF-8" in str(e.value)


def test_a_scenario_name_follows_a_changed_model_and_seq():
    from atleus_dist.config.load import load_run_config

    cfg, _ = load_run_config(None, None, ["scenario.model=bert-large-uncased", "scenario.seq=64"])
    assert cfg.scenario.name == "default-bert-large-uncased-lora32-s64"
    cfg, _ = load_run_config("gpt2-medium-lora32-s1024", None, ["scenario.model=bloom-560m"])
    assert cfg.scenario.name == "bloom-560m-lora32-s1024"
    cfg, _ = load_run_config(None, None, ["scenario.model=bloom-560m", "scenario.name=mine"])
    assert cfg.scenario.name == "mine"  # a name the user gave is kept

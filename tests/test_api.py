"""atleus_dist.api: the public surface, simulate == the CLI for the same config, baseline's default
scenario, the resolved tree in the manifest, model_info/compare/open_run, and internal errors as
one line with the traceback in the run's log (issue 11, items 3 and 4)."""

from __future__ import annotations

import json

import pytest

import atleus_dist.api as A
from atleus_dist.kernel.errors import ConfigError

SMALL = {"scenario.seq": 8}


def test_public_surface_is_all():
    assert sorted(A.__all__) == ["ConfigError", "Run", "RunConfig", "baseline", "compare", "hbm_bench",
                                 "load_config", "model_info", "noc", "open_run", "resume", "simulate", "sweep"]
    for name in A.__all__:
        assert getattr(A, name) is not None


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "x"
    return A.simulate("gpt2-medium-lora32-s1024", sets=SMALL, transport="stub", backend="inline", out=str(out))


def test_simulate_equals_the_cli_and_says_what_it_ran(api_run, tmp_path, cli):
    code, data, err = cli("run", "gpt2-medium-lora32-s1024", "--set", "scenario.seq=8", "--transport", "stub",
                          "--quiet", "--json", "--out", str(tmp_path / "cli"))
    assert code == 0, err
    fig = api_run.figures
    assert fig["step_latency_ps"] == data["step_latency_ps"] > 0
    for f in (fig, data):
        assert (f["scenario"], f["model"], f["mode"], f["seq"]) == ("gpt2-medium-lora32-s8", "gpt2-medium",
                                                                     "finetune", 8)
    assert api_run.table("ops").count_rows() == api_run.manifest["config"]["ops"]
    assert "summary" in api_run.tables() and api_run.path.is_dir()


def test_manifest_records_the_resolved_tree(api_run):
    cfg = api_run.manifest["config"]
    assert cfg["scenario"]["seq"] == 8 and cfg["transport"] == "stub"
    assert cfg["chip"]["reram"]["xbar_rows"] == 128 and cfg["chip"]["noc"]["hbm_ports"] is None
    assert cfg["chip"]["hbm"]["placement"] == "edge"  # one port per channel, on the interposer tier's rim
    assert cfg["execution"]["backend"] == "inline" and cfg["results"]["packet_rows"] == 200_000
    again = A.load_config(None, sets={k: v for k, v in _flatten(cfg["chip"], "chip")})
    assert again.chip == A.load_config().chip  # the recorded tree loads back to the same chip


def _flatten(d, prefix):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}.{k}")
        else:
            yield f"{prefix}.{k}", v


def test_simulate_takes_a_run_config_with_overrides(tmp_path, api_run):
    cfg = A.load_config("gpt2-medium-lora32-s1024", sets=SMALL, transport="stub", backend="inline")
    r = A.simulate(cfg, out=tmp_path / "c")
    assert r.figures["step_latency_ps"] == api_run.figures["step_latency_ps"]
    r2 = A.simulate(cfg, sets={"stub.latency_ps": 40_000}, out=tmp_path / "d")
    assert r2.figures["stub_latency_ps"] == 40_000
    assert r2.figures["step_latency_ps"] > api_run.figures["step_latency_ps"]


def test_baseline_defaults_to_the_default_scenario_and_accepts_its_name(tmp_path):
    a = A.baseline("gpu", out=tmp_path / "a", seq=16)
    b = A.baseline("gpu", "default-gpt2-medium-lora32-s128", seq=16, out=tmp_path / "b")
    assert a.figures["scenario"] == b.figures["scenario"] == "default-gpt2-medium-lora32-s16"
    assert a.figures["step_latency_ps"] == b.figures["step_latency_ps"] > 0
    c = A.compare(a, b)
    assert c is not None
    assert A.open_run(a.path).figures["step_latency_ps"] == a.figures["step_latency_ps"]


def test_model_info_checks_its_inputs():
    info = A.model_info("llama-2-7b", seq=64)
    assert info["params"] == 6_738_415_616 and info["seq"] == 64
    with pytest.raises(ConfigError) as e:
        A.model_info("gpt2-medium", seq=0)
    assert e.value.field == "--seq"


def test_bad_input_leaves_nothing_behind(tmp_path):
    for kwargs in ({"partition": "bogus"}, {"sets": {"reram_tiers": 1000}}, {"workers": 0}):
        out = tmp_path / "never"
        with pytest.raises(ConfigError):
            A.simulate(None, out=out, transport="stub", **kwargs)
        assert not out.exists()
    with pytest.raises(ConfigError):
        A.simulate(None, out="", transport="stub")
    out = tmp_path / "noc-never"
    with pytest.raises(ConfigError):
        A.noc(None, sets={"partition": "blocks:9x9"}, out=out)
    assert not out.exists()


def test_internal_error_is_one_line_with_the_traceback_in_the_log(tmp_path, cli, monkeypatch):
    import atleus_dist.run.simulate as run_pkg  # where a run is executed

    def boom(*_a, **_k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(run_pkg, "execute", boom)
    out = tmp_path / "r"
    code, _, err = cli("run", "--transport", "stub", "--set", "scenario.seq=8", "--quiet", "--out", str(out))
    assert code == 1 and err.count("\n") == 1 and "internal error: ZeroDivisionError: a bug" in err
    log = out / "error.log"
    assert log.is_file() and "Traceback" in log.read_text() and "boom" in log.read_text()


def test_run_json_says_what_ran(tmp_path, cli):
    code, data, err = cli("run", "--transport", "stub", "--set", "scenario.seq=8", "--quiet", "--json",
                          "--backend", "inline", "--out", str(tmp_path / "j"))
    assert code == 0, err
    assert (data["scenario"], data["model"], data["seq"]) == ("default-gpt2-medium-lora32-s8", "gpt2-medium", 8)
    json.dumps(data)

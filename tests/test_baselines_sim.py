"""Simulated baselines: the 3D-TPU mapping (systolic tiers only, a weight read from HBM before
every static matmul) against counts taken from the graph, the 2D-planar stub latency against its
closed form, and both run end to end through ``baseline`` and are read by ``compare``."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from atleus_dist.hw.arch import AtleusArchConfig
from atleus_dist.hw.noc.config import NocConfig, RouterConfig, TsvLink
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.results import read_manifest, read_table
from atleus_dist.run.baselines import mean_tier_hops, stub_latency_ps
from atleus_dist.run.scenario_run import build, resolve_scenario
from atleus_dist.workload import Mapper, compile_step
from atleus_dist.workload.mapper import HBM_CORE


@pytest.fixture(scope="module")
def small():
    sc = resolve_scenario("gpt2-medium-lora32-s1024", {"seq": "64"})
    return sc, compile_step(sc)


def test_3d_tpu_puts_nothing_on_reram_and_reads_every_static_use(small):
    sc, g = small
    arch = AtleusArchConfig()
    tpu = Mapper(arch, static_on="systolic").map(sc, g)
    atl = Mapper(arch).map(sc, g)
    # no op on a ReRAM core, no crossbar programming, every tier systolic and used
    assert all(c == HBM_CORE or c >= arch.reram_cores for c in tpu.core)
    assert not any(op.kind == "program" for op in tpu.graph)
    assert {tpu.tier_of_op(i) for i in range(len(tpu.graph))} == set(range(arch.tiers))
    assert max(tpu.core) < arch.reram_cores + arch.tiers * arch.systolic_cores_per_tier
    assert tpu.energy_by_tier()["reram"] == 0
    # one weight read per static matmul of the compiled graph, of the weight's bytes at its bits
    static = [op for op in g if op.kind == "static_mm"]
    reads = [op for op in tpu.graph if op.kind == "hbm_read" and op.name.endswith(".weight_read")]
    assert len(reads) == len(static) > 0
    assert sum(op.kind == "hbm_read" for op in tpu.graph) == len(reads) + sum(op.kind == "hbm_read" for op in g)
    for op in tpu.graph:
        if op.kind == "static_mm":
            rd = [tpu.graph.ops[d] for d in op.deps if tpu.graph.ops[d].name.endswith(".weight_read")]
            assert len(rd) == 1 and rd[0].name == f"{op.name}.weight_read"
            assert rd[0].nbytes == op.n * op.k  # M8F8: the K x N weight at 8 bits
            assert tpu.core[op.id] != HBM_CORE and tpu.core[rd[0].id] == HBM_CORE
    # same work: total MACs equal Atleus' and the graph's
    assert sum(op.macs for op in tpu.graph) == sum(op.macs for op in atl.graph) == sum(op.macs for op in g)


def test_3d_tpu_weight_bits_follow_the_quantisation():
    sc = resolve_scenario("gpt2-medium-lora32-m8f4", {"seq": "32"})
    tpu = Mapper(static_on="systolic").map(sc, compile_step(sc))
    by_name = {op.name: op for op in tpu.graph}
    for op in tpu.graph:
        if op.kind == "static_mm" and op.weight != "head":
            bits = sc.quant.bits_for(op.weight.split(".", 1)[1])
            assert by_name[f"{op.name}.weight_read"].nbytes == math.ceil(op.n * op.k * bits / 8)


def test_static_on_is_checked():
    with pytest.raises(ConfigError) as e:
        Mapper(static_on="gpu")
    assert e.value.field == "static_on"


def test_planar_stub_latency_closed_form():
    # 4 tiers of 4x4. Stacked: in-tier mean |dx|+|dy| = 2 x 20/16, mean |dz| over distinct tier
    # pairs = (3x1 + 2x2 + 1x3) / 6. Planar quadrants of an 8x8 mesh: adjacent quadrants 4 + 20/16,
    # diagonal 4 + 4; 8 of the 12 ordered pairs adjacent.
    assert mean_tier_hops(4, 4, 4, "3d") == (Fraction(5, 2), Fraction(5, 3))
    planar = (8 * (4 + Fraction(20, 16)) + 4 * 8) / 12
    assert planar == Fraction(37, 6)
    assert mean_tier_hops(4, 4, 4, "planar") == (planar, 0)
    hop = (0 + 1 + 1 + 1 + 1) * 1000  # router pipeline (routing, VC, switch, crossbar) + link, 1 GHz
    assert stub_latency_ps("planar") == round(planar * hop) == 24_667
    assert stub_latency_ps("3d") == round(Fraction(25, 6) * hop) == 16_667
    # it follows the NoC config: a 2-cycle TSV only changes the stacked figure
    noc = NocConfig(router=RouterConfig(clock_period_ps=500), tsv=TsvLink(latency_cycles=2))
    assert stub_latency_ps("planar", noc) == round(planar * 4 * 500)
    assert stub_latency_ps("3d", noc) == round((Fraction(5, 2) * 4 + Fraction(5, 3) * 5) * 500)


def test_2d_planar_build_uses_the_planar_stub(small, tmp_path):
    sets = ["scenario.seq=64"]
    planar = build("gpt2-medium-lora32-s1024", None, sets, "stub", 1, "by-tier", None, kind="2d-planar")
    assert planar.config["stub"]["latency_ps"] == stub_latency_ps("planar", tiers=planar.arch.tiers) and planar.config["baseline"] == "2d-planar"
    mine = build("gpt2-medium-lora32-s1024", None, sets + ["stub.latency_ps=5000"], "stub", 1, "by-tier", None,
                 kind="2d-planar")
    assert mine.config["stub"]["latency_ps"] == 5000
    tpu = build("gpt2-medium-lora32-s1024", None, sets, "noc", 1, None, None, kind="3d-tpu")
    assert tpu.config["noc"]["layout"] == "3d" and tpu.config["partition"] == "single"
    flat = build("gpt2-medium-lora32-s1024", None, sets, "noc", 1, None, None, kind="2d-planar")
    assert flat.config["noc"]["layout"] == "planar" and flat.config["noc"]["topology"] == "mesh:12x8x1"
    with pytest.raises(ConfigError) as e:
        build("gpt2-medium-lora32-s1024", None, sets, "noc", 1, None, None, kind="1d-line")
    assert e.value.field in ("kind", "--kind")


def test_baselines_end_to_end_and_compare(tmp_path, cli):
    sc = "gpt2-medium-lora32-s1024"
    atl = tmp_path / "atleus"
    code, a, err = cli("run", sc, "--set", "scenario.seq=64", "--transport", "stub", "--backend", "inline", "--quiet", "--json",
                       "--out", str(atl))
    assert code == 0, err
    figs = {}
    for kind in ("3d-tpu", "2d-planar", "gpu"):
        out = tmp_path / kind
        code, figs[kind], err = cli("baseline", kind, sc, "--seq", "64", "--quiet", "--json", "--out", str(out))
        assert code == 0, err
        m = read_manifest(out)
        assert m["status"] == "complete" and m["baseline"] == kind
        code, cmp, err = cli("compare", str(atl), str(out), "--json")
        assert code == 0, err
        assert cmp["speedup"] == pytest.approx(figs[kind]["step_latency_ps"] / a["step_latency_ps"])
    # same MACs everywhere; the TPU reads the weights, the planar chip only waits longer
    for kind in ("3d-tpu", "2d-planar", "gpu"):
        assert figs[kind]["macs"] == a["macs"]
    assert figs["2d-planar"]["energy_pj"] == pytest.approx(a["energy_pj"])
    assert figs["2d-planar"]["step_latency_ps"] >= a["step_latency_ps"]
    tpu_ops = read_table(tmp_path / "3d-tpu", "ops").to_pydict()
    assert 5 not in tpu_ops["kind"]  # KIND_CODES['program']: nothing is programmed
    code, rep, err = cli("report", str(tmp_path / "3d-tpu"), "--json", "--no-plots")
    assert code == 0, err
    assert set(rep["breakdown"]["tier"]) == {f"systolic{t}" for t in range(AtleusArchConfig().tiers)}


def test_planar_baseline_on_the_flit_level_noc(cli, tmp_path):
    """`baseline 2d-planar --transport noc`: the same step over one plane of tiers; compare reads it."""
    sc, outs = "gpt2-medium-lora32-s1024", {}
    for name, cmd in (("3d", ["run", sc, "--set", "scenario.seq=8", "--backend", "inline"]),
                      ("planar", ["baseline", "2d-planar", sc, "--seq", "8", "--transport", "noc"])):
        outs[name] = tmp_path / name
        code, fig, err = cli(*cmd, "--quiet", "--json", "--out", str(outs[name]))
        assert code == 0, err
        outs[name + "_fig"] = fig
    m = read_manifest(outs["planar"])
    assert m["status"] == "complete" and m["baseline"] == "2d-planar"
    assert m["config"]["transport"] == "noc" and m["config"]["noc"]["layout"] == "planar"
    assert outs["planar_fig"]["macs"] == outs["3d_fig"]["macs"]
    code, cmp, err = cli("compare", str(outs["3d"]), str(outs["planar"]), "--json")
    assert code == 0, err
    assert cmp["speedup"] == pytest.approx(outs["planar_fig"]["step_latency_ps"] / outs["3d_fig"]["step_latency_ps"])

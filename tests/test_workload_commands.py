"""The gemm and model-info commands: one JSON object, published figures, one-line errors."""

import json
import math

import pytest

from atleus_dist.cli import main


def run_json(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return json.loads(out[0])


def test_gemm_systolic_matches_scalesim_form(capsys):
    r = run_json(capsys, ["gemm", "300", "100", "130", "--dataflow", "os", "--json"])
    assert r["cycles"] == 3456  # SCALE-Sim 3.0.0 compute cycles, 128x32 OS (see test_hw_systolic)
    assert {"cycles", "latency_ps", "energy_pj", "utilisation"} <= set(r)
    r = run_json(capsys, ["gemm", "64", "32", "48", "--rows", "16", "--cols", "8", "--json"])
    assert r["cycles"] == 1224


def test_gemm_reram(capsys):
    r = run_json(capsys, ["gemm", "10", "1024", "1024", "--core", "reram", "--weight-bits", "8", "--json"])
    assert r["crossbars"] == 8 * 32 and r["cycles"] == 10 * 16 + 3
    assert r["latency_ps"] == r["cycles"] * 100_000


def test_model_info_gpt2_medium_lora(capsys):
    r = run_json(capsys, ["model-info", "gpt2-medium", "--seq", "1024", "--mode", "finetune",
                          "--lora-rank", "32", "--json"])
    assert r["params"] == 354_823_168 and r["trainable_params"] == 3_145_728
    assert set(r["flops"]) == {"fwd", "bwd", "update", "total"}
    assert 0.5 < r["reram_op_share"] < 1
    # layers only: static MACs (fwd + transposed bwd) vs attention (fwd + bwd) + LoRA (fwd + bwd), seq 1024
    d, s, rk = 1024, 1024, 32
    static = 2 * s * 12 * d * d
    dynamic = 3 * 2 * s * s * d + 3 * 2 * s * rk * 2 * d
    assert r["reram_op_share_layers_only"] == pytest.approx(static / (static + dynamic), rel=1e-3)
    assert r["systolic_cores"] >= 1 and r["crossbars"]["needed"] > 0


@pytest.mark.parametrize("argv,field", [
    (["model-info", "gpt5"], "model"),
    (["model-info", "gpt2-medium", "--quant", "M8X4"], "quant"),
    (["model-info", "gpt2-medium", "--lora-rank", "4096"], "lora_rank"),
    (["model-info", "gpt2-medium", "--lora-targets", "wq"], "lora_targets"),
    (["model-info", "llama-2-7b", "--seq", "64", "--policy", "fit"], "policy"),
    (["gemm", "4", "4", "4", "--set", "rows=0"], "rows"),
    (["gemm", "4", "4", "4", "--core", "reram", "--dataflow", "os"], "--dataflow"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, field):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # the CLI may name the field by its flag (lora_rank -> --lora-rank)
    assert len(err) == 1 and (field in err[0] or "--" + field.replace("_", "-") in err[0])

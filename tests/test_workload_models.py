"""Parameter counts computed from the YAML shapes against the published totals (models.md)."""

import dataclasses

import pytest

from atleus_dist.kernel.errors import ConfigError
from atleus_dist.workload.model import available_models, load_model, model_from_dict
from atleus_dist.workload.scenario import Scenario, load_scenario, parse_quant, available_scenarios

# Published totals, copied from the model cards (reference/models.md), not from the YAML files.
EXACT = {
    "roberta-base": 124_645_632,  # RobertaModel with pooler
    "bert-large-uncased": 335_141_888,  # BertModel with pooler
    "gpt2-medium": 354_823_168,
    "bloom-560m": 559_214_592,
    "gpt2-xl": 1_557_611_200,
    "llama-2-7b": 6_738_415_616,
    "llama-3-8b": 8_030_261_248,
}
ROUNDED = {"opt-1.3b": (1.32e9, 3), "vit-b-16": (86.6e6, 3)}  # published to 3 significant digits


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_parameter_counts(name):
    assert load_model(name).param_count() == EXACT[name]


@pytest.mark.parametrize("name", sorted(ROUNDED))
def test_rounded_parameter_counts(name):
    published, digits = ROUNDED[name]
    assert float(f"{load_model(name).param_count():.{digits}g}") == published


def test_bert_without_pooler():
    m = dataclasses.replace(load_model("bert-large-uncased"), pooler=False)
    assert m.param_count() == 334_092_288


def test_every_model_in_models_md_has_a_definition():
    assert set(EXACT) | set(ROUNDED) <= set(available_models())
    for name in available_models():
        assert load_model(name).matches_published(), name


def test_gqa_shapes():
    m = load_model("llama-3-8b")
    assert (m.head_dim, m.kv_dim) == (128, 1024)
    assert m.linear_shapes()["k"] == (4096, 1024)


def test_bad_model_name_lists_available():
    with pytest.raises(ConfigError) as e:
        load_model("gpt5")
    assert e.value.field == "model" and "gpt2-medium" in str(e.value)


def _gpt2(**over):
    base = dataclasses.asdict(load_model("gpt2-medium"))
    base.update(over)
    return base


@pytest.mark.parametrize("over,field", [({"heads": 15}, "heads"), ({"kv_heads": 5}, "kv_heads"),
                                        ({"activation": "tanh"}, "activation"), ({"layers": 0}, "layers"),
                                        ({"bogus": 1}, "bogus")])
def test_bad_shapes_name_field(over, field):
    with pytest.raises(ConfigError) as e:
        model_from_dict(_gpt2(**over))
    assert e.value.field == field


@pytest.mark.parametrize("text,bits", [("M8F4", (8, 4)), ("M4F8", (4, 8)), ("M16F16", (16, 16))])
def test_quant_strings(text, bits):
    q = parse_quant(text)
    assert (q.attn_bits, q.ffn_bits) == bits and q.name == text
    assert (q.bits_for("q"), q.bits_for("down")) == bits


@pytest.mark.parametrize("text", ["M8", "F4M8", "M0F4", "M8F17", "int8", ""])
def test_bad_quant_names_field(text):
    with pytest.raises(ConfigError) as e:
        parse_quant(text)
    assert e.value.field == "quant"


def test_scenario_validation():
    m = load_model("gpt2-medium")
    with pytest.raises(ConfigError) as e:
        Scenario(m, lora_rank=2048)
    assert e.value.field == "lora_rank"
    with pytest.raises(ConfigError) as e:
        Scenario(m, lora_targets=("wq",))
    assert e.value.field == "lora_targets"
    with pytest.raises(ConfigError) as e:
        Scenario(m, seq=2048)
    assert e.value.field == "seq"
    with pytest.raises(ConfigError) as e:
        Scenario(m, mode="train")
    assert e.value.field == "mode"
    # LoRA r32 on W_Q, W_V of GPT-2 Medium: 24 layers x 2 targets x 32 x (1024 + 1024)
    assert Scenario(m).lora_params() == 3_145_728


def test_all_scenarios_load():
    names = available_scenarios()
    assert "gpt2-medium-lora32-s1024" in names
    for n in names:
        load_scenario(n)

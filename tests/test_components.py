"""``atleus-dist components``: every field from the declarations with unit, default, range and
source; docs/configuration.md is what it generates (regenerate: atleus-dist components
--markdown > docs/configuration.md)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from atleus_dist.config import docs
from atleus_dist.config.run_config import RunConfig
from atleus_dist.config.tree import leaves

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_components_json_lists_every_leaf_with_its_declaration(cli, capsys):
    code = __import__("atleus_dist.cli", fromlist=["main"]).main(["components", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    run = {r["path"]: r for r in rows if r["command"] == "run"}
    assert set(run) == {leaf.path for leaf in leaves(RunConfig)}
    r = run["chip.reram.xbar_read_ps"]
    assert (r["unit"], r["default"], r["min"], r["type"]) == ("ps", 100_000, 1, "int")
    assert "ISAAC" in r["source"]
    assert run["chip.hbm.read_bit_pj"]["unit"] == "pJ" and run["chip.noc.mesh"]["type"] == "str | None"
    assert run["scenario.mode"]["choices"] == ["inference", "finetune", "generate"]
    for r in rows:  # every numeric hardware field says where its default comes from
        if r["command"] in ("run", "noc") and r["type"] in ("int", "float"):
            assert r["source"], r["path"]


def test_every_declared_number_has_a_range():
    for leaf in leaves(RunConfig):
        if leaf.type in (int, float):
            m = leaf.field.metadata
            assert m.get("lo") is not None and m.get("hi") is not None, leaf.path
            assert m["lo"] <= leaf.default <= m["hi"], leaf.path


def test_configuration_doc_is_current():
    assert DOC.read_text() == docs.markdown(), "regenerate: atleus-dist components --markdown > docs/configuration.md"


def test_adding_a_field_is_one_line():
    from atleus_dist.hw.params import param, validate_fields

    @dataclasses.dataclass(frozen=True)
    class Demo:
        channels: int = param(8, 1, 64, "one line")

        def __post_init__(self):
            validate_fields(self)

    (leaf,) = leaves(Demo)
    assert leaf.path == "channels" and leaf.default == 8 and leaf.field.metadata["source"] == "one line"

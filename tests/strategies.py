"""Hypothesis strategies for bad input, all in one place: for every declared field of every
command's configuration a value its declaration refuses (wrong type, outside the range, not one of
the choices), unknown paths, malformed ``--set`` items and broken YAML files. Built from the
declarations themselves (:func:`atleus_dist.config.tree.leaves`), so a new field is covered the
moment it is declared.

Every value drawn here MUST be refused: a strategy that could draw an allowed value would turn a
correct refusal into a false alarm, so each one stays strictly outside what is allowed.
"""

from __future__ import annotations

import json
import math
import re

from hypothesis import strategies as st

from atleus_dist.config.run_config import PARTITION, RunConfig
from atleus_dist.config.tree import leaves
from atleus_dist.hw.noc.config import NocConfig
from atleus_dist.hw.params import unwrap_optional
from atleus_dist.models.phold import PholdConfig
from atleus_dist.workload.model import available_models

MODELS = set(available_models())
QUANT = re.compile(r"^M(\d{1,2})F(\d{1,2})$")
MESH2 = re.compile(r"^\d+x\d+$")
NOT_A_NUMBER = st.one_of(st.text(max_size=8).filter(lambda s: not _looks_numeric(s)), st.lists(st.integers(), max_size=3),
                         st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2))


def _looks_numeric(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _bad_int(lo, hi, optional: bool):
    outs = []
    if lo is not None:
        outs.append(st.integers(max_value=int(lo) - 1, min_value=int(lo) - 10**30))
    if hi is not None:
        outs.append(st.integers(min_value=int(hi) + 1, max_value=int(hi) + 10**30))
    outs += [st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: not float(f).is_integer()),
             st.sampled_from([1.0, 64.0, 1e12]),  # integral floats are still not integers
             st.booleans(), NOT_A_NUMBER]
    if not optional:
        outs.append(st.none())
    return st.one_of(*outs)


def _bad_float(lo, hi, optional: bool):
    outs = [st.sampled_from([math.nan, math.inf, -math.inf]), st.booleans(), NOT_A_NUMBER]
    if lo is not None:
        outs.append(st.floats(max_value=float(lo), exclude_max=True, allow_nan=False, allow_infinity=False,
                              min_value=-1e300).filter(lambda f: f < lo))
    if hi is not None:
        outs.append(st.floats(min_value=float(hi), exclude_min=True, allow_nan=False, allow_infinity=False,
                              max_value=1e300).filter(lambda f: f > hi))
    if not optional:
        outs.append(st.none())
    return st.one_of(*outs)


def _bad_str(path: str, choices, optional: bool):
    outs = [st.integers(), st.lists(st.text(max_size=3), max_size=2), st.booleans(), st.floats(allow_nan=False)]
    if not optional:
        outs.append(st.none())
    name = path.rsplit(".", 1)[-1]
    if choices:
        outs.append(st.text(max_size=12).filter(lambda s: s not in choices))
    elif name == "model":
        outs.append(st.text(min_size=1, max_size=12).filter(lambda s: s not in MODELS))
    elif name == "quant":
        outs.append(st.text(max_size=8).filter(lambda s: not QUANT.match(s)))
        outs.append(st.builds(lambda a, f: f"M{a}F{f}", st.integers(17, 99), st.integers(0, 99)))
    elif name == "mesh":
        outs.append(st.text(min_size=1, max_size=8).filter(lambda s: not MESH2.match(s.strip().lower())))
        outs.append(st.builds(lambda x, y: f"{x}x{y}", st.integers(65, 10**6), st.integers(1, 10**6)))
        outs.append(st.builds(lambda x, y: f"{x}x{y}", st.integers(0, 0), st.integers(0, 64)))
    elif name == "partition":
        outs.append(st.text(min_size=1, max_size=12).filter(lambda s: not PARTITION.fullmatch(s)))
    elif name == "topology":
        outs.append(st.builds(lambda x, y, z: f"mesh:{x}x{y}x{z}", st.integers(17, 64), st.integers(17, 64),
                              st.integers(16, 64)))  # > 4,096 routers
        outs.append(st.text(max_size=10).filter(lambda s: ":" not in s))
    else:  # free strings (names, addresses): only the type can be wrong
        pass
    return st.one_of(*outs)


def _bad_tuple(item, m, optional: bool):
    outs = [st.integers(), st.floats(allow_nan=False), st.booleans(),
            st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2)]
    if not optional:
        outs.append(st.none())
    lo_n = (m.get("length") or (0, 0))[0]
    if lo_n >= 1:
        outs.append(st.just([]))
    if item is int:
        outs.append(st.lists(st.text(max_size=3), min_size=1, max_size=3))
        if m.get("hi") is not None:
            outs.append(st.lists(st.integers(int(m["hi"]) + 1, int(m["hi"]) + 10**9), min_size=1, max_size=3))
        if m.get("lo") is not None:
            outs.append(st.lists(st.integers(int(m["lo"]) - 10**9, int(m["lo"]) - 1), min_size=1, max_size=3))
    else:
        outs.append(st.lists(st.integers(), min_size=1, max_size=3))
        outs.append(st.lists(st.from_regex(r"zz[a-z]{0,4}", fullmatch=True),
                             min_size=1, max_size=3))  # no model has such a weight
    return st.one_of(*outs)


def bad_value(leaf):
    """A value ``leaf``'s declaration refuses."""
    m = leaf.field.metadata
    base, optional = unwrap_optional(leaf.type)
    if base is bool:
        outs = [st.integers(), st.text(max_size=5), st.floats(allow_nan=False)]
        return st.one_of(*(outs + ([] if optional else [st.none()])))
    if base is int:
        return _bad_int(m.get("lo"), m.get("hi"), optional)
    if base is float:
        return _bad_float(m.get("lo"), m.get("hi"), optional)
    if base is str:
        return _bad_str(leaf.path, m.get("choices"), optional)
    return _bad_tuple(base.__args__[0], m, optional)


RUN_LEAVES = list(leaves(RunConfig))  # free-form names too: they still get values of the wrong type
NOC_LEAVES = list(leaves(NocConfig))
PHOLD_LEAVES = [leaf for leaf in leaves(PholdConfig) if leaf.path != "trace"]


def short_form(path: str) -> st.SearchStrategy[str]:
    """The path as written, or the README's short form of a chip path."""
    if path.startswith("chip."):
        return st.sampled_from([path, path[5:]])
    if path == "results.packet_rows":
        return st.sampled_from([path, "noc.packet_rows"])
    return st.just(path)


@st.composite
def bad_run_item(draw, pool=None):
    """(path as typed, bad value) for a RunConfig leaf, an unknown path, or a section given a scalar."""
    kind = draw(st.sampled_from(["leaf"] * 8 + ["unknown", "section"]))
    if kind == "unknown":
        name = draw(st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True))
        prefix = draw(st.sampled_from(["", "scenario.", "reram.", "noc.router.", "stub.", "execution.", "chip."]))
        path = prefix + "zz_" + name  # no field starts with zz_
        return path, draw(st.integers())
    if kind == "section":
        path = draw(st.sampled_from(["reram", "systolic", "hbm", "noc", "noc.router", "chip.noc.tsv", "stub",
                                     "execution", "results", "scenario"]))
        return path, draw(st.one_of(st.integers(), st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=2)))
    leaf = draw(st.sampled_from(pool or RUN_LEAVES))
    return draw(short_form(leaf.path)), draw(bad_value(leaf))


def yaml_text(value) -> str:
    """``value`` as the text of a ``--set`` item (YAML; JSON is YAML for these values)."""
    if value is None:
        return ""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)


malformed_set_item = st.one_of(
    st.text(max_size=10).filter(lambda s: "=" not in s),
    st.builds(lambda v: "=" + v, st.text(max_size=5)),
    st.builds(lambda a, b: f"{a}..{b}=1", st.from_regex(r"[a-z]{1,5}", fullmatch=True),
              st.from_regex(r"[a-z]{1,5}", fullmatch=True)),
)

# YAML documents a config file may not be: non-UTF-8 bytes, syntax errors, another shape
bad_yaml_bytes = st.one_of(
    st.binary(min_size=1, max_size=40).filter(lambda b: _not_utf8(b)),
    st.sampled_from([b"a: [1, 2\n", b"{unclosed", b"a: b: c\n", b"- 1\n- 2\n", b"just a string\n", b"42\n",
                     b"key: value\n  bad indent: 1\n", b"\t: tab\n", b"? [a]\n: 1\n"]),
)


def _not_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


@st.composite
def bad_arch_mapping(draw):
    """An arch file's mapping with one bad chip field (short form, as arch files write them)."""
    leaf = draw(st.sampled_from([x for x in RUN_LEAVES if x.path.startswith("chip.")]))
    parts = leaf.path[5:].split(".")
    value = draw(bad_value(leaf))
    data = value
    for p in reversed(parts):
        data = {p: data}
    return leaf.path[5:], data

"""Declaring and checking the fields of the frozen configuration dataclasses.

Every configurable number is one line where its component lives::

    xbar_rows: int = param(128, 1, 4096, "Atleus / ISAAC: 128x128 crossbars")

``param`` records the default, the allowed range (or choices) and the source as field metadata;
:func:`validate_fields` (called from each config's ``__post_init__``) checks the value's type and
range, so absurd sizes are refused before anything is allocated, and :func:`check_leaf` does the
same for a value a user typed, naming the path they typed. The unit is in the field's name
(``_ps``, ``_pj``, ``_bytes``, ``_bits``, ``_cycles``...; :func:`unit_of`). This module knows
nothing of any particular component, of files, processes or Ray.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from typing import Any

from atleus_dist.kernel.errors import ConfigError

# bytes per activation / gradient element, everywhere on the chip (16-bit: ISAAC streams 16-bit
# inputs through 1-bit DACs; the systolic tier computes in bf16). The one declaration: the
# compiler's HBM transfers, the NoC's packet sizes and the systolic core's operands all use it.
ACT_BYTES = 2


def param(default: Any, lo: float | None = None, hi: float | None = None, source: str = "", *,
          choices: tuple | None = None, length: tuple[int, int] | None = None) -> Any:
    """A dataclass field with its default, allowed range ``lo..hi`` (inclusive), ``choices`` (for
    strings and the items of tuples), ``length`` (of tuples) and where the default comes from."""
    meta = {"source": source, "lo": lo, "hi": hi, "choices": tuple(choices) if choices else None,
            "length": length}
    return dataclasses.field(default=default, metadata=meta)


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    """Field name -> resolved type (the modules use ``from __future__ import annotations``)."""
    return typing.get_type_hints(cls)


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """(``T``, True) for ``T | None``, else (``tp``, False)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _num(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def allowed_text(f: dataclasses.Field, tp: Any) -> str:
    """What a field accepts, in words: ``integer in 1..4,096``, ``one of ws, os, is``..."""
    m = f.metadata
    tp, opt = unwrap_optional(tp)
    extra = " or null" if opt else ""
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} fields"
    if m.get("choices") and tp is str:
        return "one of " + ", ".join(map(str, m["choices"])) + extra
    name = {int: "integer", float: "finite number", bool: "true or false", str: "string"}.get(tp)
    if typing.get_origin(tp) is tuple:
        item = typing.get_args(tp)[0]
        name = f"list of {'strings' if item is str else 'integers'}"
        if m.get("choices"):
            name += " from " + ", ".join(map(str, m["choices"]))
        if m.get("length"):
            name += f" ({m['length'][0]}..{m['length'][1]} items)"
    lo, hi = m.get("lo"), m.get("hi")
    if lo is not None and hi is not None:
        name += f" in {_num(lo)}..{_num(hi)}"
    elif lo is not None:
        name += f" >= {_num(lo)}"
    return (name or getattr(tp, "__name__", str(tp))) + extra


def check_leaf(f: dataclasses.Field, tp: Any, value: Any, path: str) -> Any:
    """``value`` as field ``f`` of type ``tp`` holds it (ints become floats for float fields);
    anything of another type or outside the declared range raises naming ``path``."""
    m = f.metadata
    base, opt = unwrap_optional(tp)
    if value is None and opt:
        return None

    def bad(why: str = "") -> ConfigError:
        return ConfigError(path, f"{why or 'bad value'} {value!r}", allowed=allowed_text(f, tp))

    if base is bool:
        if not isinstance(value, bool):
            raise bad("not true/false:")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise bad("not an integer:")
        value = int(value)
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise bad("not a number:")
        if not math.isfinite(value):
            raise bad("not finite:")
        value = float(value)
    elif base is str:
        if not isinstance(value, str):
            raise bad("not a string:")
        if m.get("choices") and value not in m["choices"]:
            raise bad("unknown value")
        return value
    elif typing.get_origin(base) is tuple:
        item = typing.get_args(base)[0]
        if isinstance(value, str) and item is str:
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise bad("not a list:")
        lo_n, hi_n = m.get("length") or (0, 1 << 16)
        if not lo_n <= len(value) <= hi_n:
            raise bad(f"{len(value)} items in")
        for v in value:
            ok = isinstance(v, str) if item is str else (isinstance(v, int) and not isinstance(v, bool))
            if not ok or (m.get("choices") and v not in m["choices"]):
                raise bad(f"bad item {v!r} in")
            if item is int and ((m.get("lo") is not None and v < m["lo"]) or (m.get("hi") is not None and v > m["hi"])):
                raise bad(f"item {v!r} out of range in")
        return tuple(value)
    else:
        return value
    lo, hi = m.get("lo"), m.get("hi")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise bad("out of range:")
    return value


def validate_fields(cfg: Any) -> None:
    """Check every leaf field of ``cfg`` (a frozen dataclass) against its declaration; ints given
    for float fields become floats. Call from ``__post_init__``."""
    th = hints(type(cfg))
    for f in dataclasses.fields(cfg):
        tp = th[f.name]
        if dataclasses.is_dataclass(unwrap_optional(tp)[0]):
            continue
        value = getattr(cfg, f.name)
        checked = check_leaf(f, tp, value, f.name)
        if checked is not value:
            object.__setattr__(cfg, f.name, checked)


UNITS = (("_per_s", "1/s"), ("_ps", "ps"), ("_pj", "pJ"), ("_pj_per_bit", "pJ/bit"), ("_bytes", "bytes"),
         ("_bits", "bits"), ("_cycles", "cycles"), ("_flits", "flits"), ("_mbps", "Mb/s per pin"),
         ("_msps", "MS/s"), ("_w", "W"), ("_tokens", "tokens"), ("_xbars", "crossbars"), ("_writes", "writes"),
         ("_elem", "ops per element"), ("_fraction", "fraction"))


def unit_of(name: str) -> str:
    """The unit a field's name carries (``access_latency_ps`` -> ps); '' for counts and names."""
    best = max((u for u in UNITS if name.endswith(u[0])), key=lambda u: len(u[0]), default=("", ""))
    return best[1]


# --- the checks older code calls directly ------------------------------------------------------
def check_int(field: str, value: Any, *, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (bools and floats with a fraction are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(field, f"must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(field, f"unknown value {value!r}", allowed=", ".join(allowed))
    return value

"""Validation and override helpers shared by the frozen hardware config dataclasses.

Every hardware config is a frozen dataclass whose numeric fields carry their unit in the name
(``_ps``, ``_pj``, ``_bytes``, ``_bits``, ``_msps``...). This module checks such fields and applies
``key=value`` overrides from the command line. It knows nothing of any particular component, of
files, processes or Ray.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, TypeVar

from atleus_dist.kernel.errors import ConfigError

T = TypeVar("T")


def check_int(field: str, value: Any, *, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (bools and floats with a fraction are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(field, f"must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(field, f"must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(field: str, value: Any, *, minimum: float = 0.0, strict: bool = False) -> float:
    """A finite real number >= ``minimum`` (> when ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(field, f"must be a finite number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        cmp = ">" if strict else ">="
        raise ConfigError(field, f"must be {cmp} {minimum}, got {value!r}")
    return float(value)


def check_choice(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(field, f"unknown value {value!r}", allowed=", ".join(allowed))
    return value


def validate_numeric_fields(cfg: Any) -> None:
    """Check every int field is >= 1 and every float field >= 0, naming the field on failure.

    Fields that may legitimately be zero are listed in the class attribute ``ZERO_OK``.
    """
    zero_ok = getattr(cfg, "ZERO_OK", ())
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.type in ("int", int):
            check_int(f.name, value, minimum=0 if f.name in zero_ok else 1)
        elif f.type in ("float", float):
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                value = float(value)
                object.__setattr__(cfg, f.name, value)
            check_float(f.name, value)


def _coerce(field: dataclasses.Field, text: Any) -> Any:
    if not isinstance(text, str):
        return text
    kind = field.type
    try:
        if kind in ("int", int):
            return int(text.replace("_", ""))
        if kind in ("float", float):
            return float(text)
        if kind in ("bool", bool):
            if text.lower() in ("1", "true", "yes"):
                return True
            if text.lower() in ("0", "false", "no"):
                return False
            raise ValueError(text)
    except ValueError:
        raise ConfigError(field.name, f"cannot parse {text!r} as {kind}") from None
    return text


def with_overrides(cfg: T, overrides: dict[str, Any]) -> T:
    """A copy of ``cfg`` with fields replaced; unknown keys raise naming the allowed fields."""
    names = {f.name: f for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in overrides.items():
        if key not in names:
            raise ConfigError(key, f"not a field of {type(cfg).__name__}", allowed=", ".join(names))
        changes[key] = _coerce(names[key], value)
    return dataclasses.replace(cfg, **changes)


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """``["rows=64", "mac_pj=0.5"]`` -> dict; malformed items raise naming ``--set``."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", f"expected key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out

"""The config layer's side of the tree: values given as text (``--set path=value`` items, strings
read as YAML values) applied to a tree of declared dataclasses.

The generic walks (build a tree from a mapping, list its leaves, turn it back into data) live
below ``hw`` with the declarations (:mod:`atleus_dist.hw.param_tree`) and are re-exported here for
the layers above, which know this module. Knows no particular component; nothing of processes or Ray.
"""

from __future__ import annotations

from typing import Any, TypeVar

from atleus_dist.config.sets import parse_value, split_set
from atleus_dist.hw.arch import AtleusArchConfig
from atleus_dist.hw.param_tree import Label, Leaf, build, dotted, leaves, put, rename, section_type, to_data

__all__ = ["Label", "Leaf", "arch_with_sets", "build", "dotted", "leaves", "parse_sets", "put", "rename",
           "replace_fields", "section_type", "to_data", "with_overrides"]

T = TypeVar("T")


def replace_fields(cfg: Any, overrides: dict[str, Any]) -> Any:
    """``cfg`` with fields replaced from ``{"field": value}`` or dotted ``{"part.field": value}``;
    string values are read as YAML (``64``, ``0.5``, ``true``)."""
    data: dict = {}
    for key, value in overrides.items():
        if isinstance(value, str):
            value = parse_value(value, key)
        put(data, tuple(key.split(".")), value)
    return build(type(cfg), data, base=cfg)


def with_overrides(cfg: T, overrides: dict[str, Any]) -> T:
    """A copy of ``cfg`` with fields replaced; strings are read as YAML values (``64``, ``0.5``,
    ``true``), and every value is checked like a typed one, naming the key."""
    return replace_fields(cfg, overrides)


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """``["rows=64", "mac_pj=0.5"]`` -> dict; malformed items raise naming ``--set``."""
    return dict(split_set(item) for item in items or [])


def arch_with_sets(sets: dict[str, object], base: AtleusArchConfig | None = None) -> AtleusArchConfig:
    """``base`` with ``--set``-style overrides: ``{"reram.xbar_rows": "64", "reram_tiers": 4}``
    (strings read as YAML values); unknown paths or bad values raise naming the path."""
    return replace_fields(base or AtleusArchConfig(), dict(sets))

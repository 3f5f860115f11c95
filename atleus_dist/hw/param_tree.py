"""Generic walks over a tree of frozen, declared dataclasses: build one from a nested mapping
(checking every key and value, naming the path the user typed), list its leaves, turn it back into
plain data. Beside :mod:`~atleus_dist.hw.params` (the declarations it walks), so the hardware
models can build their sections without importing the config layer. Values are taken as typed:
reading text (``--set`` strings as YAML) is the config layer's (:mod:`atleus_dist.config.tree`).
Knows no particular component; knows nothing of files, processes or Ray.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

from atleus_dist.hw.params import check_leaf, hints, unwrap_optional
from atleus_dist.kernel.errors import ConfigError

Label = Callable[[tuple[str, ...]], str]


def dotted(path: tuple[str, ...]) -> str:
    return ".".join(path)


def section_type(tp: Any):
    """The dataclass a field holds, or None for a leaf."""
    base = unwrap_optional(tp)[0]
    return base if dataclasses.is_dataclass(base) else None


def rename(exc: ConfigError, field: str) -> ConfigError:
    """``exc`` with its field renamed (the message and allowed values kept)."""
    new = ConfigError(field, str(exc)[len(exc.field) + 2:])
    new.allowed = exc.allowed
    return new


def build(cls: type, data: Any, path: tuple[str, ...] = (), label: Label = dotted, base: Any = None) -> Any:
    """An instance of ``cls`` from ``data`` (a mapping of its fields, nested for its sections),
    starting from ``base`` (an instance; default the class's defaults). Unknown keys, values of the
    wrong type or out of range, and failed cross-field checks raise naming the path."""
    if not isinstance(data, dict):
        raise ConfigError(label(path) or cls.__name__, f"must be a mapping of {cls.__name__} fields, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    th = hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        p = path + (str(key),)
        if key not in fields or not fields[key].init:
            raise ConfigError(label(p), f"unknown field of {cls.__name__}",
                              allowed=", ".join(n for n, f in fields.items() if f.init))
        sub = section_type(th[key])
        if sub is not None:
            if value is None and unwrap_optional(th[key])[1]:
                kwargs[key] = None
                continue
            inner = getattr(base, key) if base is not None else None
            kwargs[key] = build(sub, value, p, label, inner)
        else:
            kwargs[key] = check_leaf(fields[key], th[key], value, label(p))
    try:
        if base is not None:
            return dataclasses.replace(base, **kwargs)
        return cls(**kwargs)
    except ConfigError as exc:  # a config's own cross-field check: name the full path
        raise rename(exc, label(path + tuple(exc.field.split(".")))) from None


def put(data: dict, path: tuple[str, ...], value: Any) -> None:
    """Set ``data[a][b]... = value``; a mapping merges into what is there."""
    for key in path[:-1]:
        nxt = data.get(key)
        if not isinstance(nxt, dict):
            nxt = data[key] = {}
        data = nxt
    if isinstance(value, dict) and isinstance(data.get(path[-1]), dict):
        for k, v in value.items():
            put(data[path[-1]], (k,), v)
    else:
        data[path[-1]] = value


def to_data(cfg: Any) -> Any:
    """Plain data (dicts, lists, numbers, strings) for JSON and the manifest."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_data(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_data(v) for v in cfg]
    return cfg


@dataclasses.dataclass(frozen=True)
class Leaf:
    path: str
    field: dataclasses.Field
    type: Any
    default: Any


def leaves(cls: type, prefix: tuple[str, ...] = (), inst: Any = None) -> Iterator[Leaf]:
    """Every leaf field of the tree rooted at ``cls``, depth first, with its default."""
    inst = cls() if inst is None else inst
    th = hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        sub = section_type(th[f.name])
        if sub is not None:
            yield from leaves(sub, prefix + (f.name,), getattr(inst, f.name))
        else:
            yield Leaf(dotted(prefix + (f.name,)), f, th[f.name], getattr(inst, f.name))

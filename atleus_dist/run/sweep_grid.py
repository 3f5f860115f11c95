"""The points of a design-space sweep: ``--grid KEY=V1,V2,...`` axes (crossed), ``--zip
KEY=V1,V2,KEY2=W1,W2`` keys varied together (every ``--zip`` flag's keys form one axis, with as many
values each), and one :class:`Point` per combination with a stable id.

A point is the complete description of one ``run``: scenario, architecture file, transport, the
``--set`` items (the sweep's own followed by the point's swept values) and how many LP groups it
uses. Keys are the dotted paths of ``run --set``; two more, ``scenario`` and ``transport``, sweep
the positional scenario and ``--transport``. Point ids come from the sorted ``key=value`` pairs,
so the same point has the same directory whatever the order of the flags, and re-running a sweep
finds it.

Knows the command-line syntax of grids only; knows nothing of how points run or where.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re

from atleus_dist.kernel import ConfigError

# grid keys that are not `--set` paths but the run's positional scenario and --transport
RUN_KEYS = ("scenario", "transport")
_SAFE = re.compile(r"[^A-Za-z0-9._=,+-]")
MAX_ID_CHARS = 120


@dataclasses.dataclass(frozen=True)
class Point:
    """One run of the sweep. ``params`` are the swept (key, value-as-given) pairs in key order."""

    id: str
    params: tuple[tuple[str, str], ...]
    scenario: str | None
    arch: str | None
    transport: str
    sets: tuple[str, ...]
    workers: int = 1

    def values(self) -> dict[str, str]:
        return dict(self.params)


def split_values(text: str) -> list[str]:
    """``a,b,[c,d]`` -> ``['a', 'b', '[c,d]']``: commas inside brackets or braces (YAML lists and
    mappings as values) do not split."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return out


def _key_values(item: str, flag: str) -> tuple[str, list[str]]:
    key, eq, rest = item.partition("=")
    key = key.strip()
    if not eq or not key:
        raise ConfigError(flag, f"expected KEY=V1,V2,..., got {item!r}")
    values = split_values(rest)
    if any(v == "" for v in values):
        raise ConfigError(flag, f"empty value in {item!r}")
    return key, values


def parse_zip(item: str) -> list[tuple[str, list[str]]]:
    """``scenario.seq=32,64,reram_tiers=4,5`` -> ``[('scenario.seq', ['32', '64']), ('reram_tiers',
    ['4', '5'])]``: a token holding ``=`` starts the next key."""
    groups: list[tuple[str, list[str]]] = []
    for token in split_values(item):
        if "=" in token and not token.startswith(("[", "{")):
            key, _eq, value = token.partition("=")
            if not key.strip():
                raise ConfigError("zip", f"expected KEY=V1,V2,...,KEY2=W1,W2,..., got {item!r}")
            groups.append((key.strip(), [value.strip()]))
        elif not groups:
            raise ConfigError("zip", f"expected KEY=V1,V2,...,KEY2=W1,W2,..., got {item!r}")
        else:
            groups[-1][1].append(token)
    if any(v == "" for _k, vs in groups for v in vs):
        raise ConfigError("zip", f"empty value in {item!r}")
    _same_lengths(groups)
    return groups


def _same_lengths(groups: list[tuple[str, list[str]]]) -> None:
    """Keys varied together must have as many values each: never a longer list silently cut."""
    if len({len(vs) for _k, vs in groups}) > 1:
        raise ConfigError("--zip", "keys varied together need as many values each, got "
                          + ", ".join(f"{k}: {len(vs)}" for k, vs in groups))


def axes_of(grid: list[str], zips: list[str]) -> list[tuple[tuple[str, ...], list[tuple[str, ...]]]]:
    """The sweep's axes: each ``--grid`` one (in flag order), then every ``--zip`` key together as
    one (``--zip a=1,2 --zip b=3,4`` is the same axis as ``--zip a=1,2,b=3,4``): (keys, value tuples)."""
    axes = []
    for item in grid:
        key, values = _key_values(item, "grid")
        axes.append(((key,), [(v,) for v in values]))
    groups = [g for item in zips for g in parse_zip(item)]
    if groups:
        _same_lengths(groups)
        axes.append((tuple(k for k, _v in groups), list(zip(*(vs for _k, vs in groups)))))
    seen: set[str] = set()
    for keys, _values in axes:
        for k in keys:
            if k in seen:
                raise ConfigError("grid", f"key {k!r} is swept twice")
            seen.add(k)
    return axes


def point_id(params: dict[str, str]) -> str:
    """``k1=v1,k2=v2`` over the sorted keys; characters a file name should not hold become ``_``,
    and a short hash of the exact pairs is appended when that (or length) lost information."""
    text = ",".join(f"{k}={params[k]}" for k in sorted(params)) or "base"
    safe = _SAFE.sub("_", text)
    if safe == text and len(safe) <= MAX_ID_CHARS:
        return safe
    tag = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{safe[:MAX_ID_CHARS]}~{tag}"


def expand(scenario: str | None, arch: str | None, transport: str, sets: list[str], grid: list[str],
           zips: list[str], point_workers: int = 1) -> tuple[list[str], list[Point]]:
    """(swept keys in flag order, points in cross-product order: the first axis varies slowest)."""
    if point_workers <= 0:
        raise ConfigError("point_workers", f"must be a positive integer, got {point_workers}")
    axes = axes_of(grid, zips)
    keys = [k for ks, _v in axes for k in ks]
    base_keys = {item.partition("=")[0].strip() for item in sets}
    for k in keys:
        if k in base_keys:
            raise ConfigError("grid", f"key {k!r} is both swept and given with --set")
    points, ids = [], {}
    for combo in itertools.product(*(values for _ks, values in axes)):
        params = {k: v for (ks, _v), vs in zip(axes, combo) for k, v in zip(ks, vs)}
        pid = point_id(params)
        if pid in ids:
            raise ConfigError("grid", f"two points share the values {pid!r} (a value given twice?)")
        ids[pid] = True
        point_sets = tuple(sets) + tuple(f"{k}={v}" for k, v in params.items() if k not in RUN_KEYS)
        points.append(Point(pid, tuple((k, params[k]) for k in keys), params.get("scenario", scenario), arch,
                            params.get("transport", transport), point_sets, point_workers))
    return keys, points

"""The code tables of the result tables, decoded in one place.

Models write category columns as small integers (``kind``, ``phase``, ``link_class``, ``tier``)
and keep their names in the schema metadata (``atleus.kind_codes``: a dict literal or JSON
``{name: code}``; ``atleus.link_classes``: a comma-separated list, code = position). A code the
table lacks is named ``<prefix><code>`` everywhere (``kind7``), so the summary, the Parquet files,
the report and the trace agree on every name. Knows the metadata conventions and the manifest's
config layout; nothing of hardware models or backends.
"""

from __future__ import annotations

import ast

import numpy as np
import pyarrow as pa


def meta(table: pa.Table, key: str) -> str | None:
    md = table.schema.metadata or {}
    raw = md.get(f"atleus.{key}".encode())
    return raw.decode() if raw is not None else None


def code_names(table: pa.Table, key: str, prefix: str) -> dict[int, str]:
    """code -> name from schema metadata such as ``atleus.kind_codes`` (a dict literal) or a
    comma-separated list (``atleus.link_classes``); unknown codes become ``prefix<code>``."""
    raw = meta(table, key)
    if raw is None:
        return {}
    try:
        val = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        val = raw.split(",")
    if isinstance(val, dict):
        return {int(v): str(k) for k, v in val.items()}
    if isinstance(val, str):
        val = val.split(",")
    return {i: str(n) for i, n in enumerate(val)}


def full_table(codes, names: dict[int, str], prefix: str) -> dict[int, str]:
    """``names`` plus ``prefix<code>`` for every code in ``codes`` that it lacks."""
    table = dict(names)
    values = np.asarray(codes, dtype=np.int64) if len(codes) else np.zeros(0, np.int64)
    for c in np.unique(values):
        table.setdefault(int(c), f"{prefix}{int(c)}")
    return table


def decode(codes, names: dict[int, str], prefix: str) -> pa.DictionaryArray:
    """Integer ``codes`` (numpy or Arrow) as a dictionary(string) array whose dictionary lists the
    whole code table in code order (so it is the same in every run that shares the table), plus
    ``prefix<code>`` for a code the table lacks. ``.to_pylist()`` gives the names row by row."""
    if isinstance(codes, (pa.ChunkedArray, pa.Array)):
        codes = codes.to_numpy()
    values = np.asarray(codes).astype(np.int64) if len(codes) else np.zeros(0, np.int64)
    table = full_table(values, names, prefix)
    order = np.array(sorted(table), dtype=np.int64)
    index = np.searchsorted(order, values).astype(np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(index, pa.int32()), pa.array([table[int(c)] for c in order]))


def recorded(manifest: dict, *paths: tuple[str, ...]):
    """A field of the configuration the run recorded, by its path in the tree (the first of
    ``paths`` the manifest's command records: a run's :class:`RunConfig`, a ``noc`` run's
    NocConfig, a GPU baseline's scenario), else None. Paths, never a search for a key name."""
    for path in paths:
        node = manifest.get("config") or {}
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            return node
    return None


def tier_names(ops: pa.Table, manifest: dict) -> dict[int, str]:
    """Tier labels: ``atleus.tier_names`` metadata, else ReRAM tiers first then systolic ones if the
    config says how many (``reram_tiers``: 0 on the 3D-TPU baseline, else ``chip.reram_tiers``), else
    ``tier<i>``."""
    names = code_names(ops, "tier_names", "tier")
    if names:
        return names
    n_reram = recorded(manifest, ("reram_tiers",), ("chip", "reram_tiers"))
    tiers = np.unique(ops.column("tier").to_numpy())
    if isinstance(n_reram, int):
        return {int(t): (f"reram{t}" if t < n_reram else f"systolic{t - n_reram}") for t in tiers}
    return {int(t): f"tier{t}" for t in tiers}

"""The one loader of a run's configuration: defaults, then the scenario file, then the arch file,
then flags, then ``--set PATH=VALUE`` items (YAML-typed values), into one :class:`RunConfig`.

Paths are the tree's (``scenario.seq``, ``chip.reram.xbar_rows``, ``execution.workers``) or the
short forms the README uses: a chip field without ``chip.`` (``reram_tiers``, ``reram.xbar_rows``,
``hbm.stacks``, ``noc.mesh``, ``noc.router.num_vcs``) and ``noc.packet_rows`` for
``results.packet_rows``. Every error names the path as the user wrote it (``--set reram_tiers``,
``--workers``, ``seq (in my.yaml)``). Knows nothing of simulation, processes or Ray.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Iterable

from atleus_dist.config.run_config import RunConfig
from atleus_dist.config.sets import parse_value, read_yaml_mapping, split_set
from atleus_dist.hw.arch import AtleusArchConfig
from atleus_dist.hw.param_tree import build, put, rename
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.workload.scenario import Scenario, ScenarioConfig, scenario_file

ROOT = tuple(f.name for f in dataclasses.fields(RunConfig))
CHIP = tuple(f.name for f in dataclasses.fields(AtleusArchConfig))
SCENARIO = tuple(f.name for f in dataclasses.fields(ScenarioConfig))
ALIASES = {("noc", "packet_rows"): ("results", "packet_rows")}
# flag (keyword of load_run_config / api.simulate) -> path
FLAGS = {"transport": ("transport",), "kind": ("kind",), "backend": ("execution", "backend"),
         "workers": ("execution", "workers"), "partition": ("execution", "partition"),
         "address": ("execution", "address"), "placement": ("execution", "placement")}
PATHS_TEXT = ("scenario.FIELD, chip fields with or without chip. (" + ", ".join(CHIP) + "), "
              + ", ".join(r if r in ("kind", "transport") else f"{r}.FIELD" for r in ROOT
                          if r not in ("scenario", "chip")))


class Labels:
    """Canonical path -> what the user wrote (a prefix such as ``--set``, the path as typed, a
    suffix such as ``(in my.yaml)``), so errors name the latter."""

    def __init__(self) -> None:
        self.names: dict[tuple[str, ...], tuple[str, tuple[str, ...], str]] = {}

    def add(self, path: tuple[str, ...], prefix: str, typed: tuple[str, ...], suffix: str = "") -> None:
        self.names[path] = (prefix, typed, suffix)

    @staticmethod
    def _text(prefix: str, typed: tuple[str, ...], suffix: str) -> str:
        return " ".join(x for x in (prefix, ".".join(typed), suffix) if x)

    def __call__(self, path: tuple[str, ...]) -> str:
        for n in range(len(path), 0, -1):  # a set path or one of its ancestors
            if path[:n] in self.names:
                prefix, typed, suffix = self.names[path[:n]]
                return self._text(prefix, typed + path[n:], suffix)
        for key, (prefix, typed, suffix) in self.names.items():  # a descendant of a set path
            if key[:len(path)] == path and len(typed) > len(key) - len(path):
                return self._text(prefix, typed[:len(typed) - (len(key) - len(path))], suffix)
        return ".".join(path[1:] if path[:1] == ("chip",) and len(path) > 1 else path)

    def scenario_error(self, exc: ConfigError) -> ConfigError:
        """A :class:`Scenario` check (``seq``, ``lora_targets``...) named as the user wrote it."""
        field = exc.field.removeprefix("scenario.")
        return rename(exc, self(("scenario", field)))


def canonical(parts: tuple[str, ...], label: str) -> tuple[str, ...]:
    if parts[:2] in ALIASES:
        return ALIASES[parts[:2]] + parts[2:]
    if parts[0] in ROOT:
        return parts
    if parts[0] in CHIP:
        return ("chip",) + parts
    raise ConfigError(label, "unknown path", allowed=PATHS_TEXT)


def flatten(value: Any, parts: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from flatten(v, parts + (str(k),))
    else:
        yield parts, value


class Tree:
    """Nested data for :func:`build` plus the labels of what was set."""

    def __init__(self) -> None:
        self.data: dict = {}
        self.labels = Labels()

    def set(self, parts: tuple[str, ...], value: Any, prefix: str, typed: tuple[str, ...] | None = None,
            suffix: str = "") -> None:
        """``parts`` = ``value``; errors about it name ``prefix typed suffix`` (typed: ``parts``)."""
        typed = parts if typed is None else typed
        if parts:  # what was said about this path before no longer names it
            base = canonical(parts, Labels._text(prefix, typed, suffix))
            for key in [k for k in self.labels.names if k[:len(base)] == base]:
                del self.labels.names[key]
            self.labels.add(base, prefix, typed, suffix)
        for sub, v in flatten(value, parts):
            sub_typed = typed + sub[len(parts):]
            path = canonical(sub, Labels._text(prefix, sub_typed, suffix))
            self.labels.add(path, prefix, sub_typed, suffix)
            put(self.data, path, v)

    def file(self, path: str, field: str, scenario_first: bool) -> dict:
        data = read_yaml_mapping(path, field)
        for key, value in data.items():
            parts = ("scenario", key) if scenario_first and key in SCENARIO else tuple(key.split("."))
            if not all(parts):
                raise ConfigError(f"{key} (in {path})", "not a field path")
            self.set(parts, value, "", parts, f"(in {path})")
        return data


def is_scenario_path(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) or "/" in name


def load_run_config(scenario: str | None = None, arch: str | None = None, sets: Any = None,
                    **flags: Any) -> tuple[RunConfig, Labels]:
    """The resolved :class:`RunConfig` (every field checked) and the labels to name errors found
    later (against the model). ``scenario``: a name in ``workloads/scenarios``, a YAML file or None
    (the default scenario); ``arch``: a YAML file of chip fields (and any other path); ``sets``:
    ``["path=value", ...]`` (values read as YAML) or ``{"path": value}`` (typed values); ``flags``: the keys of
    :data:`FLAGS` (None: not given)."""
    tree = Tree()
    named_by_file = False
    if scenario is not None:
        if not isinstance(scenario, str) or not scenario.strip():
            raise ConfigError("scenario", f"expected a scenario name or YAML file, got {scenario!r}")
        path = scenario if is_scenario_path(scenario) else str(scenario_file(scenario))
        data = tree.file(path, "scenario", scenario_first=True)
        if "name" not in data:
            tree.set(("scenario", "name"), Path(scenario).stem, "scenario", ())
        named_by_file = True
    if arch is not None:
        tree.file(arch, "arch", scenario_first=False)
    for name, value in flags.items():
        if name not in FLAGS:
            raise TypeError(f"unknown flag {name!r}")
        if value is not None:
            tree.set(FLAGS[name], value, "--" + name, ())
    sc0 = tree.data.get("scenario")
    model0 = sc0.get("model") if isinstance(sc0, dict) and "model" in sc0 else ScenarioConfig().model
    for key, value in set_items(sets):
        tree.set(tuple(key.split(".")), value, "--set")
    sc = tree.data.get("scenario")
    if isinstance(sc, dict) and tree.labels.names.get(("scenario", "name"), ("",))[0] != "--set":
        model = sc.get("model", model0)
        if isinstance(model, str) and isinstance(model0, str) and model != model0:
            # keep a name like default-gpt2-medium-lora32-s128 true when the model changed
            name = sc.get("name", ScenarioConfig().name if not named_by_file else None)
            if isinstance(name, str) and model0 in name:
                sc["name"] = name.replace(model0, model)
    seq_by = tree.labels.names.get(("scenario", "seq"), ("",))[0]
    if isinstance(sc, dict) and isinstance(sc.get("seq"), int) and seq_by.startswith("--"):
        # keep a name like gpt2-medium-lora32-s1024 true when seq changed (unless named too)
        if tree.labels.names.get(("scenario", "name"), ("",))[0] != "--set":
            name = sc.get("name", ScenarioConfig().name if not named_by_file else None)
            if isinstance(name, str):
                sc["name"] = re.sub(r"-s\d+$", f"-s{sc['seq']}", name)
    return build(RunConfig, tree.data, (), tree.labels), tree.labels


def set_items(sets: Any) -> Iterable[tuple[str, Any]]:
    if sets is None:
        return
    if isinstance(sets, dict):
        for key, value in sets.items():
            if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
                raise ConfigError("sets", f"bad path {key!r}")
            yield key, value  # typed already (from Python): never read as YAML again
        return
    if isinstance(sets, str) or not isinstance(sets, (list, tuple)):
        raise ConfigError("--set", f"expected a list of PATH=VALUE items, got {sets!r}")
    for item in sets:
        key, text = split_set(item)
        yield key, parse_value(text, f"--set {key}")


def resolve_scenario(cfg: RunConfig, labels: Labels | None = None) -> Scenario:
    """The scenario of ``cfg`` with its model loaded and checked (errors named as the user wrote)."""
    try:
        return cfg.scenario.resolve()
    except ConfigError as exc:
        raise (labels or Labels()).scenario_error(exc) from None


def load_section(cls: type, sets: Any = None, flags: dict[str, tuple[str, Any]] | None = None) -> Any:
    """One config section (e.g. a core's) from ``flags`` ({flag: (field path, value or None)})
    and ``sets`` (``["field=value"]`` or a mapping), errors naming the flag or ``--set FIELD``."""
    labels = Labels()
    data: dict = {}
    for flag, (path, value) in (flags or {}).items():
        if value is not None:
            parts = tuple(path.split("."))
            labels.add(parts, "--" + flag.replace("_", "-"), ())
            put(data, parts, value)
    for key, value in set_items(sets):
        parts = tuple(key.split("."))
        labels.add(parts, "--set", parts)
        put(data, parts, value)
    return build(cls, data, (), labels)

"""The one ``KEY=VALUE`` splitter and the one YAML file reader of every command.

Knows no configuration field; knows nothing of processes or Ray.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from atleus_dist.kernel.errors import ConfigError

MAX_FILE_BYTES = 4 << 20  # a config file is a few KB; a bigger one is not a config file


def split_set(item: Any, flag: str = "--set") -> tuple[str, str]:
    """``"reram.xbar_rows=64"`` -> ``("reram.xbar_rows", "64")``; malformed items name ``flag``."""
    if not isinstance(item, str):
        raise ConfigError(flag, f"expected PATH=VALUE, got {item!r}")
    key, eq, value = item.partition("=")
    key = key.strip()
    if not eq or not key or any(not part.strip() for part in key.split(".")):
        raise ConfigError(flag, f"expected PATH=VALUE (e.g. reram.xbar_rows=64), got {item!r}")
    return key, value.strip()


def read_yaml_mapping(path: Any, field: str) -> dict:
    """A YAML file holding a mapping. A missing or unreadable file, non-UTF-8 text, bad YAML or
    another shape raise naming ``field`` and the file."""
    if not isinstance(path, (str, Path)) or not str(path):
        raise ConfigError(field, f"expected a file name, got {path!r}")
    p = Path(path)
    try:
        if not p.is_file():
            raise ConfigError(field, f"no such file {str(path)!r}")
        if p.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(field, f"{str(path)!r} is larger than {MAX_FILE_BYTES >> 20} MB")
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(field, f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(field, f"{str(path)!r} is not UTF-8 text (byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(field, f"{str(path)!r} is not valid YAML{where}: {first}") from None
    except RecursionError:
        raise ConfigError(field, f"{str(path)!r} nests too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigError(field, f"{str(path)!r} must hold a mapping of field names")
    return data


def parse_value(text: str, where: str) -> Any:
    """A ``--set`` value as YAML: ``64`` int, ``0.5`` float, ``true`` bool, ``[q, v]`` list,
    nothing -> null."""
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except (yaml.YAMLError, RecursionError):
        raise ConfigError(where, f"cannot read {text!r} as a YAML value") from None
    if isinstance(value, str) and _EXP.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 1e30 as a string; a user means the number
    return value


_EXP = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")

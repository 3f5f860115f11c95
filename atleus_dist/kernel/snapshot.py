"""The state of an LP as plain data, and back: what checkpoint and resume are built on.

:func:`object_state` walks an object's attributes and returns a tree of plain values (numbers,
strings, lists, dicts, tuples, sets, fractions), numpy arrays and nested object nodes;
:func:`restore_object` writes such a tree back into an object built afresh by the same factory
(the LP's constructor rebuilds everything the walk skips). Rules of the walk:

* frozen dataclasses are configuration (rebuilt from the run's configuration) and are skipped, as
  are functions and bound methods (handlers, callbacks the constructor wires) and the attributes a
  class names in ``snapshot_skip``;
* any other object with a ``__dict__`` is walked in turn, so a model that adds an array or a
  counter to its state is covered without touching checkpoint code;
* a value of any other type (an open file, a lock, a writer) is an error naming its path: state
  that cannot be saved is never silently dropped.

Arrays keep their identity: one array reachable from several attributes (a scalar block shared by
several structs) is saved once and restored as one array; an attribute whose fresh array has the
saved shape and dtype is overwritten in place, so references the constructor handed out stay valid.

:func:`encode` / :func:`decode` turn a tree into msgpack bytes plus a dict of arrays (for an
``.npz``), and back, with no pickle: only the types above can come out of a file. Knows nothing of
files, hardware or backends.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from fractions import Fraction
from typing import Any

import msgpack
import numpy as np


class SnapshotError(ValueError):
    """State that cannot be saved, or a saved state that does not fit the object it is restored into."""


_SKIP_TYPES = (types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.BuiltinMethodType,
               functools.partial, type, types.ModuleType)
# msgpack extension codes
_X_TUPLE, _X_SET, _X_ARRAY, _X_FRAC, _X_BIGINT, _X_NPSCALAR, _X_OBJ, _X_FROZENSET = range(1, 9)


@dataclasses.dataclass
class ArrayRef:
    index: int


@dataclasses.dataclass
class ObjNode:
    cls: str
    attrs: dict


def _qualname(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def _is_frozen_dataclass(obj: Any) -> bool:
    params = getattr(type(obj), "__dataclass_params__", None)
    return params is not None and params.frozen


def _plain_class(t: type) -> bool:
    """Defined in Python (a heap type) with only such bases: its instances' state is their
    ``__dict__``. A C type (a file, a lock, a writer) holds state the walk cannot see."""
    return all(c is object or c.__flags__ & (1 << 9) for c in t.__mro__)


def _skipped(value: Any) -> bool:
    return isinstance(value, _SKIP_TYPES) or _is_frozen_dataclass(value)


def skip_names(obj: Any) -> set[str]:
    """Every name in ``snapshot_skip`` along the object's class hierarchy."""
    names: set[str] = set()
    for cls in type(obj).__mro__:
        names.update(cls.__dict__.get("snapshot_skip", ()))
    return names


def object_state(obj: Any, arrays: list | None = None, _ids: dict | None = None, _path: str = "") -> ObjNode:
    """The state tree of ``obj``; arrays go to ``arrays`` (returned in the node as :class:`ArrayRef`).
    An array that is a view of another saved array is refused: restored, the two would part."""
    arrays = [] if arrays is None else arrays
    ids = {} if _ids is None else _ids
    skip = skip_names(obj)
    attrs = {}
    for name, value in vars(obj).items():
        if name in skip or _skipped(value):
            continue
        attrs[name] = _value(value, arrays, ids, f"{_path}.{name}" if _path else name, top=True)
    if _ids is None:
        _check_views(arrays, ids)
    return ObjNode(_qualname(obj), attrs)


def _check_views(arrays: list, ids: dict) -> None:
    for i, a in enumerate(arrays):
        base = a.base
        while isinstance(base, np.ndarray):
            if id(base) in ids:
                raise SnapshotError(f"array {i} of the state is a view of array {ids[id(base)][0]} "
                                    f"(restored, they would no longer share memory)")
            base = base.base


def _value(v: Any, arrays: list, ids: dict, path: str, top: bool = False) -> Any:
    if v is None or isinstance(v, (bool, int, float, str, bytes)):
        return v
    if isinstance(v, np.ndarray):
        if v.dtype.hasobject:
            raise SnapshotError(f"{path}: an object array cannot be saved")
        key = id(v)
        if key not in ids:
            ids[key] = (len(arrays), v)  # the array is kept alive so its id stays unique
            arrays.append(v)
        return ArrayRef(ids[key][0])
    if isinstance(v, np.generic):
        return v
    if isinstance(v, Fraction):
        return v
    if isinstance(v, (list, tuple, set, frozenset)):
        items = [_value(x, arrays, ids, f"{path}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, list):
            return items
        return tuple(items) if isinstance(v, tuple) else type(v)(items)
    if isinstance(v, dict):
        return {_value(k, arrays, ids, f"{path} key"): _value(x, arrays, ids, f"{path}[{k!r}]") for k, x in v.items()}
    if top and hasattr(v, "__dict__") and _plain_class(type(v)):
        return object_state(v, arrays, ids, path)
    raise SnapshotError(f"{path}: a {type(v).__name__} cannot be saved in a checkpoint "
                        f"(name it in snapshot_skip if the constructor rebuilds it)")


def restore_object(obj: Any, node: ObjNode, arrays: list, _done: dict | None = None, _path: str = "") -> None:
    """Write the state ``node`` (from :func:`object_state`) into ``obj``, a fresh object of the same class."""
    if not isinstance(node, ObjNode):
        raise SnapshotError(f"{_path or 'state'}: expected an object's state, got {type(node).__name__}")
    if node.cls != _qualname(obj):
        raise SnapshotError(f"{_path or 'state'}: saved from a {node.cls}, cannot restore into a {_qualname(obj)}")
    done = {} if _done is None else _done
    for name, saved in node.attrs.items():
        path = f"{_path}.{name}" if _path else name
        if isinstance(saved, ObjNode):
            restore_object(getattr(obj, name), saved, arrays, done, path)
        elif isinstance(saved, ArrayRef):
            setattr(obj, name, _array(saved, arrays, done, getattr(obj, name, None), path))
        else:
            setattr(obj, name, _rebuild(saved, arrays, done, path))


def _array(ref: ArrayRef, arrays: list, done: dict, fresh: Any, path: str) -> np.ndarray:
    if ref.index in done:
        return done[ref.index]
    if not 0 <= ref.index < len(arrays):
        raise SnapshotError(f"{path}: refers to array {ref.index}, the checkpoint holds {len(arrays)}")
    saved = arrays[ref.index]
    if isinstance(fresh, np.ndarray) and fresh.shape == saved.shape and fresh.dtype == saved.dtype \
            and fresh.flags.writeable:
        fresh[...] = saved  # in place: references the constructor handed out see the state
        out = fresh
    else:
        out = np.array(saved, copy=True, order="C")
    done[ref.index] = out
    return out


def _rebuild(v: Any, arrays: list, done: dict, path: str) -> Any:
    if isinstance(v, ArrayRef):
        return _array(v, arrays, done, None, path)
    if isinstance(v, ObjNode):
        raise SnapshotError(f"{path}: an object inside a container cannot be restored")
    if isinstance(v, list):
        return [_rebuild(x, arrays, done, path) for x in v]
    if isinstance(v, tuple):
        return tuple(_rebuild(x, arrays, done, path) for x in v)
    if isinstance(v, (set, frozenset)):
        return type(v)(_rebuild(x, arrays, done, path) for x in v)
    if isinstance(v, dict):
        return {_rebuild(k, arrays, done, path): _rebuild(x, arrays, done, path) for k, x in v.items()}
    return v


# --- msgpack codec (no pickle: only the types above can be decoded) ------------------------------

def _default(v: Any):
    if isinstance(v, tuple):
        return msgpack.ExtType(_X_TUPLE, _pack(list(v)))
    if isinstance(v, frozenset):
        return msgpack.ExtType(_X_FROZENSET, _pack(sorted(v, key=repr)))
    if isinstance(v, set):
        return msgpack.ExtType(_X_SET, _pack(sorted(v, key=repr)))
    if isinstance(v, ArrayRef):
        return msgpack.ExtType(_X_ARRAY, _pack(v.index))
    if isinstance(v, Fraction):
        return msgpack.ExtType(_X_FRAC, _pack([str(v.numerator), str(v.denominator)]))
    if isinstance(v, int):  # beyond 64 bits
        return msgpack.ExtType(_X_BIGINT, str(v).encode())
    if isinstance(v, np.generic):
        if v.dtype.hasobject:
            raise SnapshotError("an object scalar cannot be saved")
        return msgpack.ExtType(_X_NPSCALAR, _pack([v.dtype.str, v.tobytes()]))
    if isinstance(v, ObjNode):
        return msgpack.ExtType(_X_OBJ, _pack([v.cls, v.attrs]))
    raise SnapshotError(f"a {type(v).__name__} cannot be encoded")


def _pack(v: Any) -> bytes:
    return msgpack.packb(v, default=_default, use_bin_type=True, strict_types=True)


def _ext_hook(code: int, data: bytes):
    if code == _X_TUPLE:
        return tuple(_unpack(data))
    if code == _X_SET:
        return set(_unpack(data))
    if code == _X_FROZENSET:
        return frozenset(_unpack(data))
    if code == _X_ARRAY:
        return ArrayRef(int(_unpack(data)))
    if code == _X_FRAC:
        num, den = _unpack(data)
        return Fraction(int(num), int(den))
    if code == _X_BIGINT:
        return int(data.decode())
    if code == _X_NPSCALAR:
        dt, raw = _unpack(data)
        dtype = np.dtype(dt)
        if dtype.hasobject:
            raise SnapshotError("an object scalar in a checkpoint")
        return np.frombuffer(raw, dtype=dtype)[0]
    if code == _X_OBJ:
        cls, attrs = _unpack(data)
        return ObjNode(str(cls), dict(attrs))
    raise SnapshotError(f"unknown msgpack extension {code}")


def _unpack(data: bytes):
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False, use_list=True)


def encode(node: Any) -> bytes:
    """msgpack bytes of a state tree (its arrays are referenced by index, saved apart)."""
    return _pack(node)


def decode(data: bytes) -> Any:
    """The state tree from :func:`encode`'s bytes; raises :class:`SnapshotError` (or a msgpack/
    ValueError) on anything else."""
    try:
        return _unpack(data)
    except SnapshotError:
        raise
    except Exception as exc:  # msgpack raises several types for bytes that are not its own
        raise SnapshotError(f"not a checkpoint state ({type(exc).__name__}: {exc})") from None

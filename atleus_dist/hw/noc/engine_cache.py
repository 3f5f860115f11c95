"""Keeps numba's on-disk cache of the NoC engine honest.

numba invalidates a cached function only when its *own* source file changes; the engine's loop
is compiled together with the router kernels and the layout constants of other files, so a
change there would otherwise run stale machine code. Before the engine is imported, this hashes
every ``engine*.py`` (and the kernel's ``compiled_sync.py``, inlined by the compiled rounds) and,
if the hash differs from the one stored beside the cache, deletes the
engine's cache files so numba recompiles.

It also makes loading that cache cheap (:func:`fast_cache_loads`): numba refreshes its whole
target context (imports its lowering library and installs ~2,000 typing templates, ~0.2 s)
before it even looks in the cache, although a cached function is finished machine code that
needs none of it. Knows nothing of the NoC itself.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAMP = "engine-sources.sha256"


def sources_digest() -> str:
    h = hashlib.sha256()
    # the compiled rounds (engine_rounds) inline the kernel's barrier and atomics
    for path in sorted(HERE.glob("engine*.py")) + [HERE.parent.parent / "kernel" / "compiled_sync.py"]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def fast_cache_loads(modules: tuple[str, ...] = ("atleus_dist.",)) -> bool:
    """Load cached numba functions of ``modules`` without refreshing numba's target context
    first; True if the loader is in place.

    ``numba.core.caching.Cache.load_overload`` calls ``target_context.refresh()`` and then
    ``_load_overload``. Of the refresh, a cache hit needs one step: the NRT runtime's
    initialisation (``rtsys.initialize``, the first thing the CPU context's refresh does), which
    installs the runtime symbols the stored object code links against - without it a function
    that uses the runtime crashes when called (tested). The rest (the lowering and typing
    registries) is only needed to *compile*, and the compiler refreshes both contexts itself
    (``CompilerBase.__init__``), so a cache miss still compiles correctly. Some lowering modules
    install symbols when imported (string hashing, the ``prange`` scheduler); the package's
    compiled code uses none of them (integer arrays, atomics, no dicts, strings or ``parallel``),
    so only functions of ``modules`` take this path and any other numba user in the process
    keeps numba's own. On a warm run of ``noc`` this removes ~0.2 s of every process, which the
    compiled loop cannot win back. If numba's internals differ from what this expects, nothing
    is changed.
    """
    try:
        from numba.core import caching
        from numba.core.runtime import rtsys
    except ImportError:
        return False
    cache = getattr(caching, "Cache", None)
    needed = ("load_overload", "_load_overload", "_guard_against_spurious_io_errors")
    if cache is None or not all(hasattr(cache, n) for n in needed) or not hasattr(rtsys, "initialize"):
        return False
    numbas = getattr(cache.load_overload, "_atleus_numba_loader", cache.load_overload)

    def load_overload(self, sig, target_context):
        module = getattr(getattr(self, "_py_func", None), "__module__", None) or ""
        if not module.startswith(modules):
            return numbas(self, sig, target_context)
        rtsys.initialize(target_context)  # idempotent; what the CPU context's refresh does first
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)
        return None  # the guard swallowed a spurious I/O error (Windows): a miss, so numba compiles

    load_overload._atleus_numba_loader = numbas
    cache.load_overload = load_overload
    return True


def drop_if_stale(cache_dir: Path | None = None) -> bool:
    """Delete stale engine cache files; True if anything was dropped. Never raises on I/O."""
    cache = cache_dir or HERE / "__pycache__"
    digest = sources_digest()
    stamp = cache / STAMP
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    dropped = False
    for path in cache.glob("engine*.nb[ic]"):
        try:
            path.unlink()
            dropped = True
        except OSError:
            pass
    try:
        cache.mkdir(exist_ok=True)
        tmp = cache / f"{STAMP}.{os.getpid()}"
        tmp.write_text(digest)
        os.replace(tmp, stamp)
    except OSError:
        pass
    return dropped

"""Keeps numba's on-disk cache of the NoC engine honest.

numba invalidates a cached function only when its *own* source file changes; the engine's loop
is compiled together with the router kernels and the layout constants of other files, so a
change there would otherwise run stale machine code. Before the engine is imported, this hashes
every ``engine*.py`` (and the kernel's ``compiled_sync.py``, inlined by the compiled rounds) and,
if the hash differs from the one stored beside the cache, deletes the
engine's cache files so numba recompiles. Knows nothing of the NoC itself.
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

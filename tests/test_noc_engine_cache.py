"""numba only watches a function's own file; the engine cache guard watches all engine files."""

from atleus_dist.hw.noc import engine_cache


def test_stale_engine_cache_is_dropped_once(tmp_path):
    for name in ("engine.run-10.py311.nbi", "engine.run-10.py311.1.nbc", "engine_router._vc_alloc-5.py311.nbi"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "other.f-1.py311.nbi").write_bytes(b"keep")
    assert engine_cache.drop_if_stale(tmp_path) is True
    assert sorted(p.name for p in tmp_path.glob("*.nb[ic]")) == ["other.f-1.py311.nbi"]
    (tmp_path / "engine.run-10.py311.nbi").write_bytes(b"x")  # compiled again from current sources
    assert engine_cache.drop_if_stale(tmp_path) is False
    assert (tmp_path / "engine.run-10.py311.nbi").exists()
    (tmp_path / engine_cache.STAMP).write_text("sources changed")
    assert engine_cache.drop_if_stale(tmp_path) is True
    assert not (tmp_path / "engine.run-10.py311.nbi").exists()


_COUNT = '''
import numba.core.base
calls = []
_refresh = numba.core.base.BaseContext.refresh
numba.core.base.BaseContext.refresh = lambda self: calls.append(1) or _refresh(self)  # counted, then done
'''
_PROBE = _COUNT + '''
import sys
sys.path.insert(0, sys.argv[1])
from atleus_dist.hw.noc import engine_cache
assert engine_cache.fast_cache_loads((sys.argv[2],))
import numpy as np
import probe_mod
a = np.arange(10, dtype=np.int64)
print(probe_mod.total(a, 3), probe_mod.total.stats.cache_hits and 1 or 0, len(calls))
'''


def test_cache_loads_skip_numbas_refresh_and_a_miss_still_compiles(tmp_path):
    """A first process (cache miss) compiles through the patched loader and gets the right answer;
    a second loads the cached code - right answer, a cache hit - without numba's context refresh
    (counted); a function outside the given modules keeps numba's loader (refreshes)."""
    import os
    import subprocess
    import sys

    (tmp_path / "probe_mod.py").write_text(
        "from numba import njit\n\n@njit(cache=True)\ndef total(a, k):\n    s = 0\n    for x in a:\n        s += x * k\n"
        "    return s\n")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    module = "probe_mod"
    runs = [subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path), module], env=env, capture_output=True, text=True,
                           timeout=300) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    first, second = (r.stdout.split() for r in runs)
    assert first[:2] == ["135", "0"]  # 3 * (0 + ... + 9), compiled
    assert second == ["135", "1", "0"]  # loaded from the cache, no refresh
    module = "another_package."  # a function outside the given modules: numba's own loader (refreshes)
    third = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path), module], env=env, capture_output=True,
                           text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    out = third.stdout.split()
    assert out[:2] == ["135", "1"] and int(out[2]) > 0


_NOC = _COUNT + '''
import sys
from atleus_dist import api
for flags in ({"backend": "inline"}, {"backend": "local", "workers": 2}):
    part = "single" if flags["backend"] == "inline" else "blocks:2x1"
    sets = ["topology=mesh:4x4x2", "phases.warmup_cycles=20", "phases.measure_cycles=40",
            "phases.drain_cycles=40", "traffic.rate=0.2", "partition=" + part]
    run = api.noc(sets=sets, out=sys.argv[1] + "/" + flags["backend"], **flags)
    print(run.figures["packets_delivered"])
print(len(calls))
'''


def test_a_warm_noc_run_loads_the_engine_without_numbas_refresh(tmp_path):
    """The engine's entry points (one LP inline, compiled rounds on threads) take the fast loader:
    a second process (the first may compile) runs both and never refreshes numba's context."""
    import subprocess
    import sys

    outs = []
    for i in range(2):
        r = subprocess.run([sys.executable, "-c", _NOC, str(tmp_path / str(i))], capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout.split())
    assert outs[0][:2] == outs[1][:2] and int(outs[1][0]) > 0
    assert outs[1][2] == "0"

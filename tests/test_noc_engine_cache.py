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

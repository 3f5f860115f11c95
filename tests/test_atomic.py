"""The one atomic write (results/atomic.py): the file's data and its directory are fsynced, a
reader sees the old file or the new one, and a failed write leaves no temporary file behind."""

from __future__ import annotations

import json
import os

import pytest

from atleus_dist.results import atomic


@pytest.fixture
def fsynced(monkeypatch):
    """The paths os.fsync was called on, in order."""
    seen: list[str] = []
    real = os.fsync

    def fsync(fd):
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def test_the_file_then_its_directory_are_fsynced_and_the_name_replaced(tmp_path, fsynced):
    path = tmp_path / "manifest.json"
    path.write_text("old")
    atomic.write_json(path, {"status": "complete"}, indent=2)
    assert json.loads(path.read_text()) == {"status": "complete"} and path.read_text().endswith("\n")
    # the data under its temporary name (before the rename), then the directory holding the rename
    assert fsynced == [str(atomic.temp_path(path)), str(tmp_path)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, fsynced):
    path = tmp_path / "table.parquet"
    path.write_bytes(b"whole")
    with pytest.raises(RuntimeError):
        with atomic.replacing(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("the writer failed")
    assert path.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.parquet"]
    assert fsynced == []  # nothing half-written was made durable
    with pytest.raises(TypeError):  # not JSON: fails before anything is written
        atomic.write_json(tmp_path / "x.json", {"a": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.parquet"]


def test_every_whole_file_writer_uses_it():
    """The five writers of whole files go through ``atomic`` (none renames a file of its own)."""
    from pathlib import Path

    import atleus_dist

    root = Path(atleus_dist.__file__).parent
    for rel in ("results/manifest.py", "results/parquet.py", "results/writer.py", "run/sweep_table.py",
                "run/checkpoint.py"):
        text = (root / rel).read_text()
        assert "atomic." in text and "os.replace(" not in text, rel

"""Whether a run directory's files can be trusted: sealed at completion, checked before reading.

*Sealing* (:mod:`atleus_dist.results.seal`, when a run completes) uses the same checks with
every stream required whole; what this module holds is the

*Checking* (:func:`check_table`, used by every reader) compares each file with the manifest:

- a ``complete`` run: every file listed must exist with its recorded size and SHA-256, no
  unlisted stream may sit among them, and each must parse whole;
- any other run (running, failed, interrupted, or no manifest): a stream may end early - a torn
  tail, the crash-safe case - but must parse up to there, and a stream whose writer closed it
  must still match its close record.

A problem is never skipped: the reader raises a ``ConfigError`` naming the file and what is wrong
(the CLI prints it as one line, exit 2); :func:`verify_run` collects every problem for
``atleus-dist verify``. Knows the run-directory layout; nothing of hardware models or backends.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from atleus_dist.kernel.errors import ConfigError
import atleus_dist.results.stream as st
from atleus_dist.results.manifest import MANIFEST, read_manifest
from atleus_dist.results.writer import close_record_path

STREAM_GLOB = "lp*.arrows"


@dataclass
class FileCheck:
    """One file of a table: what it holds and, if it cannot be trusted, why."""

    rel: str  # path relative to the run directory, as the manifest names it
    scan: st.StreamScan | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class TableCheck:
    name: str
    files: list[FileCheck] = field(default_factory=list)
    schema: pa.Schema | None = None

    @property
    def problems(self) -> list[FileCheck]:
        return [f for f in self.files if not f.ok]

    @property
    def rows(self) -> int:
        return sum(f.scan.rows for f in self.files if f.scan is not None)

    def table(self) -> pa.Table:
        batches = [b for f in self.files if f.scan is not None for b in f.scan.batches]
        return pa.Table.from_batches(batches, schema=self.schema)


def load_manifest_or_none(run_dir: str | os.PathLike, field: str = "run_dir") -> dict | None:
    """The checked manifest, or None when the directory has none (tables written without a run)."""
    root = Path(run_dir)
    if not root.is_dir():
        raise ConfigError(field, f"{str(root)!r} is not a directory")
    if not (root / MANIFEST).exists():
        return None
    return read_manifest(root, field)


def _sealed_files(manifest: dict | None) -> dict | None:
    if manifest is None or manifest.get("status") != "complete":
        return None
    return manifest.get("files")  # None: completed before verification existed (parsed, not hashed)


def stream_table_names(run_dir: str | os.PathLike) -> list[str]:
    return sorted(p.name for p in Path(run_dir).iterdir() if p.is_dir() and any(p.glob(STREAM_GLOB)))


def table_names(run_dir: str | os.PathLike, manifest: dict | None = None) -> list[str]:
    """Tables on disk, plus (for a sealed run) every table the manifest lists, present or not."""
    names = set(stream_table_names(run_dir))
    if _sealed_files(manifest) is not None:
        names |= set((manifest.get("tables") or {}))
    return sorted(names)


def _close_record(path: Path) -> dict | None:
    rec = close_record_path(path)
    if not rec.is_file():
        return None
    try:
        data = json.loads(rec.read_text())
    except (OSError, ValueError):
        return {"unreadable": True}
    return data if isinstance(data, dict) else {"unreadable": True}


def _against(record, scan: st.StreamScan, what: str) -> str | None:
    if not isinstance(record, dict) or record.get("unreadable") or not isinstance(record.get("bytes"), int):
        return f"its entry in the {what} is malformed or unreadable"
    if record["bytes"] != scan.nbytes:
        return (f"is {scan.nbytes:,} bytes but {record['bytes']:,} were written "
                f"({'truncated' if scan.nbytes < record['bytes'] else 'extended'} since; per the {what})")
    if record.get("sha256") != scan.sha256:
        return f"SHA-256 differs from the {what} (the file changed or is corrupt since it was written)"
    if record.get("rows") is not None and record["rows"] != scan.rows:
        return f"holds {scan.rows:,} rows, the {what} says {record['rows']}"
    return None


def _problem(scan: st.StreamScan, record: dict | None, sealed: dict | None, complete: bool) -> str | None:
    if scan.end == st.CORRUPT:
        return scan.problem
    if sealed is not None:
        if record is None:
            return "is not one of the run's files (absent from the manifest): a foreign or stray file"
        return _against(record, scan, "manifest") or (None if scan.end == st.CLOSED else scan.problem or "was not closed")
    if complete and scan.end != st.CLOSED:  # complete before checksums were kept: it must be whole
        return scan.problem or f"was not closed ({scan.end}) although the run is complete"
    closed = _close_record(Path(scan.path))
    if closed is not None:
        return _against(closed, scan, "close record its writer left")
    return None


def check_table(run_dir: str | os.PathLike, table: str, manifest: dict | None) -> TableCheck:
    """Every stream of ``table`` checked (see the module docstring); never raises for bad files."""
    root = Path(run_dir)
    sealed = _sealed_files(manifest)
    complete = manifest is not None and manifest.get("status") == "complete"
    check = TableCheck(table)
    on_disk = sorted((root / table).glob(STREAM_GLOB)) if (root / table).is_dir() else []
    seen = set()
    for path in on_disk:
        rel = f"{table}/{path.name}"
        seen.add(rel)
        scan = st.scan_file(path)
        fc = FileCheck(rel, scan, _problem(scan, (sealed or {}).get(rel), sealed, complete))
        if fc.ok and scan.schema is not None:
            fc.problem = _schema_problem(check, table, scan.schema, rel)
        check.files.append(fc)
    for rel in sorted(r for r in (sealed or {}) if r.startswith(f"{table}/") and r not in seen):
        check.files.append(FileCheck(rel, None, "is listed in the manifest but missing"))
    return check


def _schema_problem(check: TableCheck, table: str, schema: pa.Schema, rel: str) -> str | None:
    named = (schema.metadata or {}).get(b"atleus.table")
    if named is not None and named.decode() != table:
        return f"holds table {named.decode()!r}, not {table!r} (a foreign file)"
    if check.schema is None:
        check.schema = schema
        return None
    if not schema.remove_metadata().equals(check.schema.remove_metadata()):
        first = next(f.rel for f in check.files if f.scan is not None and f.scan.schema is not None)
        theirs = ", ".join(f"{f.name}: {f.type}" for f in schema)
        return f"schema ({theirs}) differs from {first}'s (a foreign file)"
    return None


def raise_first(run_dir: str | os.PathLike, check: TableCheck, field: str = "run_dir") -> None:
    bad = check.problems
    if bad:
        raise ConfigError(field, f"{Path(run_dir) / bad[0].rel}: {bad[0].problem}"
                          + (f" (and {len(bad) - 1} more bad file(s); atleus-dist verify lists them)"
                             if len(bad) > 1 else ""))


def check_run(run_dir: str | os.PathLike, field: str = "run_dir") -> dict:
    """The manifest of ``run_dir`` after checking every table's files; ``ConfigError`` (naming
    ``field`` and the first bad file) otherwise. For callers that read a run through code that
    does not know which argument it came from."""
    manifest = read_manifest(run_dir, field)
    for name in table_names(run_dir, manifest):
        raise_first(run_dir, check_table(run_dir, name, manifest), field)
    return manifest


def check_parquet(run_dir: str | os.PathLike, table: str, manifest: dict | None) -> tuple[Path | None, str | None]:
    """(path, problem) of ``RUN/<table>.parquet`` against the manifest; (None, None) if not recorded."""
    sealed = _sealed_files(manifest)
    rel = f"{table}.parquet"
    if sealed is None or rel not in sealed:
        return None, None
    path = Path(run_dir) / rel
    if not path.is_file():
        return path, "is listed in the manifest but missing" if not path.exists() else "is not a regular file"
    nbytes, sha = st.file_sha256(path)
    rec = sealed[rel] if isinstance(sealed[rel], dict) else {}
    if nbytes != rec.get("bytes") or sha != rec.get("sha256"):
        return path, f"is {nbytes:,} bytes with a SHA-256 that differs from the manifest's (changed or corrupt)"
    return path, None


# --- the verify command ----------------------------------------------------------------------
def verify_run(run_dir: str | os.PathLike, field: str = "run_dir") -> dict:
    """Everything :mod:`~atleus_dist.commands.verify` prints: status, per table rows and files,
    and every file that is bad with why. A malformed manifest raises ``ConfigError``."""
    root = Path(run_dir)
    manifest = read_manifest(root, field)
    sealed = _sealed_files(manifest)
    out = {"run_dir": str(root), "status": manifest["status"], "checksums": sealed is not None,
           "tables": {}, "files": []}
    for name in table_names(root, manifest):
        check = check_table(root, name, manifest)
        entries = [{"file": f.rel, "ok": f.ok, "rows": f.scan.rows if f.scan else 0,
                    "end": f.scan.end if f.scan else "missing", "problem": f.problem}
                   for f in check.files]
        pq_path, pq_problem = check_parquet(root, name, manifest)
        if pq_path is not None:
            rec = sealed[pq_path.name] if isinstance(sealed[pq_path.name], dict) else {}
            entries.append({"file": pq_path.name, "ok": pq_problem is None, "end": "parquet",
                            "rows": rec.get("rows", 0), "problem": pq_problem})
        out["files"] += entries
        kind = ((manifest.get("tables") or {}).get(name) or {}).get("kind")
        if kind is None and check.schema is not None:
            kind = (check.schema.metadata or {}).get(b"atleus.table_kind", b"result").decode()
        ends: dict[str, int] = {}
        for e in entries:
            if e["end"] != "parquet":
                ends[e["end"]] = ends.get(e["end"], 0) + 1
        out["tables"][name] = {"kind": kind, "rows": check.rows, "ends": ends,
                               "files": sum(1 for e in entries if e["end"] != "parquet"),
                               "bad": sum(1 for e in entries if not e["ok"])}
    for rel in sorted(set(sealed or {}) - {e["file"] for e in out["files"]}):
        out["files"].append({"file": rel, "ok": False, "rows": 0, "end": "missing",
                             "problem": "is listed in the manifest but missing"})
    out["ok"] = sum(1 for e in out["files"] if e["ok"])
    out["bad"] = sum(1 for e in out["files"] if not e["ok"])
    return out

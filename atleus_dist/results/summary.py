"""Figures of one finished run directory, computed from its Arrow tables (never from the models).

``summary_figures(run_dir)`` is the flat dict of scalars with units in their names that the run
layer writes as the ``summary`` table and ``report``/``compare`` print; ``breakdown`` groups the
``ops`` table by tier, op kind or phase. Everything is vectorised (pyarrow group-by, numpy);
a table a run lacks (no ``packets`` in a tier-only run, no ``ops`` in a NoC-only run) is reported
as absent, not as an error.

Knows the table schemas and the manifest layout only; knows nothing of hardware models, LPs,
backends or how a run was executed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from atleus_dist.kernel.errors import ConfigError
from atleus_dist.results.codes import code_names, decode, recorded, tier_names
from atleus_dist.results.codes import meta as _meta
from atleus_dist.results.decode_figures import decode_figures
from atleus_dist.results.manifest import MANIFEST, read_manifest
from atleus_dist.results.reader import read_table, table_names
from atleus_dist.results.system_figures import system_figures
from atleus_dist.results.writer import SCHEMA_VERSION, lp_file

PS_PER_S = 1e12
PJ_PER_J = 1e12


# --- loading ---------------------------------------------------------------------------------
class _Compute:
    """``pyarrow.compute``, imported on first use: its import builds ~290 wrapped functions with
    their docstrings (~0.05 s), which a process that never summarises an ``ops`` table (every
    ``noc`` run: its tables only pass through ``parquet.user_table``) need not pay."""

    def __getattr__(self, name: str):
        import pyarrow.compute

        return getattr(pyarrow.compute, name)


pc = _Compute()


def load_manifest(run_dir: str | os.PathLike, allow_incomplete: bool = False, field: str = "run_dir") -> dict:
    """The manifest of ``run_dir``; refuses a directory without one, or (unless ``allow_incomplete``)
    a run whose status is not ``complete`` - its tables may be partial."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError(field, f"{str(path)!r} is not a directory")
    if not (path / MANIFEST).is_file():
        raise ConfigError(field, f"{str(path)!r} holds no {MANIFEST}; not a run directory")
    try:
        manifest = read_manifest(path)
    except ConfigError:  # read_manifest names the file and what is wrong with it
        raise
    except ValueError as exc:
        raise ConfigError(field, f"{str(path / MANIFEST)!r} is not valid JSON: {exc}") from None
    status = manifest.get("status")
    if status != "complete" and not allow_incomplete:
        raise ConfigError(field, f"run {str(path)!r} has status {status!r}, not 'complete'; its tables may be "
                          "partial (pass --allow-incomplete to read them anyway)")
    return manifest


def tables_of(run_dir: str | os.PathLike) -> dict[str, pa.Table]:
    """Every readable table of the run, by name."""
    out = {}
    for name in table_names(run_dir):
        try:
            out[name] = read_table(run_dir, name)
        except FileNotFoundError:
            continue
    return out


def tokens_of(manifest: dict) -> int | None:
    """Tokens of the step: ``scenario.seq`` x ``scenario.batch`` (mode generate: the prompt and the
    ``new_tokens`` decoded positions of every sequence)."""
    seq, batch = recorded(manifest, ("scenario", "seq")), recorded(manifest, ("scenario", "batch"))
    seq = seq + (recorded(manifest, ("scenario", "new_tokens")) or 0) if isinstance(seq, int) else seq
    return seq * batch if isinstance(seq, int) and isinstance(batch, int) else None


def clock_ps_of(manifest: dict) -> int | None:
    """The NoC clock to turn cycle columns into ps: ``chip.noc.router.clock_period_ps`` of a run,
    ``router.clock_period_ps`` of a ``noc`` run."""
    v = recorded(manifest, ("chip", "noc", "router", "clock_period_ps"), ("router", "clock_period_ps"))
    return v if isinstance(v, int) else None


# --- ops ---------------------------------------------------------------------------------------
def with_duration(ops: pa.Table) -> pa.Table:
    return ops.append_column("busy_ps", pc.subtract(ops.column("end_ps"), ops.column("start_ps")))


def breakdown(ops: pa.Table, by: str, names: dict[int, str], prefix: str) -> dict[str, dict]:
    """Per value of ``by``: ops, busy time (sum of op durations), span (first start to last end),
    energy and its share, MACs and bytes."""
    t = with_duration(ops)
    g = t.group_by(by).aggregate([("op", "count"), ("busy_ps", "sum"), ("start_ps", "min"), ("end_ps", "max"),
                                  ("energy_pj", "sum"), ("macs", "sum"), ("bytes", "sum")]).sort_by(by)
    total_e = float(pc.sum(ops.column("energy_pj")).as_py() or 0.0)
    keys = decode(g.column(by).to_numpy(), names, prefix).to_pylist()
    cols = {c: g.column(c).to_numpy() for c in g.column_names}
    energy = cols["energy_pj_sum"].astype(np.float64)
    share = energy / total_e if total_e > 0 else np.zeros_like(energy)
    return {k: {"ops": int(cols["op_count"][i]), "busy_ps": int(cols["busy_ps_sum"][i]),
                "span_ps": int(cols["end_ps_max"][i] - cols["start_ps_min"][i]),
                "energy_pj": float(energy[i]), "energy_share": float(share[i]),
                "macs": int(cols["macs_sum"][i]), "bytes": int(cols["bytes_sum"][i])}
            for i, k in enumerate(keys)}


def breakdowns(ops: pa.Table, manifest: dict) -> dict[str, dict]:
    return {"tier": breakdown(ops, "tier", tier_names(ops, manifest), "tier"),
            "kind": breakdown(ops, "kind", code_names(ops, "kind_codes", "kind"), "kind"),
            "phase": breakdown(ops, "phase", code_names(ops, "phase_codes", "phase"), "phase")}


def ops_figures(ops: pa.Table) -> dict:
    if ops.num_rows == 0:
        return {"ops": 0}
    start = int(pc.min(ops.column("start_ps")).as_py())
    end = int(pc.max(ops.column("end_ps")).as_py())
    busy = pc.sum(pc.subtract(ops.column("end_ps"), ops.column("start_ps"))).as_py()
    return {"ops": ops.num_rows, "step_latency_ps": end - start, "ops_busy_ps": int(busy),
            "ops_energy_pj": float(pc.sum(ops.column("energy_pj")).as_py()),
            "macs": int(pc.sum(ops.column("macs")).as_py()), "op_bytes": int(pc.sum(ops.column("bytes")).as_py())}


def reram_writes(ops: pa.Table) -> dict | None:
    """Ops of kind ``program`` (weights written into crossbars), or None if the run has none."""
    names = code_names(ops, "kind_codes", "kind")
    code = next((c for c, n in names.items() if n == "program"), None)
    if code is None:
        return None
    prog = ops.filter(pc.equal(ops.column("kind"), code))
    if prog.num_rows == 0:
        return None
    f = ops_figures(prog)
    return {"reram_write_ops": f["ops"], "reram_write_busy_ps": f["ops_busy_ps"],
            "reram_write_energy_pj": f["ops_energy_pj"], "reram_write_bytes": f["op_bytes"]}


# --- NoC ---------------------------------------------------------------------------------------
def packet_latency_ps(packets: pa.Table, clock_ps: int | None) -> np.ndarray | None:
    """Per-packet latency in ps (a ``latency_ps`` column, or ``latency_cycle`` x the clock)."""
    if "latency_ps" in packets.column_names:
        return packets.column("latency_ps").to_numpy().astype(np.float64)
    if "latency_cycle" in packets.column_names and clock_ps:
        return packets.column("latency_cycle").to_numpy().astype(np.float64) * clock_ps
    return None


def link_utilisation(links: pa.Table, step_ps: float | None, clock_ps: int | None) -> np.ndarray:
    """Flits per cycle of every link. A table whose metadata says ``utilisation_over=step`` (the
    coupled chip: no LP knows when the step ends) is divided here by the step's cycles."""
    if _meta(links, "utilisation_over") == "step":
        if not step_ps or not clock_ps:
            return np.full(links.num_rows, np.nan)
        return links.column("flits").to_numpy().astype(np.float64) / (step_ps / clock_ps)
    return links.column("utilisation").to_numpy().astype(np.float64)


def noc_figures(packets: pa.Table | None, links: pa.Table | None, clock_ps: int | None,
                step_ps: float | None = None) -> dict:
    out: dict = {}
    if packets is not None:
        lat = packet_latency_ps(packets, clock_ps)
        out["packets"] = packets.num_rows
        rate = _meta(packets, "sampling_rate") or _meta(packets, "sample_rate")
        if rate is not None:
            out["packet_sampling_rate"] = float(rate)
        if lat is not None and lat.size:
            p50, p99 = np.percentile(lat, [50, 99])
            out.update({"packet_latency_mean_ps": float(lat.mean()), "packet_latency_p50_ps": float(p50),
                        "packet_latency_p99_ps": float(p99), "packet_latency_max_ps": float(lat.max())})
        if "latency_cycle" in packets.column_names and packets.num_rows:
            out["packet_latency_mean_cycles"] = float(pc.mean(packets.column("latency_cycle")).as_py())
    if links is not None and links.num_rows:
        cls = links.column("link_class").to_numpy()
        util = link_utilisation(links, step_ps, clock_ps)
        energy = links.column("energy_pj").to_numpy().astype(np.float64)
        names = code_names(links, "link_classes", "class")
        n = int(cls.max()) + 1
        count = np.bincount(cls, minlength=n)
        usum = np.bincount(cls, weights=util, minlength=n)
        umax = np.full(n, -np.inf)
        np.maximum.at(umax, cls, util)
        esum = np.bincount(cls, weights=energy, minlength=n)
        for c in np.flatnonzero(count):
            name = names.get(int(c), f"class{int(c)}")
            out[f"{name}_links"] = int(count[c])
            out[f"{name}_link_utilisation_mean"] = float(usum[c] / count[c])
            out[f"{name}_link_utilisation_max"] = float(umax[c])
            out[f"{name}_link_energy_pj"] = float(esum[c])
        out["noc_energy_pj"] = float(energy.sum())
    return out


def execution_figures(windows: pa.Table | None) -> dict:
    if windows is None or windows.num_rows == 0:
        return {}
    work = float(pc.sum(windows.column("work_s")).as_py())
    sync = float(pc.sum(windows.column("sync_s")).as_py())
    return {"rounds": int(pc.max(windows.column("round")).as_py()),
            "events": int(pc.sum(windows.column("events")).as_py()),
            "messages": int(pc.sum(windows.column("messages")).as_py()),
            "work_s": work, "sync_s": sync, "sync_share": sync / (work + sync) if work + sync > 0 else 0.0}


# --- the summary ---------------------------------------------------------------------------------
def derived(fig: dict, tokens: int | None) -> dict:
    """Latency in ms/s, tokens/s, energy in J, energy per token, EDP - from step latency and energy."""
    out = {}
    lat = fig.get("step_latency_ps")
    energy = fig.get("energy_pj")
    if lat is not None:
        out["step_latency_ms"] = lat / 1e9
        out["step_latency_s"] = lat / PS_PER_S
    if energy is not None:
        out["energy_j"] = energy / PJ_PER_J
    if tokens:
        out["tokens"] = tokens
        if lat:
            out["tokens_per_s"] = tokens / (lat / PS_PER_S)
        if energy is not None:
            out["energy_per_token_pj"] = energy / tokens
            out["energy_per_token_j"] = energy / tokens / PJ_PER_J
    if lat is not None and energy is not None:
        out["edp_pj_s"] = energy * lat / PS_PER_S
        out["edp_j_s"] = energy / PJ_PER_J * lat / PS_PER_S
    return out


def summary_figures(run_dir: str | os.PathLike, manifest: dict | None = None,
                    tables: dict[str, pa.Table] | None = None) -> dict:
    """Flat figures of the run (names carry units); absent tables listed under ``absent_tables``.
    Energy is the ops' energy plus the NoC links' energy."""
    if manifest is None:
        manifest = read_manifest(run_dir) if (Path(run_dir) / MANIFEST).is_file() else {}
    tables = tables_of(run_dir) if tables is None else tables
    ops, packets, links = tables.get("ops"), tables.get("packets"), tables.get("links")
    fig: dict = {"absent_tables": [t for t in ("ops", "packets", "links", "windows") if t not in tables]}
    if manifest.get("baseline"):
        fig["baseline"] = manifest["baseline"]
    if ops is not None:
        fig.update(ops_figures(ops))
        fig.update(reram_writes(ops) or {})
        codes = {prefix: {n: c for c, n in code_names(ops, f"{prefix}_codes", prefix).items()}
                 for prefix in ("kind", "phase")}
        fig.update(system_figures(ops, tables.get("system_links"), codes["kind"], codes["phase"]))
    fig.update(noc_figures(packets, links, clock_ps_of(manifest), fig.get("step_latency_ps")))
    parts = [fig.get("ops_energy_pj"), fig.get("noc_energy_pj")]
    if any(p is not None for p in parts):
        fig["energy_pj"] = float(sum(p for p in parts if p is not None))
    fig.update(derived(fig, tokens_of(manifest)))
    if ops is not None and "step" in ops.column_names:  # a generate run (results.decode_figures)
        fig.update(decode_figures(ops, code_names(ops, "kind_codes", "kind"), recorded(manifest, ("scenario", "batch")),
                                  recorded(manifest, ("scenario", "seq")), fig.get("noc_energy_pj"),
                                  recorded(manifest, ("gpu",)), recorded(manifest, ("baseline",))))
    fig.update(execution_figures(tables.get("windows")))
    return fig


def summary_table(fig: dict) -> pa.Table:
    """The ``summary`` table: one row per numeric figure (name, value)."""
    items = sorted((k, float(v)) for k, v in fig.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool))
    return pa.table({"name": [k for k, _ in items], "value": [v for _, v in items]})


def write_summary(run_dir: str | os.PathLike, fig: dict) -> Path:
    """Write :func:`summary_table` as ``summary/lp000.arrows``. Marked an *execution* table: it holds
    wall-clock figures, and float sums over LPs may differ in the last bit across partitions, so
    the digest must not cover it (the ops/packets/links tables it is computed from are covered)."""
    table = summary_table(fig)
    table = table.replace_schema_metadata({"atleus.schema_version": SCHEMA_VERSION, "atleus.table": "summary",
                                           "atleus.table_kind": "execution", "atleus.wallclock_columns": ""})
    path = lp_file(run_dir, "summary", 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as fh, pa.ipc.new_stream(fh, table.schema) as writer:
        writer.write_table(table)
    return path

"""A run as a Chrome trace-event JSON file, to explore in ui.perfetto.dev or chrome://tracing.

What the file holds (``traceEvents``, the JSON object form of the format):

- one *process* per tier of the chip and one for its HBM, one for the NoC; their names and order
  as metadata (``M``) events ``process_name`` / ``process_sort_index``;
- one *thread* (track) per core, per HBM port (``core`` -1, -2...: port 0, 1...) and per NoC source
  router, named by ``thread_name``. Ops of one unit may overlap (a ReRAM core runs several
  weights' crossbars at once) and the format only nests slices, so a unit whose ops overlap gets
  more tracks, ``core 12 (2)``..., each holding ops that never overlap;
- every row of the ``ops`` table as one complete (``X``) slice: name ``<kind> L<layer> <phase>``,
  category its kind, arguments op id, kind, phase, layer, tier, core, MACs, bytes and energy;
- the critical path (:func:`~atleus_dist.results.critical.critical_path`, exact when the op
  graph's dependencies are given, else inferred from the timeline) as flow arrows (``s``/``f``)
  from each op on it to the next;
- up to ``packets`` NoC packets of the ``packets`` table (itself a sample; evenly spaced in packet
  order) as slices from creation to arrival on their source router's tracks;
- counters (``C``), aggregated into at most ``bins`` time bins so the file stays bounded whatever
  the run: HBM bandwidth per port (GB/s, from the HBM ops' bytes spread over their durations) and
  NoC link use (mean flits per cycle per link: the shape over time from the sampled packets'
  flit-hops in flight, scaled so it sums to the ``links`` table's flits).

Times: the tables hold integer picoseconds; the format wants microseconds. Each is written as the
exact decimal ``ps / 10**6`` (``301000`` ps -> ``0.301``), never through a float, so two
different times never print the same. Knows the table schemas and the format; nothing of hardware
models, LPs or backends.
"""

from __future__ import annotations

import gzip
import heapq
import json
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from atleus_dist.kernel.errors import ConfigError
from atleus_dist.results.codes import code_names, full_table, meta, tier_names
from atleus_dist.results.critical import critical_path
from atleus_dist.results.manifest import read_manifest
from atleus_dist.results.reader import read_table, table_names
from atleus_dist.results.summary import clock_ps_of

DEFAULT_PACKETS = 1000
DEFAULT_BINS = 500
PS_PER_US = 10**6


def us(ps: int) -> str:
    """``ps`` picoseconds as the exact decimal number of microseconds (JSON number text)."""
    q, r = divmod(int(ps), PS_PER_US)
    if q < 0 and r:  # divmod floors: -1 ps is -1 + 999999/10**6 us
        return "-" + us(-int(ps))
    return str(q) if r == 0 else f"{q}.{r:06d}".rstrip("0")


_j = json.JSONEncoder(separators=(",", ":")).encode  # one encoder: json.dumps builds one per call


def _num(x: float) -> str:
    """A finite float as a JSON number, to 6 decimals."""
    x = round(float(x), 6)
    return repr(x) if np.isfinite(x) else "0"


def lanes(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The lane of each interval (in the given order), lanes numbered from 0, such that the
    intervals of one lane never overlap (an interval may start when the previous one ends)."""
    order = np.lexsort((end, start))
    lane = np.empty(len(start), dtype=np.int64)
    free: list[tuple[int, int]] = []  # (end of the lane's last interval, lane)
    count = 0
    for i in order:
        s = int(start[i])
        if free and free[0][0] <= s:
            _e, k = heapq.heappop(free)
        else:
            k, count = count, count + 1
        lane[i] = k
        heapq.heappush(free, (int(end[i]), k))
    return lane


def binned_rate(start: np.ndarray, end: np.ndarray, amount: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per bin ``[edges[k], edges[k+1])``: how much of ``amount`` falls in it, each interval's
    amount spread evenly over ``[start, end)`` (a zero-length interval counts where it is)."""
    start = start.astype(np.float64)
    end = np.maximum(end.astype(np.float64), start)
    amount = amount.astype(np.float64)
    dur = end - start
    point = dur == 0
    out = np.zeros(len(edges) - 1)
    if point.any():
        k = np.clip(np.searchsorted(edges, start[point], side="right") - 1, 0, len(out) - 1)
        np.add.at(out, k, amount[point])
    live = ~point
    if live.any():  # the integral of the summed rates is piecewise linear: evaluate it at the edges
        rate = amount[live] / dur[live]
        t = np.concatenate([start[live], end[live]])
        d = np.concatenate([rate, -rate])
        o = np.argsort(t, kind="stable")
        t, d = t[o], np.cumsum(d[o])
        seg = np.concatenate([[0.0], np.cumsum(d[:-1] * np.diff(t))])  # integral at each breakpoint
        k = np.searchsorted(t, edges, side="right") - 1
        inside = k >= 0
        integral = np.zeros(len(edges))
        kk = k[inside]
        integral[inside] = seg[kk] + d[kk] * (edges[inside] - t[kk])
        out += np.diff(integral)
    return out


class _Events:
    """The events of the file as JSON text, in the order written."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.counts = {"slices": 0, "flows": 0, "counters": 0, "packets": 0, "metadata": 0}

    def meta(self, pid: int, name: str, value, tid: int | None = None) -> None:
        tid_part = f',"tid":{tid}' if tid is not None else ""
        key = "sort_index" if name.endswith("sort_index") else "name"
        self.lines.append(f'{{"ph":"M","pid":{pid}{tid_part},"name":{_j(name)},"args":{{"{key}":{_j(value)}}}}}')
        self.counts["metadata"] += 1

    def process(self, pid: int, name: str, order: int) -> None:
        self.meta(pid, "process_name", name)
        self.meta(pid, "process_sort_index", order)

    def thread(self, pid: int, tid: int, name: str) -> None:
        self.meta(pid, "thread_name", name, tid)
        self.meta(pid, "thread_sort_index", tid, tid)


def _unit_tracks(ev: _Events, pid: int, keys: np.ndarray, start: np.ndarray, end: np.ndarray, label) -> np.ndarray:
    """A track per unit (``keys``), more where its intervals overlap; names them; returns each
    row's tid."""
    tid = np.zeros(len(keys), dtype=np.int64)
    next_tid = 1
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        lane = lanes(start[rows], end[rows])
        for k in range(int(lane.max()) + 1):
            ev.thread(pid, next_tid + k, label(int(key)) + (f" ({k + 1})" if k else ""))
        tid[rows] = next_tid + lane
        next_tid += int(lane.max()) + 1
    return tid


def _ops(ev: _Events, ops: pa.Table, manifest: dict, hbm_routers: list) -> tuple[dict, dict]:
    """Every op a slice; returns op id -> (pid, tid, start) and the HBM pid."""
    col = {c: ops.column(c).to_numpy() for c in ("op", "tier", "core", "layer", "kind", "phase", "start_ps",
                                                 "end_ps", "macs", "bytes", "energy_pj")}
    kinds = full_table(col["kind"], code_names(ops, "kind_codes", "kind"), "kind")
    phases = full_table(col["phase"], code_names(ops, "phase_codes", "phase"), "phase")
    tiers = tier_names(ops, manifest)
    hbm = col["core"] < 0
    pid = np.where(hbm, 0, col["tier"].astype(np.int64) + 1)
    hbm_pid = int(col["tier"].max()) + 2 if len(pid) else 1
    pid[hbm] = hbm_pid
    tid = np.zeros(len(pid), dtype=np.int64)
    for p in np.unique(pid):
        rows = np.flatnonzero(pid == p)
        if p == hbm_pid:
            ev.process(int(p), "HBM", int(p))

            def label(core: int) -> str:
                port = -core - 1
                where = f" (router {hbm_routers[port]})" if port < len(hbm_routers) else ""
                return f"port {port}{where}"
        else:
            t = int(p) - 1
            ev.process(int(p), f"tier {t}: {tiers.get(t, f'tier{t}')}", int(p))

            def label(core: int) -> str:
                return f"core {core}"
        tid[rows] = _unit_tracks(ev, int(p), col["core"][rows], col["start_ps"][rows], col["end_ps"][rows], label)
    where = {}
    kj = {k: _j(v) for k, v in kinds.items()}
    phj = {k: _j(v) for k, v in phases.items()}
    lists = {c: col[c].tolist() for c in col}
    pids, tids = pid.tolist(), tid.tolist()
    for i in range(len(pids)):
        kind, phase, layer = lists["kind"][i], lists["phase"][i], lists["layer"][i]
        name = (f"{kinds[kind]} L{layer} {phases[phase]}" if layer >= 0 else f"{kinds[kind]} {phases[phase]}")
        s, e = lists["start_ps"][i], lists["end_ps"][i]
        args = (f'{{"op":{lists["op"][i]},"kind":{kj[kind]},"phase":{phj[phase]},"layer":{layer},'
                f'"tier":{lists["tier"][i]},"core":{lists["core"][i]},"macs":{lists["macs"][i]},'
                f'"bytes":{lists["bytes"][i]},"energy_pj":{_j(lists["energy_pj"][i])}}}')
        ev.lines.append(f'{{"ph":"X","name":{_j(name)},"cat":{kj[kind]},"pid":{pids[i]},"tid":{tids[i]},'
                        f'"ts":{us(s)},"dur":{us(e - s)},"args":{args}}}')
        where[lists["op"][i]] = (pids[i], tids[i], s)
    ev.counts["slices"] += len(pid)
    return where, {"pid": hbm_pid, "rows": hbm}


def _flows(ev: _Events, ops: pa.Table, where: dict, deps: list | None) -> dict:
    """The critical path as flow arrows from each op on it to the next (in time)."""
    path: list[int] = []
    cp = critical_path(ops, code_names(ops, "kind_codes", "kind"), deps, path=path)
    path.reverse()
    for n, (a, b) in enumerate(zip(path, path[1:])):
        (pa_, ta, sa), (pb, tb, sb) = where[a], where[b]
        name = '"critical path"'
        ev.lines.append(f'{{"ph":"s","id":{n},"name":{name},"cat":"critical","pid":{pa_},"tid":{ta},"ts":{us(sa)}}}')
        ev.lines.append(f'{{"ph":"f","bp":"e","id":{n},"name":{name},"cat":"critical","pid":{pb},"tid":{tb},'
                        f'"ts":{us(sb)}}}')
    ev.counts["flows"] += max(0, len(path) - 1)
    return {"ops": len(path), "exact": bool(cp.get("exact"))}


def _edges(end_ps: int, bins: int) -> np.ndarray:
    """Integer bin edges from 0 to ``end_ps``, at most ``bins`` bins of whole picoseconds."""
    n = max(1, min(bins, end_ps))
    return np.unique(np.linspace(0, end_ps, n + 1).round().astype(np.int64))


def _counter(ev: _Events, pid: int, name: str, edges: np.ndarray, series: dict[str, np.ndarray]) -> None:
    keys = [_j(key) for key in series]
    cols = [series[key].tolist() for key in series]
    head = f'{{"ph":"C","name":{_j(name)},"pid":{pid},"ts":'
    for k in range(len(edges) - 1):
        values = ",".join(f"{key}:{_num(col[k])}" for key, col in zip(keys, cols))
        ev.lines.append(f'{head}{us(edges[k])},"args":{{{values}}}}}')
    ev.lines.append(f'{head}{us(edges[-1])},"args":{{{",".join(f"{key}:0" for key in keys)}}}}}')
    ev.counts["counters"] += len(edges)


def _hbm_counters(ev: _Events, ops: pa.Table, hbm: dict, edges: np.ndarray) -> None:
    rows = hbm["rows"]
    if not rows.any():
        return
    core = ops.column("core").to_numpy()[rows]
    s, e = ops.column("start_ps").to_numpy()[rows], ops.column("end_ps").to_numpy()[rows]
    b = ops.column("bytes").to_numpy()[rows]
    width = np.diff(edges).astype(np.float64)
    series = {}
    for c in sorted(np.unique(core), reverse=True):  # port 0 first
        sel = core == c
        series[f"port {-int(c) - 1}"] = binned_rate(s[sel], e[sel], b[sel], edges) / width * 1e3  # B/ps -> GB/s
    _counter(ev, hbm["pid"], "HBM bandwidth (GB/s)", edges, series)


def _noc(ev: _Events, packets: pa.Table | None, links: pa.Table | None, clock_ps: int | None, pid: int,
         edges: np.ndarray, n_packets: int) -> None:
    if packets is None or packets.num_rows == 0 or not clock_ps or "itime_cycle" not in packets.column_names:
        return
    ev.process(pid, "NoC", pid)
    col = {c: packets.column(c).to_numpy() for c in ("pkt", "src", "dest", "ctime_cycle", "itime_cycle",
                                                     "atime_cycle", "hops", "flits")}
    if links is not None and links.num_rows:
        total = float(links.column("flits").to_numpy().sum())
        hops = binned_rate(col["itime_cycle"] * clock_ps, col["atime_cycle"] * clock_ps,
                           col["hops"] * col["flits"], edges)
        cycles = np.diff(edges).astype(np.float64) / clock_ps
        scale = total / hops.sum() if hops.sum() > 0 else 0.0
        _counter(ev, pid, "NoC link use (flits/cycle per link)", edges,
                 {"mean": hops * scale / cycles / links.num_rows})
    order = np.argsort(col["pkt"], kind="stable")
    pick = order[np.unique(np.linspace(0, len(order) - 1, min(n_packets, len(order))).round().astype(np.int64))]
    if n_packets <= 0 or not len(pick):
        return
    s, e = col["ctime_cycle"][pick] * clock_ps, col["atime_cycle"][pick] * clock_ps
    tid = _unit_tracks(ev, pid, col["src"][pick], s, e, lambda r: f"router {r}")
    for n, i in enumerate(pick):
        args = (f'{{"pkt":{int(col["pkt"][i])},"src":{int(col["src"][i])},"dest":{int(col["dest"][i])},'
                f'"hops":{int(col["hops"][i])},"flits":{int(col["flits"][i])},'
                f'"queued_cycles":{int(col["itime_cycle"][i] - col["ctime_cycle"][i])},'
                f'"latency_cycles":{int(col["atime_cycle"][i] - col["ctime_cycle"][i])}}}')
        ev.lines.append(f'{{"ph":"X","name":"packet {int(col["src"][i])}->{int(col["dest"][i])}","cat":"packet",'
                        f'"pid":{pid},"tid":{int(tid[n])},"ts":{us(s[n])},"dur":{us(e[n] - s[n])},"args":{args}}}')
    ev.counts["packets"] += len(pick)


def build_trace(run_dir: str | os.PathLike, deps: list | None = None, packets: int = DEFAULT_PACKETS,
                bins: int = DEFAULT_BINS) -> tuple[str, dict]:
    """(the trace as JSON text, what it holds). ``deps[op_id]``: the op graph's dependencies, for
    an exact critical path (else it is inferred)."""
    manifest = read_manifest(run_dir)
    names = table_names(run_dir)
    if "ops" not in names:
        raise ConfigError("run_dir", f"{run_dir}: the run has no ops table (a NoC-only or PHOLD run): nothing "
                          "to trace")
    ops = read_table(run_dir, "ops")
    packets_t = read_table(run_dir, "packets") if "packets" in names else None
    links = read_table(run_dir, "links") if "links" in names else None
    ev = _Events()
    hbm_routers = ((manifest.get("config") or {}).get("noc") or {}).get("hbm_routers") or []
    where, hbm = _ops(ev, ops, manifest, hbm_routers)
    info = {"ops": ops.num_rows}
    if ops.num_rows:
        info["critical_path"] = _flows(ev, ops, where, deps)
        edges = _edges(int(ops.column("end_ps").to_numpy().max()), bins)
        _hbm_counters(ev, ops, hbm, edges)
        _noc(ev, packets_t, links, clock_ps_of(manifest), hbm["pid"] + 1, edges, packets)
        info["bins"] = len(edges) - 1
    info.update(ev.counts)
    other = {"run_dir": str(run_dir), "command": manifest.get("command"), "status": manifest.get("status"),
             "time_unit": "ts and dur in microseconds, exact decimals of the tables' integer picoseconds",
             "packet_sampling_rate": meta(packets_t, "sampling_rate") if packets_t is not None else None}
    text = ('{"displayTimeUnit":"ns","otherData":' + _j(other) + ',"traceEvents":[\n'
            + ",\n".join(ev.lines) + "\n]}\n")
    return text, info


def write_trace(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, deps: list | None = None,
                packets: int = DEFAULT_PACKETS, bins: int = DEFAULT_BINS) -> dict:
    """Write :func:`build_trace` to ``out`` (default ``RUN/trace.json.gz``; gzipped when the name
    ends in ``.gz``, which both viewers open); returns what it holds, its size and the seconds taken."""
    t0 = time.perf_counter()
    text, info = build_trace(run_dir, deps, packets, bins)
    path = Path(out) if out is not None else Path(run_dir) / "trace.json.gz"
    data = text.encode()
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6, mtime=0)
    path.write_bytes(data)
    return dict(info, path=str(path), bytes=len(data), seconds=round(time.perf_counter() - t0, 3))

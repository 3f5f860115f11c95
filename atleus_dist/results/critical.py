"""What bounds the step: the critical path through the executed ops, the busiest unit of each
kind, and where NoC packets spend their time - computed from a run's tables.

Critical path. An op starts when its unit is free and the last of its inputs has arrived. Walking
back from the op that ends last, each op's predecessor on the path is

1. the op on the same core that ended exactly when it started (it waited for its unit: the
   schedulers start the next queued op at the very time the unit frees), else
2. its latest-ending dependency (given ``deps``; the gap between that end and the start is the
   transfer of the data - over the NoC or the stub), else, without ``deps``,
3. the op that ended last at or before its start anywhere on the chip (*inferred*: the gap is
   labelled transfer/wait, and the path may pass through an unrelated op that ended in time).

The ops table names cores, not units: a ReRAM core holds several weights' crossbars that run at
once, so an op of one weight starting exactly when another weight's op on its core ends is taken
as a wait for the unit (rule 1) - the time on the path is the same either way, only which op it
passes through may differ.

The path's time splits exactly into compute by unit class (ReRAM: ``static_mm``;
systolic: ``dynamic_mm``; vector: ``vector`` ops on the systolic cores' vector units; HBM:
``hbm_read``/``hbm_write``; ReRAM programming, ``program`` - streamed or rewritten weights -
apart), transfer gaps, and the idle time before its first op; the parts sum to the step latency
(a test checks it).

Knows the table schemas only (op kinds by name); nothing of hardware models, LPs or backends.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

CLASS_OF_KIND = {"static_mm": "reram", "program": "program", "dynamic_mm": "systolic", "vector": "vector",
                 "hbm_read": "hbm", "hbm_write": "hbm"}
UNIT_OF_CLASS = {"reram": "reram core", "program": "reram core", "systolic": "systolic core",
                 "vector": "systolic core", "hbm": "hbm"}
KIND_MEANING = {
    "static_mm": "matmul with a frozen weight held in ReRAM crossbars (forward, or transposed for dX)",
    "dynamic_mm": "matmul of two computed operands on a systolic array (QK^T, AV, LoRA, gradients)",
    "vector": "element-wise/reduction op on a systolic core's vector unit (softmax, norms, GELU, Adam)",
    "hbm_read": "read from off-chip HBM (saved activations, optimizer state, streamed weights)",
    "hbm_write": "write to off-chip HBM (saved activations, optimizer state)",
    "program": "(re)writing a weight block into ReRAM crossbars (streamed or updated weights)",
}
BALANCE_MEANING = ("balance = slowest pipeline stage / mean stage latency of a layer (1.0: perfectly "
                   "balanced; 1.5: the slowest stage takes 1.5x the mean, so the others idle a third of the time)")


def _columns(ops: pa.Table, kind_names: dict[int, str]):
    op = ops.column("op").to_numpy()
    order = np.argsort(op, kind="stable")
    col = {c: ops.column(c).to_numpy()[order] for c in ("op", "tier", "core", "kind", "start_ps", "end_ps")}
    col["class"] = np.array([CLASS_OF_KIND.get(kind_names.get(int(k), ""), "other") for k in col["kind"]])
    return col


def critical_path(ops: pa.Table, kind_names: dict[int, str], deps: list | None = None,
                  transfer: str = "transfer", path: list | None = None) -> dict:
    """The critical path (see the module docstring). ``deps[op_id]`` are the op's dependencies
    (op ids of the run's op graph); ``transfer`` names the gaps (``noc`` or ``stub``); ``path``, if
    given, receives the op ids on the path, last op first."""
    if ops.num_rows == 0:
        return {}
    c = _columns(ops, kind_names)
    ids, start, end = c["op"], c["start_ps"], c["end_ps"]
    row_of = {int(o): i for i, o in enumerate(ids)}
    exact = deps is not None and all(int(o) < len(deps) for o in ids)
    # same-core ops ending at a time t, in id order (zero-length ops may share an end time)
    ended_at: dict[tuple[int, int, int], list[int]] = {}
    for i in range(len(ids)):
        ended_at.setdefault((int(c["tier"][i]), int(c["core"][i]), int(end[i])), []).append(i)

    def unit_prev(i: int, s: int) -> int | None:
        """The op its core ran just before ``i``: one ending at ``s``, the latest in op order
        before ``i`` (a serial unit runs its queue in op order), else any that took time."""
        rows = [r for r in ended_at.get((int(c["tier"][i]), int(c["core"][i]), s), ()) if r != i]
        before = [r for r in rows if ids[r] < ids[i]]
        if before:
            return before[-1]
        timed = [r for r in rows if end[r] > start[r]]
        return timed[-1] if timed else None
    by_end = np.lexsort((ids, end))  # for the inferred rule: latest end <= t
    ends_sorted = end[by_end]
    rank = np.empty(len(ids), dtype=np.int64)
    rank[by_end] = np.arange(len(ids))
    parts = {k: 0 for k in ("reram", "program", "systolic", "vector", "hbm", "other")}
    gap_ps, ops_on_path, unit_waits = 0, 0, 0
    gaps: dict[str, int] = {}
    i = int(by_end[-1])
    step_ps = int(end.max() - start.min())
    first_start = int(start.min())
    visited: set[int] = set()
    while True:
        visited.add(i)
        ops_on_path += 1
        if path is not None:
            path.append(int(ids[i]))
        parts[str(c["class"][i])] += int(end[i] - start[i])
        s = int(start[i])
        prev = unit_prev(i, s)
        if prev is not None and prev not in visited:
            unit_waits += 1
        elif exact:
            ds = [row_of[d] for d in deps[int(ids[i])] if d in row_of]
            prev = max(ds, key=lambda r: (end[r], ids[r])) if ds else None
        else:
            # strictly earlier in (end, id) order, so the walk always terminates
            k = min(int(np.searchsorted(ends_sorted, s, side="right")), int(rank[i])) - 1
            prev = int(by_end[k]) if k >= 0 else None
        if prev is None or prev in visited:
            idle = s - first_start
            break
        gap_ps += s - int(end[prev])
        if s > int(end[prev]):  # which kind of data the path waits for: producer -> consumer
            key = f"{c['class'][prev]} -> {c['class'][i]}"
            gaps[key] = gaps.get(key, 0) + s - int(end[prev])
        i = prev
    total = sum(parts.values()) + gap_ps + idle
    return {"step_ps": step_ps, "path_ps": total, "ops": ops_on_path, "exact": exact,
            "compute_ps": {k: v for k, v in parts.items() if v or k not in ("other", "program")},
            "transfer": transfer, "transfer_ps": gap_ps, "idle_before_first_op_ps": idle,
            "transfer_ps_by_edge": dict(sorted(gaps.items(), key=lambda kv: (-kv[1], kv[0]))),
            "waits_for_a_busy_unit": unit_waits,
            "bound": _bound(parts, gap_ps, transfer)}


def _bound(parts: dict, gap_ps: int, transfer: str) -> str:
    shares = dict(parts, **{transfer: gap_ps})
    name = max(shares, key=lambda k: shares[k])
    return name


def _union_ps(starts: np.ndarray, ends: np.ndarray) -> int:
    """Length of the union of intervals [start, end)."""
    if starts.size == 0:
        return 0
    o = np.argsort(starts, kind="stable")
    s, e = starts[o], ends[o]
    run_end = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > run_end[:-1]
    idx = np.flatnonzero(new)
    seg_end = np.append(run_end[idx[1:] - 1], run_end[-1])
    return int((seg_end - s[idx]).sum())


def unit_occupancy(ops: pa.Table, kind_names: dict[int, str]) -> tuple[int, dict[str, dict]]:
    """(step ps, {unit kind: {(tier, core): occupied ps}}): the union of each unit's op intervals
    (a ReRAM core runs several weights' ops at once; a systolic core's vector unit is counted
    with its array)."""
    c = _columns(ops, kind_names)
    step = int(c["end_ps"].max() - c["start_ps"].min())
    unit_kind = np.array([UNIT_OF_CLASS.get(k, "other") for k in c["class"]])
    out: dict[str, dict] = {}
    for uk in sorted(set(unit_kind.tolist())):
        sel = unit_kind == uk
        keys = sorted({(int(t), int(k)) for t, k in zip(c["tier"][sel], c["core"][sel])})
        out[uk] = {(t, k): _union_ps(c["start_ps"][sel & (c["tier"] == t) & (c["core"] == k)],
                                     c["end_ps"][sel & (c["tier"] == t) & (c["core"] == k)]) for t, k in keys}
    return step, out


def busiest_units(ops: pa.Table, kind_names: dict[int, str], tier_names: dict[int, str]) -> dict:
    """Per unit kind (reram core, systolic core, hbm): the busiest unit, its occupied time and
    utilisation over the step, plus the mean utilisation over the units of that kind that ran."""
    if ops.num_rows == 0:
        return {}
    step, kinds = unit_occupancy(ops, kind_names)
    out = {}
    for uk, occ in kinds.items():
        keys = list(occ)
        (bt, bk), busy = max(occ.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))
        label = "hbm" if uk == "hbm" else f"{tier_names.get(bt, f'tier{bt}')} core {bk}"
        out[uk] = {"unit": label, "tier": bt, "core": bk, "occupied_ps": busy,
                   "utilisation": busy / step if step else 0.0, "units": len(keys),
                   "mean_utilisation": (sum(occ.values()) / len(keys) / step) if step else 0.0}
    return out


def packet_split(packets: pa.Table | None, links: pa.Table | None, clock_ps: int | None,
                 step_ps: float | None, link_names: dict[int, str], n_routers: int | None = None,
                 hbm_routers: list[int] = (), controllers: bool = False) -> dict:
    """Packet latency split into source queueing (created -> head injected) and network (injected
    -> tail arrived), in ps; the node (a core's or a memory controller's NI) whose injection queue
    holds packets longest in total (the bottleneck source) and the most utilised link."""
    out: dict = {}
    if packets is not None and packets.num_rows and clock_ps and "itime_cycle" in packets.column_names:
        ct, it, at = (packets.column(n).to_numpy().astype(np.float64) for n in ("ctime_cycle", "itime_cycle",
                                                                                   "atime_cycle"))
        src = packets.column("src").to_numpy()
        dst = packets.column("dest").to_numpy()
        queue, net = (it - ct) * clock_ps, (at - it) * clock_ps
        out["source_queue_mean_ps"] = float(queue.mean())
        out["network_mean_ps"] = float(net.mean())
        out["source_queue_share"] = float(queue.sum() / (queue.sum() + net.sum())) if (queue.sum() + net.sum()) else 0.0
        per_src = np.bincount(src, weights=queue)
        worst = int(np.argmax(per_src))
        out["bottleneck_source_node"] = worst
        out["bottleneck_source_queue_share"] = float(per_src[worst] / queue.sum()) if queue.sum() else 0.0
        out["bottleneck_source_packets_share"] = float((src == worst).mean())
        per_dst = np.bincount(dst, weights=net)
        out["slowest_destination_node"] = int(np.argmax(per_dst))
        if "flits" in packets.column_names:
            out.update(ni_limits(packets, src, dst, ct, it, at, worst))
        for key in ("bottleneck_source", "slowest_destination", "bottleneck_target"):
            if f"{key}_node" in out:  # say which nodes are the HBM's ports: the usual suspects
                out.update(node_fields(key, out[f"{key}_node"], n_routers, list(hbm_routers), controllers))
    if links is not None and links.num_rows and step_ps and clock_ps:
        flits = links.column("flits").to_numpy().astype(np.float64)
        util = flits / (step_ps / clock_ps)
        j = int(np.argmax(util))
        cls = int(links.column("link_class").to_numpy()[j])
        out["busiest_link"] = {"router": int(links.column("router").to_numpy()[j]),
                               "port": int(links.column("port").to_numpy()[j]),
                               "class": link_names.get(cls, f"class{cls}"), "utilisation": float(util[j])}
    return out


NI_LIMIT = 0.8  # an NI busier than this while it has work is what limits its traffic


def _merged(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """The union of the intervals [lo_i, hi_i) as sorted disjoint (starts, ends)."""
    order = np.argsort(lo, kind="stable")
    starts, ends = [], []
    for a, b in zip(lo[order], hi[order]):
        if starts and a <= ends[-1]:
            ends[-1] = max(ends[-1], b)
        else:
            starts.append(a)
            ends.append(b)
    return np.asarray(starts), np.asarray(ends)


def _inside(t, starts, ends) -> np.ndarray:
    k = np.searchsorted(starts, t, side="right") - 1
    return (k >= 0) & (t < ends[np.maximum(k, 0)])


def ni_limits(packets: pa.Table, src, dst, ct, it, at, worst_src: int) -> dict:
    """Whether a network interface limits (one flit a cycle each way, the engine's NI), over the
    cycles the bottleneck source's queue held packets (union of its packets' [created, head
    injected) spans): the flits its NI injected per such cycle, and the flits ejected per such
    cycle by the router its traffic mostly goes to. Injection near 1: the source's NI sets the
    pace (an HBM port or core with more to send than one flit a cycle); injection low and that
    destination's ejection near 1: the destination's NI does (many senders converging on one
    core or port). Sampled packets stand for ``1 / sampling_rate`` each."""
    meta = packets.schema.metadata or {}
    rate = float(meta.get(b"atleus.sampling_rate", b"1") or 1)
    flits = packets.column("flits").to_numpy().astype(np.float64) / rate
    waited = (src == worst_src) & (it > ct)
    if not waited.any():
        return {}
    starts, ends = _merged(ct[waited], it[waited])
    span = float((ends - starts).sum())
    mine = src == worst_src
    target = int(np.argmax(np.bincount(dst[mine], weights=flits[mine])))
    injected = flits[mine & _inside(it, starts, ends)].sum()
    ejected = flits[(dst == target) & _inside(at, starts, ends)].sum()
    out = {"bottleneck_source_injection_share": float(min(1.0, injected / span)),
           "bottleneck_target_node": target,
           "bottleneck_target_ejection_share": float(min(1.0, ejected / span))}
    out["injection_limits"] = out["bottleneck_source_injection_share"] >= NI_LIMIT
    out["ejection_limits"] = not out["injection_limits"] and out["bottleneck_target_ejection_share"] >= NI_LIMIT
    return out


def node_fields(key: str, node: int, n_routers: int | None, hbm_routers: list[int], controllers: bool) -> dict:
    """What a node of the packets table is: ``<key>_router``, ``<key>_is_hbm_port`` and a label.
    Nodes are routers' core NIs (node = router) and, on chips whose HBM channels have controllers
    with NIs of their own (``controllers``), the controllers' (node = n_routers + router); without
    them an HBM channel's traffic uses its router's one NI (``hbm_routers``). Runs written before
    nodes were named (``n_routers`` None: no ``router`` column in ``nodes``) hold routers."""
    mc = n_routers is not None and node >= n_routers
    router = node - n_routers if mc else node
    hbm = mc or (router in hbm_routers and not (controllers and n_routers is not None))
    label = (f"router {router}'s memory controller" if mc else
             f"router {router} (an HBM port)" if hbm else f"router {router}'s core")
    return {f"{key}_router": router, f"{key}_is_hbm_port": bool(hbm), f"{key}_label": label}


def layer_phase_spans(ops: pa.Table, phase_names: dict[int, str], kind_names: dict[int, str]) -> dict[str, dict]:
    """Per layer (``embed`` for -1, ``L<i>`` otherwise - the highest index holds the head and
    loss when the model has one): span of its compute ops (first start to last end; HBM ops
    excluded, since a backward's saved-activation reads may be prefetched during the forward) per
    phase, and busy time of all its ops summed over cores (it exceeds the span where ops overlap)."""
    if ops.num_rows == 0:
        return {}
    layer = ops.column("layer").to_numpy()
    phase = ops.column("phase").to_numpy()
    start = ops.column("start_ps").to_numpy()
    end = ops.column("end_ps").to_numpy()
    hbm = np.isin(ops.column("kind").to_numpy(), [c for c, n in kind_names.items() if n.startswith("hbm")])
    out = {}
    for lay in np.unique(layer):
        m = layer == lay
        row = {"busy_ps_summed_over_cores": int((end[m] - start[m]).sum())}
        for ph in np.unique(phase[m & ~hbm]):
            mm = m & ~hbm & (phase == ph)
            row[f"{phase_names.get(int(ph), f'phase{ph}')}_span_ps"] = int(end[mm].max() - start[mm].min())
        out["embed" if lay < 0 else f"L{int(lay)}"] = row
    return out


def step_bounds(tables: dict[str, pa.Table], manifest: dict, deps: list | None, kind_names: dict[int, str],
                phase_names: dict[int, str], tier_names: dict[int, str], link_names: dict[int, str],
                clock_ps: int | None) -> dict:
    """Everything the report says about what bounds the step, as one JSON-ready dict."""
    ops = tables.get("ops")
    if ops is None or ops.num_rows == 0:
        return {}
    cfg = manifest.get("config") or {}
    transport = cfg.get("transport") or ("noc" if "packets" in tables else "gap")
    path = critical_path(ops, kind_names, deps, transport)
    step = path["step_ps"]
    noc = cfg.get("noc") or {}
    nodes = tables.get("nodes")
    n_routers = (len(np.unique(nodes.column("router").to_numpy()))
                 if nodes is not None and "router" in nodes.column_names else None)
    pk = packet_split(tables.get("packets"), tables.get("links"), clock_ps, step, link_names, n_routers,
                      noc.get("hbm_routers") or [], bool((noc.get("interface") or {}).get("mc_ports")))
    return {"critical_path": path, "busiest_units": busiest_units(ops, kind_names, tier_names),
            "packets": pk,
            "layers": layer_phase_spans(ops, phase_names, kind_names),
            "kinds_explained": {k: KIND_MEANING[k] for k in sorted(set(kind_names.values())) if k in KIND_MEANING},
            "balance_explained": BALANCE_MEANING,
            "busy_explained": "* busy = op durations summed over cores (and over a ReRAM core's concurrent "
                              "weights), so it can exceed the span; span = first start to last end"}

"""The report of one run and the comparison of two: figures as one dict (for ``--json``) and as
lines of text, with breakdowns by tier, op kind and phase.

``compare_runs(a, b)`` gives A's advantage over B the way the Atleus paper tabulates it: speed-up
= latency(B) / latency(A), energy efficiency = energy per token(B) / energy per token(A), EDP ratio
= EDP(B) / EDP(A); per phase, op kind and tier the span and energy ratios for groups both runs have.
When the two runs processed different numbers of tokens the ratios use tokens/s and energy per
token, and a warning says so.

Knows the table schemas and the manifest layout; knows nothing of hardware models, LPs or backends.
"""

from __future__ import annotations

import os
from pathlib import Path

from atleus_dist.results.critical import step_bounds
from atleus_dist.results.system_figures import system_lines
from atleus_dist.results.decode_figures import compare_decode, format_compare_decode, format_decode
from atleus_dist.results.decode_plot import PLOT as DECODE_PLOT
from atleus_dist.results.decode_plot import decode_latency_plot
from atleus_dist.results.summary import (breakdowns, clock_ps_of, code_names, load_manifest, summary_figures,
                                         tables_of, tier_names)


def build_report(run_dir: str | os.PathLike, allow_incomplete: bool = False, plots: bool = False,
                 field: str = "run_dir", deps_of=None) -> dict:
    """Everything ``report`` prints; ``field`` names the argument in errors. ``deps_of(manifest)``
    (e.g. :func:`atleus_dist.run.run_graph.op_deps_of_run`) gives the op graph's dependencies so
    the critical path follows real data edges; without it the path is inferred from the timeline."""
    manifest = load_manifest(run_dir, allow_incomplete, field)
    tables = tables_of(run_dir)
    fig = summary_figures(run_dir, manifest, tables)
    ops = tables.get("ops")
    bd = breakdowns(ops, manifest) if ops is not None and ops.num_rows else None
    bounds = None
    if ops is not None and ops.num_rows:
        links = tables.get("links")
        bounds = step_bounds(tables, manifest, deps_of(manifest) if deps_of else None,
                             code_names(ops, "kind_codes", "kind"), code_names(ops, "phase_codes", "phase"),
                             tier_names(ops, manifest),
                             code_names(links, "link_classes", "class") if links is not None else {},
                             clock_ps_of(manifest))
    rep = {"run_dir": str(Path(run_dir)), "status": manifest.get("status"), "command": manifest.get("command"),
           "baseline": manifest.get("baseline"), "scenario": (manifest.get("config") or {}).get("scenario"),
           "summary": fig, "breakdown": bd, "bounds": bounds,
           "config": {"system": (manifest.get("config") or {}).get("system")}}
    gpu = (manifest.get("config") or {}).get("gpu")
    if isinstance(gpu, dict) and ops is not None and ops.num_rows:
        rep["roofline"] = roofline_split(ops, gpu)
    if plots:
        from atleus_dist.results.plots import write_plots

        rep["plots"] = write_plots(run_dir, manifest, tables, bd, clock_ps_of(manifest), bounds)
        if decode_latency_plot(ops, (rep["scenario"] or {}).get("seq", 0), Path(run_dir) / "plots" / DECODE_PLOT):
            rep["plots"]["written"].append(DECODE_PLOT)  # a generate run (results.decode_plot)
    return rep


def roofline_split(ops, gpu: dict) -> dict:
    """A GPU baseline's time split by which roof bounds each op (compute: FLOPs at the achieved
    peak; memory: bytes at the achieved bandwidth; launch: ops with neither) - from its config."""
    import numpy as np

    macs = ops.column("macs").to_numpy().astype(np.float64)
    nbytes = ops.column("bytes").to_numpy().astype(np.float64)
    dur = (ops.column("end_ps").to_numpy() - ops.column("start_ps").to_numpy()).astype(np.float64)
    compute = 2 * macs / (gpu["peak_flops_per_s"] * gpu.get("compute_efficiency", 1.0))
    memory = nbytes / (gpu["hbm_bytes_per_s"] * gpu.get("memory_efficiency", 1.0))
    total = float(dur.sum()) or 1.0
    out = {"device": gpu.get("name"), "compute_bound_share": float(dur[(compute >= memory) & (macs > 0)].sum() / total),
           "memory_bound_share": float(dur[(memory > compute)].sum() / total)}
    out["other_share"] = max(0.0, 1.0 - out["compute_bound_share"] - out["memory_bound_share"])
    return out


def what_bounds(rep: dict) -> str:
    """One phrase: what bounds this run's step."""
    if rep.get("roofline"):
        r = rep["roofline"]
        return (f"{r['device']} roofline, ops in series: {r['memory_bound_share']:.0%} of its time in memory-bound "
                f"ops, {r['compute_bound_share']:.0%} in compute-bound ones")
    cp = (rep.get("bounds") or {}).get("critical_path")
    if not cp:
        return "no ops to tell"
    names = {"hbm": "HBM access", "program": "ReRAM programming"}
    top = max([(names.get(k, f"{k} compute"), v) for k, v in cp["compute_ps"].items()]
              + [(_transfer_label(cp), cp["transfer_ps"])], key=lambda kv: kv[1])
    return f"critical path {top[1] / (cp['step_ps'] or 1):.0%} {top[0]}" + ("" if cp["exact"] else " (inferred)")


def _transfer_label(cp: dict) -> str:
    """What the path's gaps are: NoC or stub transfers, or (no transport) waits between ops."""
    return "gaps between ops" if cp["transfer"] == "gap" else f"{cp['transfer']} transfer"


def _ms(ps) -> str:
    return f"{ps / 1e9:.4g} ms"


def format_bounds(b: dict | None) -> list[str]:
    """What bounds the step, in words: the critical path's split, busiest units, packet split."""
    if not b:
        return []
    cp, lines = b["critical_path"], []
    step = cp["step_ps"] or 1
    how = "through the op graph" if cp["exact"] else ("inferred from the timeline (no op graph: it may pass "
                                                      "through ops that only ended in time)")
    label = {"reram": "ReRAM compute", "program": "ReRAM programming", "systolic": "systolic compute",
             "vector": "vector compute", "hbm": "HBM access", "other": "other"}
    if cp["transfer"] == "gap":  # a GPU baseline: one device, the classes are op kinds
        label = {"reram": "static-weight matmuls", "program": "weight writes", "systolic": "dynamic matmuls",
                 "vector": "vector ops", "hbm": "memory ops", "other": "other"}
    parts = [(label.get(k, k), v) for k, v in cp["compute_ps"].items()]
    parts += [(_transfer_label(cp), cp["transfer_ps"]), ("idle before the first op", cp["idle_before_first_op_ps"])]
    lines.append(f"what bounds the step: critical path {how}, {cp['ops']:,} ops, {_ms(cp['path_ps'])}:")
    lines.append("    " + "; ".join(f"{n} {_ms(v)} ({v / step:.1%})" for n, v in parts if v or "idle" not in n))
    name = cp["bound"]
    lines.append(f"    bound: {name} ({'data movement' if name in ('noc', 'stub', 'transfer') else 'compute'} "
                 f"dominates the path; {cp['waits_for_a_busy_unit']:,} of its ops waited for a busy unit)")
    edges = cp.get("transfer_ps_by_edge") or {}
    if edges:
        lines.append(f"    {cp['transfer']} transfer on the path, by producer -> consumer: " + "; ".join(
            f"{k} {_ms(v)}" for k, v in list(edges.items())[:4]))
    units = b.get("busiest_units") or {}
    if units:
        lines.append("busiest unit of each kind (occupied share of the step; mean over units that ran):")
        lines += [f"    {k:<14} {u['unit']:<22} {u['utilisation']:7.1%}  (mean {u['mean_utilisation']:.1%} over "
                  f"{u['units']} units)" for k, u in units.items()]
    pk = b.get("packets") or {}
    if "source_queue_mean_ps" in pk:
        lines.append(f"packet latency = source queueing {pk['source_queue_mean_ps'] / 1e6:.4g} us + network "
                     f"{pk['network_mean_ps'] / 1e6:.4g} us (mean; queueing {pk['source_queue_share']:.1%} "
                     "of the total)")
        lines.append(f"    bottleneck: {_node(pk, 'bottleneck_source')}'s injection queue holds "
                     f"{pk['bottleneck_source_queue_share']:.1%} of all queueing time "
                     f"({pk['bottleneck_source_packets_share']:.1%} of the packets)")
        lines += ni_limit_lines(pk)
    if "busiest_link" in pk:
        bl = pk["busiest_link"]
        lines.append(f"    busiest link: router {bl['router']} port {bl['port']} ({bl['class']}), "
                     f"{bl['utilisation']:.1%} of the step's cycles carry a flit")
    layers = b.get("layers") or {}
    if layers:
        seen = {k for row in layers.values() for k in row if k.endswith("_span_ps")}
        phases = [f"{p}_span_ps" for p in ("fwd", "bwd", "update") if f"{p}_span_ps" in seen]
        phases += sorted(seen - set(phases))
        lines.append("per layer, compute spans (ms; HBM prefetches excluded): "
                     + "  ".join(f"{p[:-8]:>9}" for p in phases) + "  busy* (all ops)")
        lines += [f"    {name:<6}{'':<46} " + "  ".join(f"{row[p] / 1e9:>9.4g}" if p in row else f"{'-':>9}"
                                                    for p in phases)
                  + f"  {row['busy_ps_summed_over_cores'] / 1e9:>9.4g}" for name, row in layers.items()]
    kinds = b.get("kinds_explained") or {}
    if kinds:
        lines.append("op kinds:")
        lines += [f"    {k:<10} {v}" for k, v in kinds.items()]
    lines.append(b["busy_explained"])
    return lines


def _fmt(v, unit: str = "", digits: int = 4) -> str:
    if v is None:
        return "absent"
    if isinstance(v, float):
        return f"{v:.{digits}g}{unit}"
    return f"{v:,}{unit}"


def format_report(rep: dict) -> list[str]:
    s = rep["summary"]
    title = f"run {rep['run_dir']} ({rep['status']}" + (f", baseline {rep['baseline']}" if rep["baseline"] else "") + ")"
    lines = [title]
    if rep.get("scenario"):
        sc = rep["scenario"]
        lines.append("scenario " + ", ".join(f"{k}={sc[k]}" for k in ("name", "model", "mode", "seq", "batch")
                                             if sc.get(k) not in (None, "")))
    if s.get("absent_tables"):
        lines.append("absent tables: " + ", ".join(s["absent_tables"]))
    if "step_latency_ps" in s:
        lines += [
            f"step latency   {_fmt(s['step_latency_ps'], ' ps')} = {_fmt(s['step_latency_ms'], ' ms')}",
            f"tokens/s       {_fmt(s.get('tokens_per_s'))} ({_fmt(s.get('tokens'))} tokens)",
        ]
    if "energy_pj" in s:
        lines += [
            f"energy         {_fmt(s['energy_pj'], ' pJ')} = {_fmt(s['energy_j'], ' J')}"
            + (f" (ops {_fmt(s.get('ops_energy_pj'), ' pJ')}, NoC {_fmt(s.get('noc_energy_pj'), ' pJ')})"
               if "noc_energy_pj" in s and "ops_energy_pj" in s else ""),
            f"energy/token   {_fmt(s.get('energy_per_token_pj'), ' pJ')} = {_fmt(s.get('energy_per_token_j'), ' J')}",
            f"EDP            {_fmt(s.get('edp_j_s'), ' J*s')}",
        ]
    lines += format_decode(s)  # a generate run's TTFT, per-token latency and bound
    if "ops" in s:
        lines.append(f"ops            {_fmt(s['ops'])}, MACs {_fmt(s.get('macs'))}, busy {_fmt(s.get('ops_busy_ps'), ' ps')}")
    for by, groups in (rep.get("breakdown") or {}).items():
        lines.append(f"by {by}:  {'':<12} {'ops':>8} {'span ms':>10} {'busy ms*':>10} {'energy J':>10} {'share':>6}")
        lines += [f"    {name:<18} {g['ops']:>8,} {g['span_ps'] / 1e9:>10.4g} {g['busy_ps'] / 1e9:>10.4g} "
                  f"{g['energy_pj'] / 1e12:>10.4g} {100 * g['energy_share']:>5.1f}%" for name, g in groups.items()]
    if "reram_write_ops" in s:
        lines.append(f"ReRAM writes   {s['reram_write_ops']:,} programming ops, {_fmt(s['reram_write_busy_ps'], ' ps')} "
                     f"busy, {_fmt(s['reram_write_energy_pj'], ' pJ')}")
    elif "ops" in s:
        lines.append("ReRAM writes   none")
    if "packets" in s:
        lines.append(f"NoC packets    {s['packets']:,}" + (f" (sampled at {s['packet_sampling_rate']})"
                                                          if "packet_sampling_rate" in s else ""))
        if "packet_latency_mean_ps" in s:
            lines.append(f"packet latency mean {_fmt(s['packet_latency_mean_ps'], ' ps')}, p50 "
                         f"{_fmt(s['packet_latency_p50_ps'], ' ps')}, p99 {_fmt(s['packet_latency_p99_ps'], ' ps')}, "
                         f"max {_fmt(s['packet_latency_max_ps'], ' ps')}")
    else:
        lines.append("NoC packets    absent")
    classes = [k[: -len("_link_utilisation_mean")] for k in s if k.endswith("_link_utilisation_mean")]
    for c in classes:
        lines.append(f"{c + ' links':<14} {s[c + '_links']:>5} utilisation mean {s[c + '_link_utilisation_mean']:.4f}"
                     f" max {s[c + '_link_utilisation_max']:.4f}, energy {_fmt(s[c + '_link_energy_pj'], ' pJ')}")
    lines += system_lines(s, (rep.get("config") or {}).get("system"))
    if "rounds" in s:
        lines.append(f"execution      {s['rounds']:,} rounds, {s['events']:,} events, {s['messages']:,} messages, "
                     f"sync share {100 * s['sync_share']:.1f}%")
    lines += format_bounds(rep.get("bounds"))
    if rep.get("plots"):
        p = rep["plots"]
        lines.append(f"plots          {', '.join(p['written']) or 'none'} in {p['dir']}")
    return lines


# --- compare -------------------------------------------------------------------------------------
def _ratio(num, den):
    if num is None or den is None or den == 0:
        return None
    return float(num) / float(den)


def _group_ratios(a: dict | None, b: dict | None, time_key: str) -> dict:
    """B/A per group present in both; ``time_key`` is ``span_ps`` for phases (contiguous stretches
    of the step) and ``busy_ps`` for op kinds and tiers (whose ops interleave over the whole step)."""
    a, b = a or {}, b or {}
    both = [k for k in a if k in b]
    return {"time_basis": time_key,
            "ratios": {k: {"time_ratio": _ratio(b[k][time_key], a[k][time_key]),
                           "energy_ratio": _ratio(b[k]["energy_pj"], a[k]["energy_pj"])} for k in both},
            "only_in_a": [k for k in a if k not in b], "only_in_b": [k for k in b if k not in a]}


def _workload(rep: dict) -> tuple | None:
    sc = rep.get("scenario")
    if not isinstance(sc, dict):
        return None
    return tuple(sc.get(k) for k in ("model", "mode", "seq", "batch", "finetune", "lora_rank"))


def compare_runs(dir_a: str | os.PathLike, dir_b: str | os.PathLike, allow_incomplete: bool = False,
                 deps_of=None) -> dict:
    """A's advantage over B (ratios > 1 mean A is faster / more efficient); ``deps_of`` as for
    :func:`build_report`, so each side's bound follows its op graph."""
    from atleus_dist.kernel.errors import ConfigError

    ra = build_report(dir_a, allow_incomplete, field="dir_a", deps_of=deps_of)
    rb = build_report(dir_b, allow_incomplete, field="dir_b", deps_of=deps_of)
    sa, sb = ra["summary"], rb["summary"]
    for name, s in (("dir_a", sa), ("dir_b", sb)):
        if "step_latency_ps" not in s:
            raise ConfigError(name, "run has no ops table, so no step latency to compare")
    warnings = []
    wa, wb = _workload(ra), _workload(rb)
    if wa is None or wb is None:
        warnings.append("a run has no scenario in its manifest; cannot check both ran the same workload")
    elif wa != wb:
        warnings.append(f"different workloads: {wa} vs {wb}")
    per_token = sa.get("tokens") and sb.get("tokens") and sa["tokens"] != sb["tokens"]
    if per_token:
        warnings.append(f"different token counts ({sa['tokens']} vs {sb['tokens']}): ratios use tokens/s and "
                        "energy per token")
        speedup = _ratio(sa.get("tokens_per_s"), sb.get("tokens_per_s"))
    else:
        speedup = _ratio(sb["step_latency_ps"], sa["step_latency_ps"])
    if sa.get("energy_per_token_pj") is not None and sb.get("energy_per_token_pj") is not None:
        eff = _ratio(sb["energy_per_token_pj"], sa["energy_per_token_pj"])
    else:
        eff = None if per_token else _ratio(sb.get("energy_pj"), sa.get("energy_pj"))
    edp_a = None if sa.get("edp_pj_s") is None else sa["edp_pj_s"] / (sa["tokens"] ** 2 if per_token else 1)
    edp_b = None if sb.get("edp_pj_s") is None else sb["edp_pj_s"] / (sb["tokens"] ** 2 if per_token else 1)
    ba, bb = ra["breakdown"] or {}, rb["breakdown"] or {}
    return {
        "a": ra["run_dir"], "b": rb["run_dir"], "baseline_a": ra["baseline"], "baseline_b": rb["baseline"],
        "speedup": speedup, "energy_efficiency_ratio": eff, "edp_ratio": _ratio(edp_b, edp_a),
        "step_latency_ps_a": sa["step_latency_ps"], "step_latency_ps_b": sb["step_latency_ps"],
        "energy_pj_a": sa.get("energy_pj"), "energy_pj_b": sb.get("energy_pj"),
        "tokens_a": sa.get("tokens"), "tokens_b": sb.get("tokens"),
        "phase": _group_ratios(ba.get("phase"), bb.get("phase"), "span_ps"),
        "kind": _group_ratios(ba.get("kind"), bb.get("kind"), "busy_ps"),
        "tier": _group_ratios(ba.get("tier"), bb.get("tier"), "busy_ps"),
        "warnings": warnings,
        "explanation": _explain(ra, rb, speedup, eff),
        "decode": compare_decode(sa, sb),
    }


def _explain(ra: dict, rb: dict, speedup, eff) -> list[str]:
    """The ratios in words: which side is faster and more efficient, and what bounds each."""
    out = []
    if speedup is not None:
        faster, slower, r = ("A", "B", speedup) if speedup >= 1 else ("B", "A", 1 / speedup)
        out.append(f"{faster} is {r:.3g}x faster than {slower} (ratio > 1 means A wins).")
    if eff is not None:
        better, worse, r = ("A", "B", eff) if eff >= 1 else ("B", "A", 1 / eff)
        out.append(f"{better} uses {r:.3g}x less energy per token than {worse}.")
    out.append(f"A is bound by: {what_bounds(ra)}.")
    out.append(f"B is bound by: {what_bounds(rb)}.")
    return out


def format_compare(c: dict) -> list[str]:
    def x(v):
        return "n/a" if v is None else f"{v:.3g}x"

    name_a = c["a"] + (f" [{c['baseline_a']}]" if c["baseline_a"] else "")
    name_b = c["b"] + (f" [{c['baseline_b']}]" if c["baseline_b"] else "")
    lines = [f"A = {name_a}", f"B = {name_b}",
             f"step latency  A {c['step_latency_ps_a'] / 1e9:.4g} ms, B {c['step_latency_ps_b'] / 1e9:.4g} ms",
             f"speed-up of A over B            {x(c['speedup'])}",
             f"energy efficiency of A over B   {x(c['energy_efficiency_ratio'])}",
             f"EDP improvement of A over B     {x(c['edp_ratio'])}"]
    for by in ("phase", "kind", "tier"):
        g = c[by]
        if g["ratios"]:
            basis = "span" if g["time_basis"] == "span_ps" else "busy"
            lines.append(f"by {by} (B/A, {basis} time):   " + "; ".join(f"{k}: time {x(r['time_ratio'])}, energy {x(r['energy_ratio'])}"
                                                     for k, r in g["ratios"].items()))
        if g["only_in_a"] or g["only_in_b"]:
            lines.append(f"    only in A: {', '.join(g['only_in_a']) or '-'}; only in B: {', '.join(g['only_in_b']) or '-'}")
    lines += format_compare_decode(c.get("decode"))
    lines += c.get("explanation", [])
    lines += [f"warning: {w}" for w in c["warnings"]]
    return lines


def ni_limit_lines(pk: dict) -> list[str]:
    """Say whether an NI (one flit a cycle each way) sets the pace while the bottleneck source's
    queue holds packets: its own injection, or the ejection of the router its traffic goes to."""
    if "bottleneck_target_node" not in pk:
        return []
    src, dst = _node(pk, "bottleneck_source"), _node(pk, "bottleneck_target")
    inj, ej = pk["bottleneck_source_injection_share"], pk["bottleneck_target_ejection_share"]
    if pk["injection_limits"]:
        verdict = f"{src}'s injection LIMITS"
    elif pk["ejection_limits"]:
        verdict = f"{dst}'s ejection LIMITS"
    else:
        verdict = "no NI is saturated (the network or the producers' timing sets the pace)"
    return [f"    while its queue holds packets, {src} injects a flit in {inj:.0%} of the cycles and "
            f"{dst} (where most of its flits go) ejects one in {ej:.0%}: {verdict}"]


def _node(pk: dict, key: str) -> str:
    """A node of the packet split as the report names it (``node_fields``' label)."""
    return pk.get(f"{key}_label") or f"node {pk[f'{key}_node']}"

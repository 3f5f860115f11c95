"""What bounds the step: the critical path against hand-made timelines (closed forms), its parts
summing to the step, packet latency split, and the report/plots of a real run."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from atleus_dist.results.critical import busiest_units, critical_path, packet_split

KINDS = {0: "static_mm", 1: "dynamic_mm", 2: "vector", 3: "hbm_read", 4: "hbm_write", 5: "program"}


def _ops(rows):
    """rows: (op, tier, core, kind, start, end)."""
    cols = list(zip(*rows))
    return pa.table({"op": np.array(cols[0], dtype=np.int64), "tier": np.array(cols[1], dtype=np.int32),
                     "core": np.array(cols[2], dtype=np.int32), "kind": np.array(cols[3], dtype=np.int8),
                     "start_ps": np.array(cols[4], dtype=np.int64), "end_ps": np.array(cols[5], dtype=np.int64)})


def test_chain_with_transfers_and_a_unit_wait():
    # 0 (HBM read, 0-10) -> 1 (ReRAM on core 0, 15-40: 5 ps transfer) -> 3 (vector on core 64,
    # 50-60: 10 ps transfer); 2 (dynamic on core 64, 20-50) holds that core, so 3 waits for it.
    # 2 depends on 0 (10 ps transfer). Path: 0 -> 2 -> 3 (unit wait), not through 1.
    ops = _ops([(0, 4, -1, 3, 0, 10), (1, 0, 0, 0, 15, 40), (2, 4, 64, 1, 20, 50), (3, 4, 64, 2, 50, 60)])
    deps = [(), (0,), (0,), (1,)]
    cp = critical_path(ops, KINDS, deps, "noc")
    assert cp["exact"] and cp["ops"] == 3 and cp["waits_for_a_busy_unit"] == 1
    assert cp["compute_ps"] == {"reram": 0, "systolic": 30, "vector": 10, "hbm": 10}
    assert cp["transfer_ps"] == 10 and cp["idle_before_first_op_ps"] == 0
    assert cp["path_ps"] == cp["step_ps"] == 60 and cp["bound"] == "systolic"
    # without the unit conflict (3 on another core) the path follows its data: 0 -> 1 -> 3
    ops = _ops([(0, 4, -1, 3, 0, 10), (1, 0, 0, 0, 15, 40), (2, 4, 64, 1, 20, 50), (3, 4, 65, 2, 50, 60)])
    cp = critical_path(ops, KINDS, deps, "noc")
    assert cp["compute_ps"]["reram"] == 25 and cp["transfer_ps"] == 5 + 10 and cp["ops"] == 3
    assert cp["bound"] == "reram"
    # the gaps by what the path waited for: 0 -> 1 is HBM data for ReRAM, 1 -> 3 ReRAM's for a vector op
    assert cp["transfer_ps_by_edge"] == {"reram -> vector": 10, "hbm -> reram": 5}


def test_inferred_path_without_deps_still_sums_to_the_step():
    rng = np.random.default_rng(3)
    rows = []
    for i in range(200):
        start = int(rng.integers(0, 5000))
        rows.append((i, int(rng.integers(0, 5)), int(rng.integers(0, 8)), int(rng.integers(0, 6)), start,
                     start + int(rng.integers(0, 300))))
    ops = _ops(rows)
    cp = critical_path(ops, KINDS, None)
    assert not cp["exact"]
    assert sum(cp["compute_ps"].values()) + cp["transfer_ps"] + cp["idle_before_first_op_ps"] == cp["step_ps"]


def test_busiest_units_use_the_union_of_overlapping_ops():
    # core 0 runs two weights at once (0-10 and 5-20): occupied 20 of the 40 ps step, not 25
    ops = _ops([(0, 0, 0, 0, 0, 10), (1, 0, 0, 0, 5, 20), (2, 4, 64, 1, 0, 40)])
    u = busiest_units(ops, KINDS, {0: "reram0", 4: "systolic0"})
    assert u["reram core"]["occupied_ps"] == 20 and u["reram core"]["utilisation"] == pytest.approx(0.5)
    assert u["systolic core"]["unit"] == "systolic0 core 64" and u["systolic core"]["utilisation"] == 1.0


def test_packet_split_names_the_queueing_router():
    pk = pa.table({"src": [64, 64, 3], "dest": [0, 1, 64], "ctime_cycle": [0, 0, 0], "itime_cycle": [10, 30, 0],
                   "atime_cycle": [15, 35, 6]})
    s = packet_split(pk, None, 1000, None, {})
    assert s["source_queue_mean_ps"] == pytest.approx(40_000 / 3)
    assert s["network_mean_ps"] == pytest.approx(16_000 / 3)
    assert s["bottleneck_source_router"] == 64 and s["bottleneck_source_queue_share"] == 1.0
    assert s["bottleneck_source_label"] == "router 64's core"  # no HBM routers, no controllers given


def test_packet_split_tells_a_controller_from_its_routers_core():
    """Nodes n_routers + r are router r's memory controller NI: its queue is not r's core's."""
    pk = pa.table({"src": [80 + 64, 80 + 64, 64], "dest": [0, 1, 3], "ctime_cycle": [0, 0, 0],
                   "itime_cycle": [10, 30, 1], "atime_cycle": [15, 35, 6]})
    s = packet_split(pk, None, 1000, None, {}, n_routers=80, hbm_routers=[64], controllers=True)
    assert (s["bottleneck_source_node"], s["bottleneck_source_router"]) == (144, 64)
    assert s["bottleneck_source_is_hbm_port"] and s["bottleneck_source_label"] == "router 64's memory controller"
    assert s["bottleneck_source_packets_share"] == pytest.approx(2 / 3)
    core = packet_split(pk.slice(2), None, 1000, None, {}, n_routers=80, hbm_routers=[64], controllers=True)
    assert core["bottleneck_source_node"] == 64 and not core["bottleneck_source_is_hbm_port"]
    old = packet_split(pk.slice(2), None, 1000, None, {}, hbm_routers=[64])  # a run without controllers
    assert old["bottleneck_source_is_hbm_port"] and old["bottleneck_source_label"] == "router 64 (an HBM port)"


def _pk(rows):
    cols = ("src", "dest", "ctime_cycle", "itime_cycle", "atime_cycle", "flits")
    return pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)})


def test_ni_limits_tell_injection_from_ejection():
    """One flit a cycle is an NI's capacity. A: router 64 injects 4-flit packets back to back
    while its queue holds them - its injection limits. B: router 64's packets wait but leave one
    every 16 cycles while router 1, where they go, ejects a flit every cycle (router 5 floods it)
    - router 1's ejection limits. C: one packet waits a little, nothing is busy - neither."""
    from atleus_dist.results.report import ni_limit_lines

    a = packet_split(_pk([(64, 1, 0, 4 * i, 4 * i + 6, 4) for i in range(10)]), None, 1000, None, {})
    assert a["bottleneck_source_injection_share"] == 1.0 and a["injection_limits"] and not a["ejection_limits"]
    assert "router 64's core's injection LIMITS" in ni_limit_lines(a)[0]
    flood = [(5, 1, 4 * i - 2, 4 * i - 2, 4 * i, 4) for i in range(1, 40)]
    b = packet_split(_pk([(64, 1, 0, 16 * i, 16 * i + 6, 4) for i in range(10)] + flood), None, 1000, None, {})
    assert b["bottleneck_source_router"] == 64 and b["bottleneck_target_router"] == 1
    assert b["bottleneck_source_injection_share"] == pytest.approx(36 / 144)
    assert b["ejection_limits"] and not b["injection_limits"]
    assert "router 1's core's ejection LIMITS" in ni_limit_lines(b)[0]
    c = packet_split(_pk([(64, 1, 0, 0, 6, 4), (64, 2, 0, 100, 106, 4)]), None, 1000, None, {})
    assert not c["injection_limits"] and not c["ejection_limits"]
    assert "no NI is saturated" in ni_limit_lines(c)[0]


def test_report_of_a_stub_run_explains_the_step(tmp_path, cli):
    out = tmp_path / "r"
    code, _, err = cli("run", "--set", "scenario.seq=32", "--transport", "stub", "--backend", "inline",
                       "--workers", "1", "--quiet", "--out", str(out), "--json")
    assert code == 0, err
    code, rep, err = cli("report", str(out), "--json")
    assert code == 0, err
    b = rep["bounds"]
    cp = b["critical_path"]
    assert cp["exact"]  # the op graph was rebuilt from the manifest
    assert cp["path_ps"] == cp["step_ps"] == rep["summary"]["step_latency_ps"]
    assert cp["transfer"] == "stub" and set(b["busiest_units"]) == {"reram core", "systolic core", "hbm"}
    assert "static_mm" in b["kinds_explained"] and "balance" in b["balance_explained"]
    assert {"critical_path.png", "energy_breakdown.png", "timeline.png"} <= set(rep["plots"]["written"])
    code, _, err = cli("report", str(out), "--no-plots")
    assert code == 0


def test_report_rebuilds_the_graph_of_a_run_with_chip_overrides(tmp_path, cli):
    """The manifest records the chip as ``chip``; the rebuild must map on that chip, not the
    default one (whose graph has other ops: the report fell back to the inferred path)."""
    out = tmp_path / "r"
    code, _, err = cli("run", "--set", "scenario.seq=32", "--set", "reram_stages_per_layer=2", "--set",
                       "reram.xbar_rows=64", "--transport", "stub", "--backend", "inline", "--workers", "1",
                       "--quiet", "--out", str(out))
    assert code == 0, err
    code, rep, err = cli("report", str(out), "--json", "--no-plots")
    assert code == 0, err
    cp = rep["bounds"]["critical_path"]
    assert cp["exact"] and cp["path_ps"] == cp["step_ps"] == rep["summary"]["step_latency_ps"]


def test_gpu_baseline_path_is_its_ops_in_series(tmp_path, cli):
    """Ops in series on one device (zero-length ones included): the path is every op, no gaps."""
    out = tmp_path / "gpu"
    code, _, err = cli("baseline", "gpu", "gpt2-medium-lora32-s1024", "--seq", "64", "--out", str(out), "--json")
    assert code == 0, err
    code, rep, err = cli("report", str(out), "--json", "--no-plots")
    assert code == 0, err
    cp = rep["bounds"]["critical_path"]
    assert cp["exact"] and cp["transfer_ps"] == 0 and cp["ops"] == rep["summary"]["ops"]
    assert cp["waits_for_a_busy_unit"] == cp["ops"] - 1
    assert rep["roofline"]["memory_bound_share"] + rep["roofline"]["compute_bound_share"] <= 1 + 1e-9


def test_report_of_a_noc_run_splits_packet_latency(tmp_path, cli):
    out = tmp_path / "noc"
    code, _, err = cli("run", "--set", "scenario.seq=32", "--backend", "inline", "--workers", "1", "--quiet",
                       "--out", str(out), "--json")
    assert code == 0, err
    code, rep, err = cli("report", str(out), "--json", "--no-plots")
    assert code == 0, err
    b, s = rep["bounds"], rep["summary"]
    cp, pk = b["critical_path"], b["packets"]
    assert cp["exact"] and cp["transfer"] == "noc" and cp["path_ps"] == cp["step_ps"] == s["step_latency_ps"]
    assert cp["transfer_ps"] > 0
    # queueing + network is the whole packet latency (created -> tail arrived)
    assert pk["source_queue_mean_ps"] + pk["network_mean_ps"] == pytest.approx(s["packet_latency_mean_ps"], rel=1e-9)
    assert pk["bottleneck_source_is_hbm_port"]  # the step's queueing is at the memory controllers
    assert pk["bottleneck_source_node"] >= 80 and pk["bottleneck_source_label"].endswith("memory controller")
    assert 0 < pk["busiest_link"]["utilisation"] <= 1

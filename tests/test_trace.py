"""``atleus-dist trace``: a Chrome trace-event JSON file of a run (results/trace.py). The file
parses and every event has the fields the format gives its phase (a JSON schema); every op row is
one slice with exactly its start and duration; every track is named and holds no overlapping
slices (the format only nests them); the critical path's arrows join real slices; the file stays
bounded (counters binned, packets capped)."""

from __future__ import annotations

import gzip
import json
import random
from decimal import Decimal

import jsonschema
import pytest

from atleus_dist.results import read_table
from atleus_dist.results.trace import binned_rate, lanes, us

import numpy as np

_NUM = {"type": "number"}
_ID = {"type": "integer"}
SCHEMA = {  # the trace-event format's JSON object form, the phases this file uses
    "type": "object",
    "required": ["traceEvents"],
    "properties": {
        "displayTimeUnit": {"enum": ["ms", "ns"]},
        "traceEvents": {"type": "array", "items": {"oneOf": [
            {"type": "object", "required": ["ph", "name", "cat", "ts", "dur", "pid", "tid"],
             "properties": {"ph": {"const": "X"}, "name": {"type": "string"}, "cat": {"type": "string"},
                            "ts": {**_NUM, "minimum": 0}, "dur": {**_NUM, "minimum": 0}, "pid": _ID, "tid": _ID,
                            "args": {"type": "object"}}},
            {"type": "object", "required": ["ph", "name", "pid", "args"],
             "properties": {"ph": {"const": "M"}, "pid": _ID, "tid": _ID,
                            "name": {"enum": ["process_name", "process_sort_index", "thread_name",
                                              "thread_sort_index"]},
                            "args": {"type": "object", "minProperties": 1, "maxProperties": 1}}},
            {"type": "object", "required": ["ph", "name", "pid", "ts", "args"],
             "properties": {"ph": {"const": "C"}, "name": {"type": "string"}, "pid": _ID, "ts": _NUM,
                            "args": {"type": "object", "minProperties": 1, "additionalProperties": _NUM}}},
            {"type": "object", "required": ["ph", "name", "cat", "id", "pid", "tid", "ts"],
             "properties": {"ph": {"enum": ["s", "f"]}, "id": _ID, "pid": _ID, "tid": _ID, "ts": _NUM,
                            "bp": {"const": "e"}, "name": {"type": "string"}, "cat": {"type": "string"}}},
        ]}},
    },
}


@pytest.fixture
def chip_run(small_chip_run):
    return small_chip_run


def _load(path, exact: bool = False) -> dict:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return json.loads(raw, parse_float=Decimal if exact else float)


def test_times_are_exact_decimal_microseconds():
    assert [us(p) for p in (0, 1, 301000, 10**6, 35325815000, -1)] == \
        ["0", "0.000001", "0.301", "1", "35325.815", "-0.000001"]
    rng = random.Random(5)
    for p in [rng.randrange(0, 10**15) for _ in range(2000)]:
        assert Decimal(us(p)) * 10**6 == p  # exact: two different ps never print the same


def test_lanes_never_overlap_and_rates_keep_their_total():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 1000, 300)
    e = s + rng.integers(0, 50, 300)
    lane = lanes(s, e)
    for k in np.unique(lane):
        o = np.argsort(s[lane == k], kind="stable")
        ss, ee = s[lane == k][o], e[lane == k][o]
        assert (ss[1:] >= ee[:-1]).all()
    edges = np.array([0, 250, 500, 1100])
    amount = rng.integers(1, 100, 300)
    got = binned_rate(s, e, amount, edges)
    assert got.sum() == pytest.approx(amount.sum())
    assert binned_rate(np.array([0]), np.array([100]), np.array([10]), np.array([0, 50, 100])).tolist() == [5, 5]


def test_the_trace_of_a_run(chip_run, cli):
    out = chip_run / "t.json"
    code, info, err = cli("trace", str(chip_run), "--out", str(out), "--json")
    assert code == 0, err
    doc = _load(out)
    jsonschema.validate(doc, SCHEMA)
    events = doc["traceEvents"]
    ops = read_table(chip_run, "ops").to_pydict()
    exact = _load(out, exact=True)["traceEvents"]
    slices = {e["args"]["op"]: e for e in exact if e["ph"] == "X" and e["cat"] != "packet"}
    assert len(slices) == len(ops["op"]) == info["slices"]  # every op row one slice
    for op, s, e in zip(ops["op"], ops["start_ps"], ops["end_ps"]):
        ev = slices[op]
        assert ev["ts"] * 10**6 == s and ev["dur"] * 10**6 == e - s, (op, ev)
    # every track named, and a track's slices never overlap (the format only nests them)
    names = {(e["pid"], e.get("tid")) for e in events if e["ph"] == "M" and e["name"].endswith("_name")}
    tracks: dict[tuple, list] = {}
    for e in exact:
        if e["ph"] == "X":
            assert (e["pid"], None) in names and (e["pid"], e["tid"]) in names, e
            tracks.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
    for spans in tracks.values():
        spans.sort()
        assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:]))
    # the critical path's arrows: s and f pair up by id, each inside a slice of its track
    flows = [e for e in exact if e["ph"] in "sf"]
    assert info["flows"] > 0 and len(flows) == 2 * info["flows"] and info["critical_path"]["exact"]
    for e in flows:
        assert any(a <= e["ts"] <= b for a, b in tracks[(e["pid"], e["tid"])]), e
    assert sorted(e["id"] for e in flows if e["ph"] == "s") == sorted(e["id"] for e in flows if e["ph"] == "f")
    # counters: bounded by the bins, named series, HBM and NoC both present
    counters = {}
    for e in events:
        if e["ph"] == "C":
            counters.setdefault(e["name"], []).append(e)
    assert set(counters) == {"HBM bandwidth (GB/s)", "NoC link use (flits/cycle per link)"}
    assert all(len(v) <= info["bins"] + 1 for v in counters.values())
    packets = [e for e in events if e["ph"] == "X" and e["cat"] == "packet"]
    assert 0 < len(packets) == info["packets"] <= 1000


def test_packets_capped_and_gzip_by_default(chip_run, cli):
    code, info, err = cli("trace", str(chip_run), "--packets", "7", "--json")
    assert code == 0, err
    assert info["path"] == str(chip_run / "trace.json.gz") and info["packets"] == 7
    doc = _load(chip_run / "trace.json.gz")
    assert sum(1 for e in doc["traceEvents"] if e.get("cat") == "packet") == 7


@pytest.mark.parametrize("args,needle", [(["--packets", "-1"], "--packets"), (["--out", "/nonexistent/t.json"], "--out")])
def test_bad_arguments_are_one_line(chip_run, cli, args, needle):
    code, _, err = cli("trace", str(chip_run), *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err


def test_a_run_without_ops_is_refused(tmp_path, cli):
    from tests.conftest import SMALL_PHOLD

    code, _, err = cli("phold", *SMALL_PHOLD, "--backend", "inline", "--out", str(tmp_path / "p"))
    assert code == 0, err
    code, _, err = cli("trace", str(tmp_path / "p"))
    assert code == 2 and "no ops table" in err and len(err.strip().splitlines()) == 1, err

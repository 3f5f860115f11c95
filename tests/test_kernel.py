"""Kernel unit tests: horizons, messages, ordering, causality, validation, layering."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from atleus_dist.kernel import (NEVER_PS, Block, CausalityError, ChannelMap, ConfigError, EventLP,
                                LPGroup, RunSpec, check_time_ps, contiguous_groups, decode_outbox,
                                encode_outbox, global_next, message_dtype, order_index)

PKG = Path(__file__).resolve().parents[1] / "atleus_dist"


def test_horizon_is_min_over_senders_plus_path_lookahead():
    # 0 -> 1 (L=5), 2 -> 1 (L=50), 1 -> 2 (L=7); LP 0 has no in-channel: bounded by end only.
    # LP 1 is also bounded by its own event through the cycle 1 -> 2 -> 1 (57 ps).
    cmap = ChannelMap(3, [(0, 1, 5), (2, 1, 50), (1, 2, 7)])
    nxt = np.array([100, 10, 20], dtype=np.int64)
    assert cmap.horizons(nxt, end_ps=1000).tolist() == [1000, min(100 + 5, 20 + 50, 10 + 57), 10 + 7]
    # an LP with nothing pending imposes nothing (no overflow near NEVER_PS)
    nxt = np.array([NEVER_PS, 10, NEVER_PS], dtype=np.int64)
    assert cmap.horizons(nxt, end_ps=1000).tolist() == [1000, 67, 17]


def test_max_window_caps_every_horizon_from_the_earliest_event():
    cmap = ChannelMap(3, [(0, 1, 5), (2, 1, 50), (1, 2, 7)], max_window_ps=4)
    nxt = np.array([100, 10, 20], dtype=np.int64)
    assert cmap.horizons(nxt, end_ps=1000).tolist() == [14, 14, 14]
    alone = ChannelMap(1, [], max_window_ps=300)  # one LP, no channels: windows of 300 ps, not one round
    assert alone.horizons(np.array([1000], dtype=np.int64), end_ps=10**6).tolist() == [1300]
    assert alone.horizons(np.array([NEVER_PS], dtype=np.int64), end_ps=10**6).tolist() == [10**6]
    for bad in (0, -1, 2.5):
        with pytest.raises(ConfigError, match="max_window_ps"):
            ChannelMap(1, [], max_window_ps=bad)


def test_global_next_includes_messages_in_flight():
    local = np.array([50, NEVER_PS], dtype=np.int64)
    sent = np.array([[NEVER_PS, 30], [NEVER_PS, NEVER_PS]], dtype=np.int64)
    assert global_next(local, sent).tolist() == [50, 30]


@pytest.mark.parametrize("lookahead", [0, -3, 2.5])
def test_lookahead_must_be_positive_integer(lookahead):
    with pytest.raises(ConfigError, match="lookahead_ps"):
        ChannelMap(2, [(0, 1, lookahead)])


def test_channel_endpoints_and_lp_count_validated():
    with pytest.raises(ConfigError, match="lps"):
        ChannelMap(0, [])
    with pytest.raises(ConfigError, match="channel.dst"):
        ChannelMap(2, [(0, 2, 5)])


@pytest.mark.parametrize("value", ["1.5", 1.5, True, None, "abc"])
def test_time_must_be_integer(value):
    with pytest.raises(ConfigError, match="end_ps"):
        check_time_ps("end_ps", value)


def test_encode_decode_roundtrip_with_payloads():
    dt = message_dtype([("flits", "<i4")])
    rows = np.zeros(3, dtype=dt)
    rows["time_ps"] = [5, 3, 9]
    rows["flits"] = [1, 2, 3]
    blocks = {4: [Block("tile", rows, [{"a": 1}, None, [1, 2]])], 1: [Block("x", rows[:1])]}
    back = decode_outbox(encode_outbox(blocks))
    assert sorted(back) == [1, 4]
    assert back[4][0].kind == "tile"
    assert back[4][0].rows.dtype == dt
    assert back[4][0].rows["flits"].tolist() == [1, 2, 3]
    assert back[4][0].payloads == [{"a": 1}, None, [1, 2]]
    assert decode_outbox(b"") == {}


def test_order_index_uses_time_priority_src_seq():
    dt = message_dtype()
    rows = np.zeros(4, dtype=dt)
    rows["time_ps"] = [10, 10, 10, 5]
    rows["priority"] = [1, 0, 0, 9]
    rows["src"] = [0, 2, 1, 0]
    assert order_index(rows).tolist() == [3, 2, 1, 0]


class _Recorder(EventLP):
    def __init__(self, lp_id):
        super().__init__(lp_id, {"m": message_dtype()})
        self.seen = []
        self.handlers["m"] = lambda t, row, payload: self.seen.append((t, row[1], row[2], row[3]))


def _rows(keys):
    rows = np.zeros(len(keys), dtype=message_dtype())
    for i, (t, p, s, q) in enumerate(keys):
        rows[i] = (t, p, s, q, 0, 0)
    return rows


def test_event_lp_order_does_not_depend_on_arrival_order():
    keys = [(7, 0, 3, 1), (7, 0, 1, 5), (3, 1, 9, 0), (7, 0, 1, 2), (3, 0, 9, 1)]
    a, b = _Recorder(0), _Recorder(0)
    a.deliver([Block("m", _rows(keys[:2])), Block("m", _rows(keys[2:]))])
    b.deliver([Block("m", _rows(list(reversed(keys))))])
    a.advance(100)
    b.advance(100)
    assert a.seen == b.seen == sorted(keys)
    assert a.events_committed == 5


def test_causality_violation_is_an_error():
    lp = _Recorder(0)
    lp.advance(50)
    with pytest.raises(CausalityError, match="49 ps"):
        lp.deliver([Block("m", _rows([(49, 0, 0, 0)]))])
    lp.deliver([Block("m", _rows([(50, 0, 0, 0)]))])  # exactly at the horizon is fine


def test_contiguous_groups_and_runspec_validation():
    assert contiguous_groups(5, 2) == [[0, 1, 2], [3, 4]] or contiguous_groups(5, 2) == [[0, 1], [2, 3, 4]]
    assert contiguous_groups(2, 5) == [[0], [1]]
    with pytest.raises(ConfigError, match="workers"):
        contiguous_groups(4, 0)
    with pytest.raises(ConfigError, match="groups"):
        RunSpec(n_lps=3, channels=[], end_ps=10, lp_factory=None, groups=[[0, 1]])
    with pytest.raises(ConfigError, match="end_ps"):
        RunSpec(n_lps=1, channels=[], end_ps=0, lp_factory=None, groups=[[0]])


class _Sender(EventLP):
    """LP 0 sends one message to LP 1 with a lookahead smaller than promised."""

    def __init__(self, lp_id, sink=None):
        super().__init__(lp_id, {"m": message_dtype()})
        self.handlers["m"] = self.on
        if lp_id == 0:
            self.schedule(100, 0, 0, 0, "m", (100, 0, 0, 0, 0, 0))
        else:
            self.schedule(10, 0, 1, 0, "m", (10, 0, 1, 0, 1, 0))
            self.schedule(500, 0, 1, 1, "m", (500, 0, 1, 1, 1, 0))

    def on(self, t, row, payload):
        if self.lp_id == 0:
            self.send(1, "m", (t + 1, 0, 0, 1, 1, 0))  # promised 50 ps of lookahead, gave 1


def test_group_catches_a_lookahead_lie_as_causality_error():
    from atleus_dist.backends import inline

    spec = RunSpec(n_lps=2, channels=[(0, 1, 50)], end_ps=10_000, lp_factory=_Sender,
                   groups=[[0, 1]])
    with pytest.raises(CausalityError):
        inline.run(spec)


def test_lpgroup_without_sinks_runs():
    spec = RunSpec(n_lps=2, channels=[(0, 1, 1)], end_ps=50, lp_factory=_Sender, groups=[[0], [1]])
    g = LPGroup(spec, 1)
    assert g.local_next().tolist() == [10]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_layering_kernel_imports_nothing_above_and_ray_stays_in_its_backend():
    above = ("atleus_dist.backends", "atleus_dist.results", "atleus_dist.hw", "atleus_dist.workload",
             "atleus_dist.run", "atleus_dist.models", "atleus_dist.cli", "ray")
    for path in (PKG / "kernel").glob("*.py"):
        bad = [m for m in _imports(path) if m.startswith(above)]
        assert not bad, f"{path.name} imports {bad}"
    for path in PKG.rglob("*.py"):
        if path.name.startswith("ray") and path.parent.name == "backends":
            continue
        bad = [m for m in _imports(path) if m == "ray" or m.startswith("ray.")]
        assert not bad, f"{path.relative_to(PKG)} imports ray"
    for path in (PKG / "backends").glob("*.py"):
        bad = [m for m in _imports(path) if m.startswith(("atleus_dist.results", "atleus_dist.hw"))]
        assert not bad, f"backends/{path.name} imports {bad}"


def test_horizon_follows_chains_through_idle_lps():
    # 0 -> 1 -> 2, lookahead 10 each. LP 1 has nothing pending, LP 0 has an event at 100:
    # LP 2 must stop at 120 (0 can wake 1, which can then send to 2), not run to the end.
    cmap = ChannelMap(3, [(0, 1, 10), (1, 2, 10)])
    nxt = np.array([100, NEVER_PS, 500], dtype=np.int64)
    assert cmap.horizons(nxt, end_ps=10_000).tolist() == [10_000, 110, 120]
    # a cycle bounds an LP by its own next event: 0 -> 1 -> 0
    cmap = ChannelMap(2, [(0, 1, 7), (1, 0, 5)])
    nxt = np.array([100, NEVER_PS], dtype=np.int64)
    assert cmap.horizons(nxt, end_ps=10_000).tolist() == [112, 107]
    assert cmap.distance_ps[0, 0] == 12


class _Relay(EventLP):
    """LP 0 wakes idle LP 1 late, LP 1 forwards at once to LP 2, which has a far-off event."""

    def __init__(self, lp_id, sink=None):
        super().__init__(lp_id, {"m": message_dtype()})
        self.handlers["m"] = self.on
        self.seen = []
        if lp_id == 0:
            self.schedule(1000, 0, 0, 0, "m", (1000, 0, 0, 0, 0, 0))
        if lp_id == 2:
            self.schedule(50_000, 0, 2, 0, "m", (50_000, 0, 2, 0, 2, 0))

    def on(self, t, row, payload):
        self.seen.append(t)
        if self.lp_id < 2 and len(self.seen) == 1:
            self.send(self.lp_id + 1, "m", (t + 10, 0, self.lp_id, 1, self.lp_id + 1, 0))


def test_a_chain_through_an_idle_lp_is_not_a_causality_error():
    from atleus_dist.backends import inline

    spec = RunSpec(n_lps=3, channels=[(0, 1, 10), (1, 2, 10)], end_ps=100_000, lp_factory=_Relay,
                   groups=[[0], [1], [2]])
    stats = inline.run(spec)
    assert stats.events == 4


def test_small_and_large_horizon_paths_agree():
    """The plain-int path (few LPs) and the numpy path (many) compute the same horizons."""
    from atleus_dist.kernel import channels as ch

    rng = np.random.default_rng(3)
    for trial in range(20):
        n = int(rng.integers(2, 9))
        chans = [(int(a), int(b), int(rng.integers(1, 50))) for a, b in rng.integers(0, n, size=(2 * n, 2))]
        cmap = ChannelMap(n, chans)
        nxt = rng.integers(0, 1000, size=n).astype(np.int64)
        nxt[rng.random(n) < 0.3] = NEVER_PS
        small = cmap.horizons(nxt, 700)
        cmap._small = False
        assert cmap.horizons(nxt, 700).tolist() == small.tolist(), trial
    assert ch.SMALL_LPS >= 8

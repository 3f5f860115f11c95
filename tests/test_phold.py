"""PHOLD end to end: determinism across backends and worker counts, and model sanity."""

from __future__ import annotations

import numpy as np
import pytest

from atleus_dist.results import open as open_run
from atleus_dist.results import read_manifest, read_table
from tests.conftest import SMALL_PHOLD


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from atleus_dist.cli import main

    out = tmp_path_factory.mktemp("phold") / "inline"
    assert main(["phold", *SMALL_PHOLD, "--backend", "inline", "--workers", "1", "--out", str(out)]) == 0
    return out


def test_inline_result_is_plausible_phold(reference):
    events = read_table(reference, "phold_events")
    objects = read_table(reference, "phold_objects")
    man = read_manifest(reference)
    assert man["status"] == "complete"
    n_events = man["figures"]["events"]
    assert events.num_rows == n_events == int(np.sum(objects.column("events").to_numpy()))
    # every committed event lies before the end time and was processed once
    t = events.column("time_ps").to_numpy()
    assert t.max() < 200_000
    keys = set(zip(events.column("obj").to_pylist(), events.column("src").to_pylist(),
                   events.column("src_seq").to_pylist()))
    assert len(keys) == n_events
    # population is conserved: 6 LPs x 16 objects x 2 events, each re-scheduled every
    # lookahead + mean = 2000 ps on average, so about 192 * 200000 / 2000 events
    assert 0.9 * 19_200 < n_events < 1.1 * 19_200
    # remote fraction: about half the events came from another LP
    src_lp = events.column("src").to_numpy() // 16
    dst_lp = events.column("obj").to_numpy() // 16
    assert 0.45 < np.mean(src_lp != dst_lp) < 0.55


@pytest.mark.parametrize("backend,workers", [("inline", 3), ("local", 1), ("local", 2), ("local", 3)])
def test_same_digest_on_every_backend_and_worker_count(reference, tmp_path, cli, digest_of, backend, workers):
    out = tmp_path / "run"
    code, data, err = cli("phold", *SMALL_PHOLD, "--backend", backend, "--workers", str(workers),
                          "--out", str(out), "--json")
    assert code == 0, err
    assert data["groups"] == workers
    assert digest_of(out) == digest_of(reference)


def test_digest_changes_with_the_seed(reference, tmp_path, cli, digest_of):
    args = [a if a != "7" else "8" for a in SMALL_PHOLD]
    out = tmp_path / "seed8"
    assert cli("phold", *args, "--backend", "inline", "--out", str(out))[0] == 0
    assert digest_of(out) != digest_of(reference)


def test_windows_table_and_dataset(reference):
    tables = open_run(reference)
    assert set(tables) == {"phold_events", "phold_objects", "windows"}
    windows = tables["windows"].to_table()
    man = read_manifest(reference)
    assert windows.num_rows == man["figures"]["rounds"] * 6  # one row per LP per round
    assert int(np.sum(windows.column("events").to_numpy())) == man["figures"]["events"]
    assert windows.schema.metadata[b"atleus.table_kind"] == b"execution"


def test_progress_goes_to_stderr_and_json_to_stdout(tmp_path, capsys):
    import json

    from atleus_dist.cli import main

    args = [a for a in SMALL_PHOLD if a != "--quiet"]
    assert main(["phold", *args, "--backend", "inline", "--out", str(tmp_path / "r"), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["events"] > 0
    assert "[phold] sim" in err and "eta" in err


def test_vectorised_phold_equals_one_event_at_a_time(tmp_path):
    """Batching a whole window is exact: the heap-based scalar PHOLD gives the same objects table."""
    from atleus_dist.backends import inline
    from atleus_dist.kernel import RunSpec, contiguous_groups
    from atleus_dist.kernel import LPFactory
    from atleus_dist.models.phold import PholdConfig, PholdLP
    from atleus_dist.models.phold_scalar import ScalarPholdLP
    from atleus_dist.results import SinkFactory, digest

    cfg = PholdConfig(lps=4, objects=8, events_per_object=3, mean_ps=700, lookahead_ps=300,
                      remote=0.3, seed=11, end_ps=60_000)
    digests = []
    for name, factory in (("vec", LPFactory(PholdLP, (cfg,))), ("scalar", LPFactory(ScalarPholdLP, (cfg,)))):
        out = tmp_path / name
        spec = RunSpec(n_lps=cfg.lps, channels=cfg.channels(), end_ps=cfg.end_ps, lp_factory=factory,
                       groups=contiguous_groups(cfg.lps, 2), sink_factory=SinkFactory(str(out)))
        stats = inline.run(spec)
        assert stats.events > 1000
        digests.append(digest(out)[0])
    assert digests[0] == digests[1]

"""Systems of chips against independent closed forms: one off-chip transfer takes latency +
bytes / bandwidth (the PCIe 5.0 x16 preset's published figures, recomputed here), a GPipe pipeline
of p balanced stages and m micro-batches takes (m + p - 1) stage-times (Huang et al. 2019), a ring
all-reduce of S bytes over N chips takes 2 (N - 1) / N S / B + 2 (N - 1) a (Thakur et al. 2005);
the same digest on every partition and backend; one chip unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import atleus_dist.api as A
from atleus_dist.hw.system_lp import SystemChipLP

PCIE5_BYTES_PER_S = 32e9 * 16 * 128 / 130 / 8  # 32 GT/s x 16 lanes, 128b/130b (PCI-SIG PCIe 5.0)
PCIE5_LATENCY_PS = 500_000  # the preset's one-way latency (docs/assumptions.md)
SMALL = {"scenario.seq": 32, "scenario.pipeline_chunk_tokens": 32}


def _run(tmp_path, name, sets, transport="stub", backend="inline", partition=None, workers=None):
    return A.simulate(None, sets=dict(SMALL, **sets), transport=transport, backend=backend, partition=partition,
                      workers=workers, out=tmp_path / name)


def _ops(run) -> dict[str, np.ndarray]:
    """The ops table as arrays (kind and phase as their names)."""
    t = run.table("ops").to_table()
    return {c: np.array(t.column(c).to_pylist()) for c in t.column_names}


def test_one_transfer_takes_latency_plus_bytes_over_bandwidth(tmp_path):
    # inference on 2 stages, one micro-batch: chip 0 sends its last layer's output once
    run = _run(tmp_path, "t", {"system.chips": 2, "scenario.mode": "inference"})
    ops = _ops(run)
    send = np.flatnonzero(ops["kind"] == "link_send")
    recv = np.flatnonzero(ops["kind"] == "link_recv")
    assert len(send) == 1 and len(recv) == 1
    assert ops["chip"][send[0]] == 0 and ops["chip"][recv[0]] == 1
    nbytes = int(ops["bytes"][send[0]])
    assert nbytes == 32 * 1024 * 2  # 32 tokens x d_model 1024 x 16-bit activations
    serialise = ops["end_ps"][send[0]] - ops["start_ps"][send[0]]
    assert serialise == int(np.ceil(nbytes * 1e12 / PCIE5_BYTES_PER_S))
    arrival = ops["start_ps"][recv[0]]
    assert arrival - ops["start_ps"][send[0]] == PCIE5_LATENCY_PS + serialise
    links = run.table("system_links").to_table().to_pylist()
    assert links == [{"chip": 0, "port": 0, "peer": 1, "transfers": 1, "bytes": nbytes, "busy_ps": serialise,
                      "energy_pj": pytest.approx(nbytes * 8 * 1.17)}]


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_pipeline_takes_m_plus_p_minus_1_stage_times(tmp_path, schedule):
    # ViT-B/16: 12 equal layers on 4 stages (3 each; the patch embedding and the 1000-class head are
    # small), forward only: one micro-batch through the pipeline takes p stage-times, m micro-batches
    # m + p - 1 (GPipe; 1F1B orders the same forwards alike)
    common = {"scenario.model": "vit-b-16", "scenario.seq": 197, "scenario.pipeline_chunk_tokens": 197,
              "scenario.mode": "inference", "system.chips": 4, "system.link.preset": "ucie-2.5d",
              "scenario.schedule": schedule}
    p, m = 4, 8
    one = _run(tmp_path, "one", dict(common, **{"scenario.batch": 1}))
    many = _run(tmp_path, "many", dict(common, **{"scenario.batch": m, "scenario.micro_batches": m}))
    ratio = many.figures["step_latency_ps"] / one.figures["step_latency_ps"]
    assert ratio == pytest.approx((m + p - 1) / p, rel=0.03)
    assert many.manifest["config"]["system"]["stages"] == [[0, 3], [3, 6], [6, 9], [9, 12]]
    assert many.figures["pipeline_bubble_share"] == pytest.approx((p - 1) / (m + p - 1), rel=0.05)


def test_ring_allreduce_closed_form(tmp_path):
    # GPT-2 Medium LoRA rank 32 on W_Q and W_V, 4 data-parallel chips, one all-reduce after backward
    n = 4
    run = _run(tmp_path, "ar", {"system.chips": n, "system.data_parallel": n, "scenario.batch": n,
                                "system.allreduce": "after-backward"})
    grad_bytes = 24 * 32 * (1024 + 1024) * 2 * 2  # layers x rank x (d_in + d_out) x targets x 16 bits
    chunk = -(-grad_bytes // n)
    want_ps = 2 * (n - 1) * (PCIE5_LATENCY_PS + np.ceil(chunk * 1e12 / PCIE5_BYTES_PER_S))
    assert 2 * (n - 1) / n * grad_bytes / PCIE5_BYTES_PER_S * 1e12 + 2 * (n - 1) * PCIE5_LATENCY_PS == \
        pytest.approx(want_ps, rel=1e-4)
    ops = _ops(run)
    upd = ops["phase"] == "update"
    for chip in range(n):
        mine = upd & (ops["chip"] == chip)
        sends = mine & (ops["kind"] == "link_send")
        recvs = mine & (ops["kind"] == "link_recv")
        assert sends.sum() == recvs.sum() == 2 * (n - 1)
        assert set(ops["bytes"][sends]) == {chunk}
        took = ops["end_ps"][recvs].max() - ops["start_ps"][sends].min()
        assert took == pytest.approx(want_ps, rel=0.03)
    assert run.figures["allreduce_ps"] == pytest.approx(want_ps, rel=0.03)


def test_same_digest_on_every_partition_and_backend(tmp_path, digest_of):
    sets = {"system.chips": 4, "system.data_parallel": 2, "scenario.batch": 4, "scenario.micro_batches": 2,
            "scenario.schedule": "1f1b"}
    want = digest_of(_run(tmp_path, "single", sets, partition="single").path)
    for name, backend, partition, workers in (("chips2", "local", "chips", 2), ("chips3", "local", "chips", 3),
                                              ("inline", "inline", "chips", 4)):
        run = _run(tmp_path, name, sets, backend=backend, partition=partition, workers=workers)
        assert digest_of(run.path) == want, name
        assert run.manifest["config"]["partition"] == "chips"


def test_flit_noc_system_same_digest_on_chip_partitions(tmp_path, digest_of, monkeypatch):
    sets = {"system.chips": 2, "scenario.seq": 16, "scenario.pipeline_chunk_tokens": 16,
            "scenario.model": "roberta-base", "scenario.mode": "inference", "scenario.batch": 2,
            "scenario.micro_batches": 2}
    one = _run(tmp_path, "n1", sets, transport="noc", partition="single")
    want = digest_of(one.path)
    assert set(one.table("ops").to_table().column("chip").to_pylist()) == {0, 1}
    two = _run(tmp_path, "n2", sets, transport="noc", backend="local", partition="chips", workers=2)
    assert digest_of(two.path) == want
    # the chips' output bounds (the next send, not the next NoC cycle) only widen windows
    monkeypatch.setattr(SystemChipLP, "output_bounds", False)
    plain = _run(tmp_path, "n0", sets, transport="noc", partition="single")
    assert digest_of(plain.path) == want
    assert plain.figures["rounds"] > one.figures["rounds"]  # the bounds widened some windows


# digests of one chip at commit d50c771 (before systems existed): a single chip stays as it was
BEFORE_SYSTEMS = {
    "gpt2-medium-lora32-m8f4": "9693f18a3427e624917dce0f544f780cb97ac640498edf8a0367e2f0087f7442",
    "bert-large-lora32-s512": "72d66089e6f166fec04253c9bc4eda63e5648ec28dea8f6b574b403785dce392",
    "roberta-base-lora32-s512": "51f6a538ece2af9ba47817c598b0869f3db4ea1079889eac6b185566d7dfb987",
}


@pytest.mark.parametrize("scenario", sorted(BEFORE_SYSTEMS))
def test_one_chip_digest_unchanged(tmp_path, scenario, digest_of):
    run = A.simulate(scenario, transport="stub", backend="inline", out=tmp_path / "r")
    assert digest_of(run.path) == BEFORE_SYSTEMS[scenario]


@pytest.mark.parametrize("sets, path", [
    (["system.chips=4", "system.data_parallel=3"], "system.data_parallel"),
    (["system.chips=4", "system.pipeline_stages=3"], "system.pipeline_stages"),
    (["system.chips=2", "scenario.batch=3", "scenario.micro_batches=2"], "scenario.micro_batches"),
    (["system.chips=2", "system.link.preset=carrier-pigeon"], "system.link.preset"),
    (["system.chips=2", "system.link.latency_ps=0"], "system.link.latency_ps"),
    (["system.chips=64"], "system.pipeline_stages"),
    (["scenario.schedule=zigzag"], "scenario.schedule"),
])
def test_bad_system_input_is_one_line_exit_2(tmp_path, cli, sets, path):
    args = ["run", "--transport", "stub", "--out", str(tmp_path / "bad")]
    for s in sets:
        args += ["--set", s]
    code, _data, err = cli(*args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and path in err, err
    assert not (tmp_path / "bad").exists()


def test_chips_partition_needs_a_system(tmp_path, cli):
    code, _data, err = cli("run", "--partition", "chips", "--out", str(tmp_path / "bad"))
    assert code == 2 and "partition" in err and not (tmp_path / "bad").exists()


def test_killed_system_resumes_on_another_grouping(tmp_path, cli, digest_of):
    # 4 data-parallel chips on 2 worker processes, killed (SIGKILL) after a checkpoint, resumed in
    # one process: the uninterrupted run's digest
    import signal

    from tests.test_checkpoint import _stop_after_first_checkpoint

    args = ["run", "gpt2-medium-lora32-dp4", "--transport", "stub", "--set", "scenario.seq=32", "--quiet"]
    ref = tmp_path / "ref"
    assert cli(*args, "--backend", "inline", "--out", str(ref))[0] == 0
    out = tmp_path / "killed"
    m = _stop_after_first_checkpoint([*args, "--backend", "local", "--workers", "2",
                                      "--checkpoint-every-ps", "2000000000"], out, signal.SIGKILL)
    assert m["checkpoints"]
    code, _data, err = cli("resume", str(out), "--partition", "single", "--backend", "inline", "--quiet")
    assert code == 0, err
    assert digest_of(out) == digest_of(ref)


def test_auto_plan_says_why_and_warns_on_a_short_link(tmp_path, cli):
    base = ["run", "--transport", "stub", "--set", "scenario.seq=16", "--set", "system.chips=2"]
    code, _d, err = cli(*base, "--out", str(tmp_path / "pcie"), "--workers", "2")
    assert code == 0 and "warning" not in err
    plan = A.open_run(tmp_path / "pcie").manifest["config"]["plan"]
    assert plan["partition"] == "chips" and plan["link_lookahead_cycles"] == 500 and "mod 2" in plan["reason"]
    code, _d, err = cli(*base, "--set", "system.link.preset=ucie-2.5d", "--out", str(tmp_path / "ucie"),
                        "--workers", "2")
    assert code == 0 and "warning: the ucie-2.5d link's latency is 2 router cycles" in err
    code, _d, err = cli(*base, "--out", str(tmp_path / "one"), "--workers", "1")
    assert code == 0 and A.open_run(tmp_path / "one").manifest["config"]["plan"]["partition"] == "single"


def test_model_info_resident_system_closed_form(cli):
    # GPT-2 XL at M8F4 on 128x128 crossbars of 2-bit cells: an 8-bit weight takes 4 cells (32 per
    # crossbar row), a 4-bit one 2. Per layer: Q, K, V, O 1600x1600 at 8 bits = 13 x 50 crossbars each,
    # FFN up 1600x6400 at 4 bits 13 x 100, down 6400x1600 50 x 25: 5,150; the LM head 1600x50257 at 8
    # bits 13 x 1,571 = 20,423. 48 x 5,150 + 20,423 = 267,623 > 2 x 98,304: 3 chips, 17/17/14 layers.
    layer, head = 4 * 13 * 50 + 13 * 100 + 50 * 25, 13 * 1571
    code, data, err = cli("model-info", "gpt2-xl", "--seq", "128", "--quant", "M8F4", "--json")
    assert code == 0, err
    rs = data["resident_system"]
    assert rs["chips"] == 3 and rs["capacity"] == 98_304
    assert rs["stages"] == [[0, 17], [17, 34], [34, 48]]
    assert rs["stage_crossbars"] == [17 * layer, 17 * layer, 14 * layer + head]

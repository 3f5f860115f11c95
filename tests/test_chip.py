"""The coupled chip: tiers' cores + the flit-level NoC, one timeline; identical across partitions
and backends. Uses a shrunken GPT-2 (1 layer, d_model 128) so a run takes seconds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from atleus_dist import backends, results
from atleus_dist.hw.chip import ChipProgram, chip_noc_config, chip_run_spec
from atleus_dist.results import SinkFactory
from atleus_dist.workload import Mapper, compile_step, load_model
from atleus_dist.workload.scenario import Scenario


def _run(mapping, out, partition, backend="inline", workers=1):
    spec, _cfg = chip_run_spec(mapping, {}, partition, workers, SinkFactory(str(out)))
    stats = backends.run(spec, backend)
    return stats, results.read_table(str(out), "ops").to_pydict()


def test_chip_schedule_is_causal_and_carries_results_over_the_noc(mapping, tmp_path):
    stats, ops = _run(mapping, tmp_path / "single", "single")
    cfg, xy, hbm = chip_noc_config(mapping, {}, "single")
    prog = ChipProgram.from_mapping(mapping, xy, hbm)
    n = len(prog.origin)
    assert sorted(ops["op"]) == list(range(n))
    assert sorted(set(prog.origin)) == list(range(len(mapping.graph)))
    clk = cfg.router.clock_period_ps
    start = dict(zip(ops["op"], ops["start_ps"]))
    end = dict(zip(ops["op"], ops["end_ps"]))
    crossings = 0
    for i in range(n):
        assert end[i] - start[i] == prog.ops.latency_ps[i]
        for d in prog.ops.deps[i]:
            if prog.router[d] == prog.router[i]:
                assert start[i] >= end[d]
            else:  # a transfer: at least injection + one router + ejection, in whole cycles
                crossings += 1
                assert start[i] >= end[d] + 3 * clk, (i, d)
    assert crossings > 10
    assert {(d, r) for d, rs in prog.dests.items() for r in rs} == {
        (d, prog.router[i]) for i in range(n) for d in prog.ops.deps[i] if prog.router[d] != prog.router[i]}
    packets = results.read_table(str(tmp_path / "single"), "packets")
    assert packets.num_rows >= crossings
    assert stats.events > n


def test_chip_digest_is_partition_and_backend_independent(mapping, tmp_path):
    from atleus_dist.results import digest

    stats, _ops = _run(mapping, tmp_path / "single", "single")
    assert stats.rounds > 20  # one LP, yet windows of ~1/200 of the step: progress as it goes
    ref = digest(str(tmp_path / "single"))[0]
    spec, _cfg = chip_run_spec(mapping, {}, "single", 1, SinkFactory(str(tmp_path / "one-round")))
    stats = backends.run(dataclasses.replace(spec, max_window_ps=None), "inline")
    assert stats.rounds == 1 and digest(str(tmp_path / "one-round"))[0] == ref
    for name, partition, backend, workers in [("tier", "by-tier", "inline", 2),
                                              ("blocks", "blocks:2x2", "local", 2),
                                              ("compiled", "blocks:2x1", "local", 2)]:  # compiled rounds
        stats, _ops = _run(mapping, tmp_path / name, partition, backend, workers)
        assert stats.rounds > 1
        assert digest(str(tmp_path / name))[0] == ref, name


def test_packet_sampling_is_by_packet_id_and_partition_independent(mapping, tmp_path):
    from atleus_dist.results import digest

    full_spec, _ = chip_run_spec(mapping, {}, "single", 1, SinkFactory(str(tmp_path / "full")))
    backends.run(full_spec, "inline")
    full = results.read_table(str(tmp_path / "full"), "packets")
    digests = []
    for name, partition in (("s1", "single"), ("s2", "by-tier")):
        spec, cfg = chip_run_spec(mapping, None, partition, 2, SinkFactory(str(tmp_path / name)), packet_rows=50)
        backends.run(spec, "inline")
        sampled = results.read_table(str(tmp_path / name), "packets")
        every = cfg["packet_sample_every"]
        assert every > 1
        assert float(sampled.schema.metadata[b"atleus.sampling_rate"]) == 1.0 / every
        # exactly the packets whose id hashes into the sample, from the full run
        from atleus_dist.kernel.rng import keep_one_in

        want = sorted(np.asarray(full.column("pkt"))[keep_one_in(np.asarray(full.column("pkt")), every)].tolist())
        assert sorted(sampled.column("pkt").to_pylist()) == want
        digests.append(digest(str(tmp_path / name))[0])
    assert digests[0] == digests[1]
    assert 0 < len(want) < full.num_rows


@pytest.mark.ray
@pytest.mark.slow
def test_chip_on_ray_gives_the_inline_digest(tmp_path):
    """A smaller step still (one layer, inference, 17 ops, ~500 rounds): Ray rounds cost ms."""
    pytest.importorskip("ray")
    from atleus_dist.results import digest

    model = dataclasses.replace(load_model("gpt2-medium"), layers=1, d_model=64, heads=2, kv_heads=2,
                                d_ff=128, vocab=64, positions=16)
    sc = Scenario(model, seq=16, lora_rank=2, pipeline_chunk_tokens=16, mode="inference")
    tiny = Mapper().map(sc, compile_step(sc))
    _run(tiny, tmp_path / "inline", "single")
    stats, _ops = _run(tiny, tmp_path / "ray", "blocks:2x1", "ray", 2)
    assert stats.rounds > 100 and stats.groups == 2
    assert digest(str(tmp_path / "ray"))[0] == digest(str(tmp_path / "inline"))[0]


def test_hbm_ops_stripe_over_ports(mapping):
    """``noc.hbm_ports=4``: every HBM op becomes four, one per port router and serial unit, each
    with a quarter of its bytes and energy, timed as two of the eight 32 GB/s channels (128 pins x
    2 Gb/s: bytes / 64 B/ns after the access latency, within one interleave block); consumers wait
    for all four (a reload only for its own port's stripe of the save); a producer feeding a write sends each port only its share."""
    from atleus_dist.hw.tier import KIND_CODES

    _cfg, xy, one = chip_noc_config(mapping, {"hbm_ports": 1}, "single")
    _cfg, _xy, ports = chip_noc_config(mapping, {"hbm_ports": 4}, "single")
    first = mapping.arch.reram_tiers * 16  # the first systolic tier of 4x4 routers
    assert one == [first] and ports == list(range(first, first + 4))
    base = ChipProgram.from_mapping(mapping, xy, one)
    prog = ChipProgram.from_mapping(mapping, xy, ports, hbm=mapping.arch.hbm)
    access = mapping.arch.hbm.access_latency_ps
    hbm = {KIND_CODES["hbm_read"], KIND_CODES["hbm_write"]}
    parts: dict[int, list[int]] = {}
    for i, g in enumerate(prog.origin):
        parts.setdefault(g, []).append(i)
    n_hbm = 0
    for g, ids in parts.items():
        b = base.origin.index(g)
        if base.ops.kind[b] not in hbm:
            assert len(ids) == 1
            continue
        n_hbm += 1
        assert [prog.router[i] for i in ids] == ports
        assert len({prog.ops.unit[i] for i in ids}) == 4 and [prog.ops.core[i] for i in ids] == [-1, -2, -3, -4]
        for i in ids:
            if prog.ops.nbytes[i]:
                bus_ps = prog.ops.latency_ps[i] - access
                assert abs(bus_ps - prog.ops.nbytes[i] / 0.064) <= 256 / 0.032 + 1000, (i, bus_ps)
        assert sum(prog.ops.nbytes[i] for i in ids) == base.ops.nbytes[b]
        assert sum(prog.ops.energy_pj[i] for i in ids) == pytest.approx(base.ops.energy_pj[b])
        consumers = [c for c, deps in enumerate(prog.ops.deps) if set(ids) & set(deps)]
        for c in consumers:
            if prog.ops.kind[c] in hbm:  # a reload after its save: the same port's stripe only
                k = parts[prog.origin[c]].index(c)
                assert set(ids) & set(prog.ops.deps[c]) == {ids[k]}
            else:
                assert set(ids) <= set(prog.ops.deps[c])
        if base.ops.kind[b] == KIND_CODES["hbm_write"]:
            for d in prog.ops.deps[ids[0]]:
                if all(prog.router[c] != prog.router[i] for i in ids for c in range(len(prog.origin))
                       if d in prog.ops.deps[c] and prog.ops.kind[c] not in hbm):
                    assert sum(prog.bytes_to(d, r) for r in ports) == prog.out_bytes[d]
    assert n_hbm > 0


def test_program_deps_match_the_program(mapping):
    """What the report rebuilds for a chip run (no costing) is the program's dependency list."""
    from atleus_dist.hw.chip_program import program_deps

    _cfg, lay, ports = chip_noc_config(mapping, {}, "single")
    prog = ChipProgram.from_mapping(mapping, lay, ports, hbm=mapping.arch.hbm)
    assert program_deps(mapping.graph, len(ports)) == [tuple(d) for d in prog.ops.deps]


def test_default_hbm_channels_sit_on_the_interposer_tier_rim(mapping):
    """Default: one port per HBM2 channel (8), each on its own router, all on the rim of the
    first systolic tier (the one assumed to face the interposer), spread round it; a list in
    ``hbm.routers`` is taken as it is."""
    _cfg, lay, ports = chip_noc_config(mapping, {}, "single")
    tier = mapping.arch.reram_tiers
    rim = {tier * 16 + cy * 4 + cx for cx in range(4) for cy in range(4) if cx in (0, 3) or cy in (0, 3)}
    assert len(ports) == 8 == len(set(ports)) and set(ports) <= rim
    assert {lay.tier_of(r) for r in ports} == {tier}
    # spread: both halves of the rim walk hold four
    walk = lay.edge(tier)
    assert sum(walk.index(r) < 6 for r in ports) == 4
    explicit = dataclasses.replace(mapping, arch=dataclasses.replace(
        mapping.arch, hbm=dataclasses.replace(mapping.arch.hbm, routers=(3, 40))))
    assert chip_noc_config(explicit, {}, "single")[2] == [3, 40]


@pytest.mark.parametrize("noc", [{"hbm_ports": 4}, {}], ids=["4-ports", "8-channels"])
def test_striped_hbm_is_partition_independent(mapping, tmp_path, noc):
    """Each port's unit lives in the LP of its router, so every partition runs its ops in the
    same order: the result tables' digest is the same for one LP, one per tier and 2x2 blocks."""
    from atleus_dist.results import digest

    dig = []
    for name, partition in (("single", "single"), ("tier", "by-tier"), ("blocks", "blocks:2x2")):
        spec, cfg = chip_run_spec(mapping, noc, partition, 2, SinkFactory(str(tmp_path / name)))
        first = mapping.arch.reram_tiers * 16  # the first systolic tier of 4x4 routers
        if noc:
            assert cfg["hbm_routers"] == [first, first + 1, first + 2, first + 3]
        else:
            assert len(set(cfg["hbm_routers"])) == 8
        backends.run(spec, "inline")
        dig.append(digest(str(tmp_path / name))[0])
    assert dig[0] == dig[1] == dig[2]


@pytest.mark.parametrize("value, message", [(0, "out of range"), ("x", "integer"), (99, "do not fit")])
def test_bad_hbm_ports_name_the_field(mapping, value, message):
    from atleus_dist.kernel import ConfigError

    with pytest.raises(ConfigError) as e:
        chip_noc_config(mapping, {"hbm_ports": value}, "single")
    assert e.value.field == "noc.hbm_ports" and message in str(e.value), str(e.value)


@pytest.mark.parametrize("tiers, dims", [(4, (8, 8, 1)), (5, (12, 8, 1)), (1, (4, 4, 1))])
def test_planar_layout_puts_tiers_side_by_side(tiers, dims):
    from atleus_dist.hw.chip import TierLayout

    flat = TierLayout(4, 4, tiers, "planar")
    assert flat.dims == dims and flat.topology() == "mesh:{}x{}x{}".format(*dims)
    stacked = TierLayout(4, 4, tiers)
    assert stacked.dims == (4, 4, tiers)
    seen = set()
    for lay in (flat, stacked):
        routers = [lay.router(t, local) for t in range(tiers) for local in range(16)]
        assert len(set(routers)) == 16 * tiers and max(routers) < lay.n_routers
        for t in range(tiers):
            for local in range(16):
                assert lay.tier_of(lay.router(t, local)) == t
        seen.add(tuple(routers))
    assert len(seen) == (1 if tiers == 1 else 2)
    # 4 tiers: quadrants of an 8x8 mesh; tier 3's router (1, 2) is at x = 4 + 1, y = 4 + 2
    if tiers == 4:
        assert flat.router(3, 2 * 4 + 1) == (4 + 2) * 8 + 4 + 1


def test_planar_chip_carries_the_same_step_over_longer_paths(mapping, tmp_path):
    """The 2D baseline on the NoC: same ops and MACs, tiers side by side, so results travel more
    hops (no TSVs) and no transfer is faster than zero-load."""
    hops = {}
    for layout in ("3d", "planar"):
        spec, cfg = chip_run_spec(mapping, {}, "single", 1, SinkFactory(str(tmp_path / layout)), layout=layout)
        assert cfg["layout"] == layout
        backends.run(spec, "inline")
        ops = results.read_table(str(tmp_path / layout), "ops")
        pk = results.read_table(str(tmp_path / layout), "packets")
        hops[layout] = float(np.mean(pk.column("hops").to_numpy()))
        n_ports = len(cfg["hbm_routers"])  # every HBM op is one op per port
        assert ops.num_rows == len(ChipProgram.from_mapping(mapping, (4, 4), list(range(n_ports))).origin)
    assert hops["planar"] > hops["3d"] * 1.2, hops

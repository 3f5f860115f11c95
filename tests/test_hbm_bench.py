"""``atleus-dist hbm-bench``: bytes streamed between the HBM's ports and cores over the flit NoC
reach at least 80% of the path's bound (the memory's 256 GB/s; one 128-bit flit per cycle per NI
port at 1 GHz = 16 GB/s, a core's NI one port, a memory controller's two; a link 16 GB/s), for
reads and writes; the bound is the closed form."""

from __future__ import annotations

import pytest

import atleus_dist.api as A
from atleus_dist.kernel.errors import ConfigError

NI = 128 / 8 * 1e9  # bytes/s: one 128-bit flit per 1 ns cycle


@pytest.mark.parametrize("readers, bound", [(None, 8 * NI), (2, 2 * NI)], ids=["8-cores", "2-cores"])
def test_reads_and_writes_reach_80_percent_of_the_bound(tmp_path, readers, bound):
    r = A.hbm_bench(nbytes=256 << 10, readers=readers, writers=readers, out=str(tmp_path / "b"))
    for d in ("read", "write"):
        x = r["directions"][d]
        assert x["bound_bytes_per_s"] == pytest.approx(bound)
        assert x["memory_peak_bytes_per_s"] == pytest.approx(256e9)
        assert 0.8 <= x["achieved_over_bound"] <= 1.0, (d, x["achieved_over_bound"])
        assert len(set(x["ports"])) == 8 and not set(x["ports"]) & set(x["cores"])
        assert len(set(x["cores"])) == (readers or 8)
    assert r["directions"]["read"]["bound_by"] == "core ejection"  # the controllers' 2-port NIs are not
    assert r["directions"]["write"]["bound_by"] == "core injection"


def test_one_port_is_bound_by_its_injection(tmp_path):
    """Before issue 13 (``noc.hbm_ports=1``, the controller on its router's one core NI port):
    the bound is one NI, 1/16 of the memory."""
    r = A.hbm_bench(nbytes=64 << 10, directions="read", sets=["noc.hbm_ports=1", "noc.interface.mc_ports=0"],
                    out=str(tmp_path / "b"))
    x = r["directions"]["read"]
    assert x["bound_bytes_per_s"] == pytest.approx(NI) and x["bound_by"] == "port injection"
    assert x["achieved_over_bound"] >= 0.8


def test_one_port_with_its_own_wide_ni_is_bound_by_the_reader(tmp_path):
    """One port serving all 8 channels gets ceil(256 / 16) = 16 controller NI ports by default;
    then the one reader's single ejection port is the bound."""
    r = A.hbm_bench(nbytes=64 << 10, directions="read", sets=["noc.hbm_ports=1"], out=str(tmp_path / "b"))
    x = r["directions"]["read"]
    assert x["mc_ports"] == 16 and x["mc_ni_bytes_per_s"] == pytest.approx(16 * NI)
    assert x["bound_bytes_per_s"] == pytest.approx(NI) and x["bound_by"] == "core ejection"
    assert x["achieved_over_bound"] >= 0.8


def test_sixteen_cores_reach_the_memory(tmp_path):
    """16 cores x 16 GB/s and 8 controllers x 2 ports x 16 GB/s both reach HBM2's 256 GB/s, and the
    cores are picked so no two pairs share a link: the memory is the bound and is reached."""
    r = A.hbm_bench(nbytes=4 << 20, readers=16, writers=16, out=str(tmp_path / "b"))  # 1 MiB: writes 78% (fill)
    for d in ("read", "write"):
        x = r["directions"][d]
        assert x["bound_bytes_per_s"] == pytest.approx(256e9) and x["bound_by"] == "memory"
        assert 0.8 <= x["achieved_over_bound"] <= 1.0, (d, x["achieved_over_bound"])


def test_a_wider_core_ni_is_then_bound_by_the_links(tmp_path):
    """``noc.interface.ni_ports=2``: 8 cores could take 256 GB/s, but each pair's path is one
    16 GB/s link (a TSV), so the bound is 8 x 16 GB/s of links - and it is reached."""
    r = A.hbm_bench(nbytes=256 << 10, directions="read", sets=["noc.interface.ni_ports=2"], out=str(tmp_path / "b"))
    x = r["directions"]["read"]
    assert x["ni_bytes_per_s"] == pytest.approx(2 * NI)
    assert x["bound_bytes_per_s"] == pytest.approx(8 * NI) and x["bound_by"] == "link"
    assert 0.8 <= x["achieved_over_bound"] <= 1.0


def test_path_bound_is_the_busiest_resource():
    """Hand-made transfers on a 4x4x1 mesh: two 1 MB reads from controller node 16 + 0 to cores 1
    and 2 share the link 0 -> 1 (2 MB at 16 GB/s: 125 us), more than the controller's 4 ports
    (2 MB at 64 GB/s) or each core (1 MB at 16 GB/s); so 2 MB / 125 us = 16 GB/s, by a link."""
    from atleus_dist.hw.noc.config import InterfaceConfig, NocConfig, TrafficConfig
    from atleus_dist.run.hbm_bench import path_bound

    cfg = NocConfig(topology="mesh:4x4x1", interface=InterfaceConfig(mc_ports=4), traffic=TrafficConfig(rate=0.0))
    mb = 1_000_000
    bound, what, _ic, port = path_bound(cfg, "read", [(0, 16, 1, mb, 0), (0, 16, 2, mb, 1)], 256e9)
    assert port == pytest.approx(NI) and what == "link" and bound == pytest.approx(NI)
    bound, what, _ic, _port = path_bound(cfg, "read", [(0, 16, 1, mb, 0), (0, 16, 4, mb, 1)], 256e9)
    assert what == "core ejection" and bound == pytest.approx(2 * NI)  # disjoint paths: each core
    bound, what, _ic, _port = path_bound(cfg, "read", [(0, 16, 1, mb, 0), (0, 16, 4, mb, 1)], 16e9)
    assert what == "memory" and bound == pytest.approx(16e9)


def test_memory_bound_when_the_nis_exceed_it(tmp_path):
    """16 pseudo-channel ports on the 12 rim routers (4 share one) x 16 GB/s = 192 GB/s of NIs;
    halve the pin rate and the memory (128 GB/s) is the bound, which the channel model's bus
    times then enforce (1 MiB: the 45 ns access and the mesh's fill are < 7% of the stream)."""
    r = A.hbm_bench(nbytes=1 << 20, directions="read", readers=16, out=str(tmp_path / "b"),
                    sets=["hbm.pseudo_channels=true", "hbm.pin_rate_mbps=1000"])
    x = r["directions"]["read"]
    assert x["bound_bytes_per_s"] == pytest.approx(128e9) and x["bound_by"] == "memory"
    assert 0.8 <= x["achieved_over_bound"] <= 1.0


@pytest.mark.parametrize("argv, flag", [(["--bytes", "0"], "--bytes"), (["--readers", "-1"], "--readers"),
                                        (["--request-bytes", "0"], "--request-bytes")])
def test_bad_input_names_the_flag(cli, argv, flag):
    code, _data, err = cli("hbm-bench", *argv)
    assert code == 2 and flag in err and len(err.strip().splitlines()) == 1, err


def test_cli_json(cli, tmp_path):
    code, data, err = cli("hbm-bench", "--bytes", "65536", "--direction", "read", "--json", "--out",
                          str(tmp_path / "b"))
    assert code == 0, err
    assert data["achieved_bytes_per_s"] > 0 and data["bound_bytes_per_s"] == pytest.approx(8 * NI)


def test_api_checks_before_running():
    with pytest.raises(ConfigError) as e:
        A.hbm_bench(nbytes=1024, writers=0)
    assert e.value.field == "--writers"

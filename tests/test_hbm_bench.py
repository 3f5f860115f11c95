"""``atleus-dist hbm-bench``: bytes streamed between the HBM's ports and cores over the flit NoC
reach at least 80% of the path's bound (min of the memory's 256 GB/s and one 128-bit flit per
cycle per NI at 1 GHz = 16 GB/s each), for reads and writes; the bound is the closed form."""

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
    assert r["directions"]["read"]["bound_by"] == ("port injection" if readers is None else "core ejection")


def test_one_port_is_bound_by_its_injection(tmp_path):
    """Today's placement (``noc.hbm_ports=1``): the bound is one NI, 1/16 of the memory."""
    r = A.hbm_bench(nbytes=64 << 10, directions="read", sets=["noc.hbm_ports=1"], out=str(tmp_path / "b"))
    x = r["directions"]["read"]
    assert x["bound_bytes_per_s"] == pytest.approx(NI) and x["bound_by"] == "port injection"
    assert x["achieved_over_bound"] >= 0.8


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

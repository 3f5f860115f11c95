"""Systolic core against SCALE-Sim: cycle counts taken from the tool itself, and its fold structure.

The table below was produced by running SCALE-Sim 3.0.0's own compute classes (operand matrices,
then ``systolic_compute_{ws,os,is}.get_demand_matrices()``; compute cycles = rows of the demand
matrix, i.e. no memory stalls) in a separate numpy<2 environment. SCALE-Sim is not needed here.
"""

import math

import pytest

from atleus_dist.hw.systolic import SystolicCore, SystolicCoreConfig, scalesim_compute_cycles
from atleus_dist.kernel.errors import ConfigError

SCALESIM_3_0_0 = [  # (M, N, K, rows, cols, dataflow, compute cycles) from scalesim 3.0.0 compute classes
    (64, 32, 48, 16, 8, "ws", 1224),
    (64, 32, 48, 16, 8, "os", 1120),
    (64, 32, 48, 16, 8, "is", 1680),
    (100, 70, 33, 16, 8, "ws", 3726),
    (100, 70, 33, 16, 8, "os", 3465),
    (100, 70, 33, 16, 8, "is", 4212),
    (1, 1, 1, 4, 4, "ws", 11),
    (1, 1, 1, 4, 4, "os", 7),
    (1, 1, 1, 4, 4, "is", 11),
    (5, 3, 200, 8, 8, "ws", 675),
    (5, 3, 200, 8, 8, "os", 214),
    (5, 3, 200, 8, 8, "is", 625),
    (256, 64, 128, 128, 32, "ws", 1084),
    (256, 64, 128, 128, 32, "os", 1144),
    (256, 64, 128, 128, 32, "is", 2800),
    (300, 100, 130, 128, 32, "ws", 4688),
    (300, 100, 130, 128, 32, "os", 3456),
    (300, 100, 130, 128, 32, "is", 7720),
    (1024, 64, 64, 128, 32, "ws", 2620),
    (1024, 64, 64, 128, 32, "os", 3552),
    (1024, 64, 64, 128, 32, "is", 11200),
    (77, 129, 255, 32, 16, "ws", 11160),
    (77, 129, 255, 32, 16, "os", 8127),
    (77, 129, 255, 32, 16, "is", 8280),
    (128, 32, 128, 128, 32, "ws", 414),
    (128, 32, 128, 128, 32, "os", 286),
    (128, 32, 128, 128, 32, "is", 1272),
    (17, 250, 9, 8, 32, "ws", 1008),
    (17, 250, 9, 8, 32, "os", 1128),
    (17, 250, 9, 8, 32, "is", 592),
    (166, 78, 203, 4, 4, "ws", 179520),
    (166, 78, 203, 4, 4, "os", 175560),
    (166, 78, 203, 4, 4, "is", 188496),
    (275, 49, 188, 128, 4, "ws", 13858),
    (275, 49, 188, 128, 4, "os", 12402),
    (275, 49, 188, 128, 4, "is", 42366),
    (260, 110, 20, 4, 32, "ws", 5960),
    (260, 110, 20, 4, 32, "os", 14040),
    (260, 110, 20, 4, 32, "is", 6660),
    (215, 36, 124, 4, 32, "ws", 15686),
    (215, 36, 124, 4, 32, "os", 17064),
    (215, 36, 124, 4, 32, "is", 16058),
    (31, 290, 64, 8, 4, "ws", 28616),
    (31, 290, 64, 8, 4, "os", 21608),
    (31, 290, 64, 8, 4, "is", 19712),
    (296, 300, 204, 4, 8, "ws", 600780),
    (296, 300, 204, 4, 8, "os", 601768),
    (296, 300, 204, 4, 8, "is", 592518),
    (24, 286, 69, 16, 32, "ws", 3870),
    (24, 286, 69, 16, 32, "os", 2070),
    (24, 286, 69, 16, 32, "is", 1740),
    (74, 277, 61, 128, 16, "ws", 6192),
    (74, 277, 61, 128, 16, "os", 3654),
    (74, 277, 61, 128, 16, "is", 2735),
]


@pytest.mark.parametrize("m,n,k,r,c,df,expected", SCALESIM_3_0_0)
def test_cycles_equal_scalesim_tool(m, n, k, r, c, df, expected):
    assert scalesim_compute_cycles(m, n, k, r, c, df) == expected
    core = SystolicCore(SystolicCoreConfig(rows=r, cols=c, dataflow=df))
    assert core.gemm(m, n, k).cycles == expected


def _demand_rows(sr, sc, t, r, c, prefix):
    """SCALE-Sim's construction, written out: for every fold of the stationary (sr x sc) operand,
    the demand matrix has `prefix` rows to load it, t streamed rows, c-1 rows to drain, then the
    skew adds r-1 rows."""
    folds = math.ceil(sr / r) * math.ceil(sc / c)
    return folds * (prefix + t + (c - 1) + (r - 1))


@pytest.mark.parametrize("m,n,k", [(1024, 1024, 1024), (1024, 64, 1024), (16, 4096, 1024), (3, 5, 7)])
def test_atleus_array_fold_structure(m, n, k):
    r, c = 128, 32
    core = SystolicCore()  # Atleus default 128x32
    assert core.gemm(m, n, k, dataflow="ws").cycles == _demand_rows(k, n, m, r, c, prefix=r)
    assert core.gemm(m, n, k, dataflow="os").cycles == _demand_rows(m, n, k, r, c, prefix=0)
    assert core.gemm(m, n, k, dataflow="is").cycles == _demand_rows(k, m, n, r, c, prefix=r)


def test_utilisation_and_energy_from_counts():
    cfg = SystolicCoreConfig()
    cost = SystolicCore(cfg).gemm(1024, 32, 128, dataflow="ws")
    # one fold of a perfectly-shaped GEMM: 2R + C + M - 2 cycles
    assert cost.cycles == 2 * 128 + 32 + 1024 - 2
    assert cost.utilisation == pytest.approx(1024 * 32 * 128 / (cost.cycles * 128 * 32))
    assert cost.latency_ps == cost.cycles * cfg.clock_ps
    macs = 1024 * 32 * 128
    sram = (128 * 32 + 1024 * 128 + 1024 * 32) * cfg.operand_bytes * cfg.sram_read_byte_pj
    assert cost.energy_pj == pytest.approx(macs * cfg.mac_pj + sram)


def test_count_repeats_gemm():
    core = SystolicCore()
    one = core.gemm(64, 64, 64)
    assert core.gemm(64, 64, 64, count=16).cycles == 16 * one.cycles


def test_vector_unit_cycles():
    cfg = SystolicCoreConfig()
    cost = SystolicCore(cfg).vector("softmax", 1024 * 1024)
    assert cost.cycles == math.ceil(1024 * 1024 * cfg.softmax_ops_per_elem / cfg.vector_lanes)


@pytest.mark.parametrize("kwargs,field", [({"rows": 0}, "rows"), ({"dataflow": "rs"}, "dataflow"),
                                          ({"mac_pj": -1.0}, "mac_pj")])
def test_bad_config_names_field(kwargs, field):
    with pytest.raises(ConfigError) as e:
        SystolicCoreConfig(**kwargs)
    assert e.value.field == field


def test_bad_shape_names_field():
    with pytest.raises(ConfigError) as e:
        SystolicCore().gemm(0, 4, 4)
    assert e.value.field == "M"

"""ReRAM core against the ISAAC pipeline closed form and ISAAC's published IMA power figures."""

import math

import pytest

from atleus_dist.hw.reram import ReramCore, ReramCoreConfig, WriteCounters
from atleus_dist.kernel.errors import ConfigError

NS = 1000  # ps


def test_isaac_cycle_is_100ns_and_one_vector_per_16_cycles():
    core = ReramCore()
    # ISAAC: crossbar read 100 ns; 128 columns / 1.28 GS/s ADC = 100 ns; 16-bit inputs, 1-bit DACs
    assert core.cycle_ps() == 100 * NS
    blk = core.block(1024, 1024, 8)
    one = core.mvm(blk, 1)
    assert one.latency_ps == (16 + 3) * 100 * NS
    for v in (2, 7, 1024):
        assert core.mvm(blk, v).latency_ps - core.mvm(blk, v - 1).latency_ps == 16 * 100 * NS


def test_per_vector_cost_is_throughput_not_latency():
    """ISAAC (Shafiee et al., ISCA 2016): a 16-bit input takes 16 x 100 ns cycles through 1-bit DACs,
    and consecutive vectors follow each other through the IMA pipeline. V vectors therefore take
    (16 V + fill) cycles, not V (16 + fill): splitting them into pipeline chunks adds one fill each."""
    core = ReramCore()
    blk = core.block(1024, 4096, 8)
    whole = core.mvm(blk, 1024)
    assert whole.latency_ps == (16 * 1024 + 3) * 100 * NS  # 1.6384 ms + 0.3 us, not 1024 x 1.9 us
    chunks = sum(core.mvm(blk, 32).latency_ps for _ in range(32))
    assert chunks - whole.latency_ps == 31 * 3 * 100 * NS
    assert core.mvm(blk, 1024, transposed=True).latency_ps == (16 * 4 * 1024 + 3) * 100 * NS


def test_adc_bound_cycle_when_adc_is_slow():
    cfg = ReramCoreConfig(adc_msps=640)  # half the ISAAC sample rate -> 128 samples take 200 ns
    assert ReramCore(cfg).cycle_ps() == 200 * NS
    cfg = ReramCoreConfig(adcs_per_xbar=2, adc_msps=640)  # two ADCs share the columns again
    assert ReramCore(cfg).cycle_ps() == 100 * NS


def test_energy_per_activation_matches_isaac_ima_power():
    # ISAAC IMA: 8 crossbars 2.4 mW, 8 ADCs 16 mW, 8x128 DACs 4 mW, shift-and-add 0.2 mW;
    # one 100 ns cycle with all 8 crossbars active = 22.6 mW x 100 ns, i.e. 282.5 pJ per crossbar.
    cfg = ReramCoreConfig(dequant_mult_pj=0.0, psum_add_pj=0.0)
    core = ReramCore(cfg)
    blk = core.block(128, 32, 8)  # 8-bit weights, 4 cells each: exactly one crossbar
    assert blk.crossbars == 1
    per_cycle_pj = (2.4 + 16 + 4 + 0.2) * 1e-3 * 100e-9 / 8 * 1e12
    assert core.mvm(blk, 10).energy_pj == pytest.approx(10 * 16 * per_cycle_pj)


@pytest.mark.parametrize("bits,cells", [(1, 1), (2, 1), (3, 2), (4, 2), (8, 4), (16, 8)])
def test_cells_per_weight(bits, cells):
    assert ReramCore().cells_per_weight(bits) == cells


def test_quantisation_changes_crossbars_and_energy_linearly():
    core = ReramCore()
    b8, b4 = core.block(1024, 1024, 8), core.block(1024, 1024, 4)
    assert (b8.crossbars, b4.crossbars) == (8 * 32, 8 * 16)
    assert b8.cells == 2 * b4.cells
    e8, e4 = core.mvm(b8, 64).energy_pj, core.mvm(b4, 64).energy_pj
    # crossbar energy halves; only the per-output dequantisation multiplies stay -> "roughly" linear
    assert 1.9 < e8 / e4 <= 2.0
    assert core.mvm(b8, 64).latency_ps == core.mvm(b4, 64).latency_ps  # crossbars work in parallel
    assert core.scale_storage_bits(b8) == 2 * core.scale_storage_bits(b4)


def test_transposed_read_drives_one_significance_at_a_time():
    core = ReramCore()
    blk = core.block(1024, 1024, 8)
    t = core.mvm(blk, 5, transposed=True)
    assert t.cycles == 5 * 16 * 4 + 3
    assert t.latency_ps == t.cycles * 100 * NS
    assert t.xbar_activations == 4 * core.mvm(blk, 5).xbar_activations


def test_programming_cost_and_write_counters():
    cfg = ReramCoreConfig()
    core = ReramCore(cfg)
    blk = core.block(1024, 1024, 8)  # 256 crossbars -> 16 waves of 16 parallel writes, 128 rows each
    cost = core.program(blk)
    assert cost.latency_ps == 128 * math.ceil(256 / 16) * 50_880
    assert cost.energy_pj == pytest.approx(1024 * 1024 * 4 * cfg.write_cell_pj)
    wc = WriteCounters(1000, cfg.endurance_writes)
    wc.program(0, blk.crossbars, times=2)
    wc.program(100, 10)
    assert (wc.max_writes, wc.total_writes) == (3, 2 * 256 + 10)
    assert wc.endurance_used() == 3 / 1_000_000
    with pytest.raises(ConfigError):
        wc.program(995, 10)


@pytest.mark.parametrize("kwargs,field", [({"xbar_rows": 0}, "xbar_rows"), ({"adc_bits": 1}, "adc_bits"),
                                          ({"write_cell_pj": -1.0}, "write_cell_pj")])
def test_bad_config_names_field(kwargs, field):
    with pytest.raises(ConfigError) as e:
        ReramCoreConfig(**kwargs)
    assert e.value.field == field

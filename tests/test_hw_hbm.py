"""HBM2 against the JEDEC bandwidth figure: 1024 pins x 2 Gb/s = 256 GB/s per stack."""

import pytest

from atleus_dist.hw.hbm import Hbm2, Hbm2Config
from atleus_dist.hw.params import parse_sets, with_overrides
from atleus_dist.kernel.errors import ConfigError


def test_bandwidth_256_gb_per_s():
    assert Hbm2Config().bandwidth_bytes_per_s == 256e9


def test_transfer_latency_and_energy():
    cfg = Hbm2Config()
    cost = Hbm2(cfg).transfer(1 << 20)
    assert cost.latency_ps == cfg.access_latency_ps + round((1 << 20) / 256e9 * 1e12)
    assert cost.energy_pj == pytest.approx((1 << 20) * 8 * 3.9)
    one_channel = Hbm2(cfg).transfer(1 << 20, channels=1)
    assert one_channel.latency_ps - cfg.access_latency_ps == 8 * (cost.latency_ps - cfg.access_latency_ps)
    assert Hbm2(cfg).transfer(0).latency_ps == 0


def test_bad_inputs_name_field():
    with pytest.raises(ConfigError) as e:
        Hbm2().transfer(10, direction="copy")
    assert e.value.field == "direction"
    with pytest.raises(ConfigError) as e:
        Hbm2Config(stacks=0)
    assert e.value.field == "stacks"


def test_overrides():
    cfg = with_overrides(Hbm2Config(), parse_sets(["stacks=2", "read_bit_pj=1.5"]))
    assert cfg.stacks == 2 and cfg.read_bit_pj == 1.5 and cfg.bandwidth_bytes_per_s == 512e9
    with pytest.raises(ConfigError) as e:
        with_overrides(Hbm2Config(), {"bogus": "1"})
    assert e.value.field == "bogus"
    with pytest.raises(ConfigError) as e:
        parse_sets(["stacks"])
    assert e.value.field == "--set"

"""HBM2 against the JEDEC bandwidth figure: 1024 pins x 2 Gb/s = 256 GB/s per stack."""

import pytest

from atleus_dist.hw.hbm import Hbm2, Hbm2Config
from atleus_dist.config.tree import parse_sets, with_overrides
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


# --- channels: closed forms and the JEDEC figures ----------------------------------------------
from atleus_dist.hw.hbm import HbmChannels  # noqa: E402


def test_channel_burst_time_is_jedec_pin_rate():
    cfg = Hbm2Config()
    # 32 B = 256 bits over 128 pins at 2 Gb/s: 2 bit-times of 0.5 ns = 1 ns per burst
    assert cfg.burst_ps == 1000 and cfg.channels == 8
    pc = Hbm2Config(pseudo_channels=True)  # 16 x 64-bit pseudo-channels: half the width, same stack total
    assert pc.channels == 16 and pc.burst_ps == 2000 and pc.bandwidth_bytes_per_s == 256e9


def test_channel_time_closed_form_and_bulk_formula_agree():
    h, cfg = Hbm2(), Hbm2Config()
    for k in (1, 2, 8):
        nbytes = 64 * cfg.interleave_bytes * k  # spreads evenly: B / k bytes per channel
        expected = cfg.access_latency_ps + nbytes // k // cfg.burst_bytes * 1000
        assert h.channel_time_ps(nbytes, k) == expected == h.transfer(nbytes, channels=k).latency_ps
    # 1 MB over all 8: 256 GB/s -> 4096 ns of data after the access latency
    assert h.channel_time_ps(1 << 20) == 45_000 + 4_096_000


def test_interleaving_uneven_and_unaligned():
    h, g = Hbm2(), 256
    assert h.channel_bytes(3 * g, 2) == [2 * g, g]  # blocks 0, 2 on channel 0; block 1 on channel 1
    assert h.channel_bytes(g, 8, address=g // 2) == [g // 2, g // 2] + [0] * 6  # straddles two blocks
    assert sum(h.channel_bytes(12345, 8, address=777)) == 12345
    # a 1-byte access still moves one 32 B burst
    assert h.channel_time_ps(1) == 45_000 + 1000


def test_channels_are_serial_pipelined_servers():
    ch = HbmChannels()
    g = ch.cfg.interleave_bytes
    # two 256 B requests to channel 0 issued together: the second's access overlaps the first's
    # data, its data waits for the bus: L + 8 bursts, then L + 16 bursts
    assert ch.request(0, g, 0) == 45_000 + 8_000
    assert ch.request(0, g, 8 * g) == 45_000 + 16_000
    # another channel is independent
    assert ch.request(0, g, g) == 45_000 + 8_000
    # N back-to-back requests stream at the channel's full rate: L + N x bus time
    ch = HbmChannels()
    ends = [ch.request(0, g, 8 * g * i) for i in range(10)]
    assert ends[-1] == 45_000 + 10 * 8_000


def test_channel_fields_validate():
    with pytest.raises(ConfigError) as e:
        Hbm2Config(interleave_bytes=100)
    assert e.value.field == "interleave_bytes"
    with pytest.raises(ConfigError) as e:
        Hbm2().channel_time_ps(10, channels=9)
    assert e.value.field == "channels"


@pytest.mark.parametrize("ports", [1, 2, 4, 8, 16])
def test_port_stripes_closed_form(ports):
    """1 MiB over the default stack (8 channels x 128 pins x 2 Gb/s = 256 GB/s): however many
    ports share it, every stripe ends 45 ns + 8 Mib / 2048 Gb/s = 4.096 us after issue (each port
    has ports/8 of the channels, or 8/ports of one channel's time), and the stripes hold all bytes."""
    from atleus_dist.hw.hbm import Hbm2

    st = Hbm2().port_stripes(1 << 20, ports)
    assert [b for b, _t in st] == [(1 << 20) // ports] * ports
    assert {t for _b, t in st} == {45_000 + 4_096_000}


def test_port_stripes_keep_every_byte_from_any_address():
    from atleus_dist.hw.hbm import Hbm2

    h = Hbm2()
    for nbytes, address, ports in ((1000, 100, 3), (257, 255, 8), (1 << 16, 7, 16), (5, 0, 8)):
        st = h.port_stripes(nbytes, ports, address)
        assert sum(b for b, _t in st) == nbytes
        assert all((t == 0) == (b == 0) for b, t in st)

"""HBM2 off-chip memory: latency and energy of bulk reads and writes.

Used for activations saved for backward, optimizer state and weights streamed into ReRAM when the
model does not fit. A transfer of B bytes spread over the channels it uses costs

    latency = access_latency + ceil(B * 8 / (channels_used * channel_bits_per_ns)) ns-equivalents
    energy  = B * 8 * energy_per_bit

where a channel's bandwidth is its pin count x pin rate.

Channels (``stacks x channels_per_stack``, or twice as many half-width pseudo-channels): each is
a serial, pipelined server - the first data of a request leaves ``access_latency_ps`` after issue,
then its bursts occupy the channel's data bus back to back; a later request's access overlaps the
bus time of earlier ones (bank parallelism), but data never overlaps on one bus:

    data_start = max(issue + access_latency, bus_free);  done = data_start + bursts * burst_ps
    burst_ps   = burst_bytes * 8 / (channel pins x pin rate)

Addresses are interleaved over the channels in ``interleave_bytes`` blocks (block i -> channel
i mod channels), and a request moves whole bursts. B bytes from address a over k channels
(:meth:`Hbm2.channel_time_ps`) take access latency + the busiest channel's bursts x burst_ps -
the closed form the tests check, equal to the bulk formula above when B spreads evenly. Bank
conflicts, row-buffer misses and refresh are not modelled (no cited figures yet: they would add
tRC/tRP per miss).

On the chip each channel's memory controller sits at a NoC router (``placement``: spread over
the edge routers of the tier facing the interposer by default, see docs/assumptions.md; or an
explicit ``routers`` list) and is a serial unit: :meth:`Hbm2.port_stripes` splits a transfer over
P such ports (port k serving channels k, k+P, ...; P > channels time-shares each channel) and
times each stripe with the channel model. Knows nothing of the op graph, LPs, files, processes or Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from atleus_dist.hw.params import check_choice, check_int, param, validate_fields
from atleus_dist.kernel.errors import ConfigError


PLACEMENTS = ("edge", "first")


@dataclass(frozen=True)
class Hbm2Config:
    stacks: int = param(1, 1, 16, "Atleus: HBM2 off-chip (one stack assumed; confirm)")
    channels_per_stack: int = param(8, 1, 64, "JEDEC JESD235 HBM2: 8 channels per stack (16 pseudo-channels)")
    channel_width_bits: int = param(128, 1, 4096, "JESD235: 1024-bit interface per stack / 8 channels")
    pin_rate_mbps: int = param(2000, 1, 100_000, "JESD235A HBM2: 2 Gb/s per pin -> 256 GB/s per stack")
    access_latency_ps: int = param(45_000, 0, 10**9, "~tRCD + tCL + burst for HBM2 (~45 ns; confirm per device)")
    read_bit_pj: float = param(3.9, 0.0, 1e4, "O'Connor et al., MICRO 2017: HBM2 ~3.9 pJ/bit")
    write_bit_pj: float = param(3.9, 0.0, 1e4, "O'Connor et al., MICRO 2017: HBM2 ~3.9 pJ/bit (same as read)")
    pseudo_channels: bool = param(False, source="JESD235A pseudo-channel mode: two 64-bit halves per channel, "
                                  "same bandwidth")
    burst_bytes: int = param(32, 1, 4096, "JESD235: BL2 x 128 bits (legacy) = BL4 x 64 bits (pseudo-channel) = 32 B")
    interleave_bytes: int = param(256, 1, 1 << 30, "block per channel before the next (assumed, common); a multiple "
                                  "of burst_bytes")

    placement: str = param("edge", source="assumed (docs/assumptions.md): controllers spread over the edge "
                           "routers of the tier facing the interposer; 'first': consecutive routers from that "
                           "tier's first", choices=PLACEMENTS)
    interposer_tier: int | None = param(None, 0, 255, "None: the first systolic tier faces the interposer "
                                        "(assumed, docs/assumptions.md)")
    routers: tuple[int, ...] | None = param(None, 0, 4095, "explicit router of each port (overrides placement; "
                                            "noc.hbm_router/noc.hbm_ports also do)", length=(1, 4096))

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.interleave_bytes % self.burst_bytes:
            raise ConfigError("interleave_bytes", f"must be a multiple of burst_bytes ({self.burst_bytes}), "
                              f"got {self.interleave_bytes}")
        if self.bus_bits % 8 or self.bus_bits < 8:
            raise ConfigError("channel_width_bits", f"must leave a whole number of bytes per (pseudo-)channel, "
                              f"got {self.channel_width_bits}")

    @property
    def channels(self) -> int:
        """Independent channels (pseudo-channels when ``pseudo_channels``)."""
        return self.stacks * self.channels_per_stack * (2 if self.pseudo_channels else 1)

    @property
    def bus_bits(self) -> int:
        """Data pins of one (pseudo-)channel."""
        return self.channel_width_bits // (2 if self.pseudo_channels else 1)

    @property
    def burst_ps(self) -> Fraction:
        """Bus time of one burst on one (pseudo-)channel, exact (ps)."""
        return Fraction(self.burst_bytes * 8 * 1_000_000, self.bus_bits * self.pin_rate_mbps)

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.channels * self.bus_bits * self.pin_rate_mbps * 1e6 / 8


@dataclass(frozen=True)
class HbmCost:
    latency_ps: int
    energy_pj: float
    bytes: int


def interleave(nbytes: int, k: int, address: int, g: int) -> list[int]:
    """Bytes each of ``k`` servers holds of ``nbytes`` from ``address``, blocks of ``g`` bytes
    interleaved (block i -> server i mod k)."""
    out = [0] * k
    end = address + nbytes
    first, last = address // g, (end - 1) // g if nbytes else address // g - 1
    full_rounds, rest = divmod(last - first + 1, k) if nbytes else (0, 0)
    for j in range(k):  # every channel gets full_rounds blocks, the first `rest` one more
        out[(first + j) % k] = (full_rounds + (j < rest)) * g
    if nbytes:  # trim the partial first and last blocks
        out[first % k] -= address - first * g
        out[last % k] -= (last + 1) * g - end
    return out


class Hbm2:
    """Stateless timing/energy of HBM2 transfers (no bank conflicts or refresh modelled)."""

    def __init__(self, cfg: Hbm2Config | None = None) -> None:
        self.cfg = cfg or Hbm2Config()

    def transfer(self, nbytes: int, direction: str = "read", channels: int | None = None) -> HbmCost:
        check_choice("direction", direction, ("read", "write"))
        check_int("bytes", nbytes, minimum=0)
        c = self.cfg
        used = c.channels if channels is None else channels
        if not 1 <= used <= c.channels:
            raise ConfigError("channels", f"must be in 1..{c.channels}, got {used!r}")
        if nbytes == 0:
            return HbmCost(0, 0.0, 0)
        bits_per_ps = used * c.bus_bits * c.pin_rate_mbps / 1e6  # Mb/s per pin -> bits/ps
        stream_ps = math.ceil(nbytes * 8 / bits_per_ps)
        per_bit = c.read_bit_pj if direction == "read" else c.write_bit_pj
        return HbmCost(c.access_latency_ps + stream_ps, nbytes * 8 * per_bit, nbytes)

    # --- channels ------------------------------------------------------------------------------
    def channel_bytes(self, nbytes: int, channels: int | None = None, address: int = 0) -> list[int]:
        """Bytes each of the first ``channels`` channels serves for ``nbytes`` from ``address``,
        interleaved in ``interleave_bytes`` blocks (block i -> channel i mod channels)."""
        c = self.cfg
        k = c.channels if channels is None else channels
        if not 1 <= k <= c.channels:
            raise ConfigError("channels", f"must be in 1..{c.channels}, got {k!r}")
        check_int("bytes", nbytes, minimum=0)
        check_int("address", address, minimum=0)
        return interleave(nbytes, k, address, c.interleave_bytes)

    def channel_time_ps(self, nbytes: int, channels: int | None = None, address: int = 0) -> int:
        """Time (ps, rounded up) to move ``nbytes`` from ``address`` over ``channels`` idle
        channels: access latency + the busiest channel's bursts x burst time."""
        if nbytes == 0:
            return 0
        c = self.cfg
        per = self.channel_bytes(nbytes, channels, address)
        bursts = max(-(-b // c.burst_bytes) for b in per)  # a partial burst still costs a burst
        return c.access_latency_ps + math.ceil(bursts * c.burst_ps)

    def port_stripes(self, nbytes: int, ports: int, address: int = 0) -> list[tuple[int, int]]:
        """(bytes, latency_ps) of each of ``ports`` memory ports for ``nbytes`` from ``address``.
        ports <= channels: port k serves channels k, k+P, ... (in parallel, each its own bus), so
        its stripe takes access latency + its busiest channel's bursts; ports > channels: blocks
        interleave over the ports and each channel is time-shared by ports/channels of them."""
        c = self.cfg
        check_int("ports", ports, minimum=1)
        if nbytes == 0:
            return [(0, 0)] * ports
        n = c.channels
        if ports <= n:
            per = self.channel_bytes(nbytes, None, address)
            out = []
            for k in range(ports):
                mine = per[k::ports]
                bursts = max(-(-b // c.burst_bytes) for b in mine)
                b = sum(mine)
                out.append((b, c.access_latency_ps + math.ceil(bursts * c.burst_ps) if b else 0))
            return out
        per = interleave(nbytes, ports, address, c.interleave_bytes)
        share = Fraction(ports, n)
        return [(b, c.access_latency_ps + math.ceil(-(-b // c.burst_bytes) * c.burst_ps * share) if b else 0)
                for b in per]


class HbmChannels:
    """The channels as serial, pipelined servers (see the module docstring): ``request`` issues
    one access at ``t_ps`` and returns when its last byte has moved. Owned by one model instance
    (its bus state is never module-level)."""

    def __init__(self, cfg: Hbm2Config | None = None) -> None:
        self.cfg = cfg or Hbm2Config()
        self.hbm = Hbm2(self.cfg)
        self.bus_free = [Fraction(0)] * self.cfg.channels  # exact ps, so rounding never accumulates

    def request(self, t_ps: int, nbytes: int, address: int = 0) -> int:
        c = self.cfg
        check_int("t_ps", t_ps, minimum=0)
        if nbytes == 0:
            return t_ps
        done = Fraction(t_ps)
        for ch, b in enumerate(self.hbm.channel_bytes(nbytes, None, address)):
            if b == 0:
                continue
            start = max(Fraction(t_ps + c.access_latency_ps), self.bus_free[ch])
            self.bus_free[ch] = start + -(-b // c.burst_bytes) * c.burst_ps
            done = max(done, self.bus_free[ch])
        return math.ceil(done)

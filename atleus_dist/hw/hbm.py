"""HBM2 off-chip memory: latency and energy of bulk reads and writes.

Used for activations saved for backward, optimizer state and weights streamed into ReRAM when the
model does not fit. A transfer of B bytes spread over the channels it uses costs

    latency = access_latency + ceil(B * 8 / (channels_used * channel_bits_per_ns)) ns-equivalents
    energy  = B * 8 * energy_per_bit

where a channel's bandwidth is its pin count x pin rate. Knows nothing of the op graph, LPs,
files, processes or Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from atleus_dist.hw.params import check_choice, check_int, param, validate_fields
from atleus_dist.kernel.errors import ConfigError


@dataclass(frozen=True)
class Hbm2Config:
    stacks: int = param(1, 1, 16, "Atleus: HBM2 off-chip (one stack assumed; confirm)")
    channels_per_stack: int = param(8, 1, 64, "JEDEC JESD235 HBM2: 8 channels per stack (16 pseudo-channels)")
    channel_width_bits: int = param(128, 1, 4096, "JESD235: 1024-bit interface per stack / 8 channels")
    pin_rate_mbps: int = param(2000, 1, 100_000, "JESD235A HBM2: 2 Gb/s per pin -> 256 GB/s per stack")
    access_latency_ps: int = param(45_000, 0, 10**9, "~tRCD + tCL + burst for HBM2 (~45 ns; confirm per device)")
    read_bit_pj: float = param(3.9, 0.0, 1e4, "O'Connor et al., MICRO 2017: HBM2 ~3.9 pJ/bit")
    write_bit_pj: float = param(3.9, 0.0, 1e4, "O'Connor et al., MICRO 2017: HBM2 ~3.9 pJ/bit (same as read)")

    def __post_init__(self) -> None:
        validate_fields(self)

    @property
    def channels(self) -> int:
        return self.stacks * self.channels_per_stack

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.channels * self.channel_width_bits * self.pin_rate_mbps * 1e6 / 8


@dataclass(frozen=True)
class HbmCost:
    latency_ps: int
    energy_pj: float
    bytes: int


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
        bits_per_ps = used * c.channel_width_bits * c.pin_rate_mbps / 1e6  # Mb/s per pin -> bits/ps
        stream_ps = math.ceil(nbytes * 8 / bits_per_ps)
        per_bit = c.read_bit_pj if direction == "read" else c.write_bit_pj
        return HbmCost(c.access_latency_ps + stream_ps, nbytes * 8 * per_bit, nbytes)

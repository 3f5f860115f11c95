"""Systems of chips: the off-chip link class (:class:`LinkConfig`, with named presets) and the
system section (:class:`SystemConfig`: how many chips, their topology and how the work is spread
over them), with the link's timing as closed forms the simulation follows exactly.

An off-chip transfer of B bytes between neighbouring chips takes ``latency_ps + B / bytes_per_s``:
it occupies the sender's port for the serialisation ``B / bytes_per_s`` (one transfer at a time per
port and direction) and its last byte arrives ``latency_ps`` after the port is done. Between chips
that are not neighbours (a ring) the I/O controllers forward cut-through: ``hops x latency_ps``,
the first link's port serialises. The link latency is the lookahead between the chips' LPs.

Knows nothing of workloads, LPs, files, processes or Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from atleus_dist.hw.params import param, validate_fields
from atleus_dist.kernel.errors import ConfigError

TOPOLOGIES = ("ring", "switch")
# the op kinds of an off-chip transfer (workload.graph): a send on the link port, the far end's
# wait (never run: a link message releases it) and the receive that hands the data on
LINK_KINDS = ("link_send", "link_wait", "link_recv")
ALLREDUCE = ("bucketed", "after-backward")


@dataclass(frozen=True)
class LinkPreset:
    latency_ps: int
    bytes_per_s: float
    energy_pj_per_bit: float
    source: str


# One-way latency, bandwidth per direction, energy per bit; each with its source (docs/assumptions.md).
PRESETS: dict[str, LinkPreset] = {
    # 32 GT/s x 16 lanes, 128b/130b: 63.0 GB/s per direction (PCI-SIG PCIe 5.0, 2019); latency: the
    # ~0.5 us small-DMA read measured end host <-> device by pcie-bench (Neugebauer et al., SIGCOMM
    # 2018) taken as one way (assumed); energy: ground-referenced signalling on a PCB, 1.17 pJ/bit
    # (Poulton et al., JSSC 2013; Simba, MICRO 2019)
    "pcie5-x16": LinkPreset(500_000, 32e9 * 16 * 128 / 130 / 8, 1.17,
                            "PCIe 5.0 x16 (PCI-SIG 2019); 0.5 us: pcie-bench (SIGCOMM 2018); 1.17 pJ/bit: "
                            "GRS on PCB (JSSC 2013)"),
    # NVLink 4: 18 links, 900 GB/s both directions per GPU -> 450 GB/s per direction (NVIDIA Hopper);
    # latency 936.25 ns: ASTRA-sim's validated HGX-H100 network config; energy as a PCB link (assumed)
    "nvlink4": LinkPreset(936_250, 450e9, 1.17,
                          "NVIDIA Hopper (18 x 50 GB/s); 936.25 ns: astra-sim HGX-H100-validated.yml; "
                          "1.17 pJ/bit assumed (PCB GRS)"),
    # UCIe advanced package: a x64 module at 32 GT/s = 256 GB/s per direction (UCIe 1.0); ~2 ns,
    # 0.25-0.3 pJ/bit (UCIe consortium, Hot Interconnects 2025): chiplets in one package
    "ucie-2.5d": LinkPreset(2_000, 256e9, 0.3,
                            "UCIe 1.0 x64 advanced-package module at 32 GT/s; ~2 ns, 0.25-0.3 pJ/bit "
                            "(Hot Interconnects 2025)"),
    # board to board over 400G Ethernet / RDMA: 50 GB/s per direction (IEEE 802.3bs); 2 us per link as
    # FireSim's cluster links (ISCA 2018); energy: the PCB SerDes figure, a lower bound (assumed)
    "ethernet-400g": LinkPreset(2_000_000, 50e9, 1.17,
                                "400GbE (IEEE 802.3bs); 2 us: FireSim links (ISCA 2018); 1.17 pJ/bit: a lower "
                                "bound (PCB GRS)"),
}
PRESET_NAMES = tuple(PRESETS)


@dataclass(frozen=True)
class LinkConfig:
    """One off-chip link class; ``None`` fields take the preset's value."""

    preset: str = param("pcie5-x16", source="separately packaged chips on one board (docs/assumptions.md)",
                        choices=PRESET_NAMES)
    latency_ps: int | None = param(None, 1, 10**12, "None: the preset's one-way latency")
    bytes_per_s: float | None = param(None, 1e6, 1e15, "None: the preset's bandwidth per direction")
    energy_pj_per_bit: float | None = param(None, 0.0, 1e4, "None: the preset's energy per bit")

    def __post_init__(self) -> None:
        validate_fields(self)

    @property
    def resolved(self) -> LinkPreset:
        p = PRESETS[self.preset]
        return LinkPreset(p.latency_ps if self.latency_ps is None else self.latency_ps,
                          p.bytes_per_s if self.bytes_per_s is None else float(self.bytes_per_s),
                          p.energy_pj_per_bit if self.energy_pj_per_bit is None else float(self.energy_pj_per_bit),
                          p.source)

    def serialise_ps(self, nbytes: int) -> int:
        """The sender's port is busy ``ceil(nbytes / bytes_per_s)`` (at least 1 ps)."""
        return max(1, math.ceil(int(nbytes) * 1e12 / self.resolved.bytes_per_s))

    def energy_pj(self, nbytes: int) -> float:
        return nbytes * 8 * self.resolved.energy_pj_per_bit

    def transfer_ps(self, nbytes: int, hops: int = 1) -> int:
        """One transfer alone on the link: ``hops x latency + nbytes / bandwidth``."""
        return hops * self.resolved.latency_ps + self.serialise_ps(nbytes)


@dataclass(frozen=True)
class SystemConfig:
    """Several Atleus chips joined by off-chip links; ``chips: 1`` is the single chip."""

    chips: int = param(1, 1, 256, "one chip: the Atleus paper's system")
    topology: str = param("ring", source="a ring of point-to-point links, as chips on one board are wired",
                          choices=TOPOLOGIES)
    pipeline_stages: int | None = param(None, 1, 256, "None: chips / data_parallel")
    data_parallel: int = param(1, 1, 256, "one replica: every chip a pipeline stage")
    allreduce: str = param("bucketed", source="PyTorch DDP: per-layer buckets all-reduced as backward "
                           "produces them (Li et al., VLDB 2020)", choices=ALLREDUCE)
    io_router: int | None = param(None, 0, 1 << 20, "None: the first rim router of the interposer tier "
                                  "without an HBM port (docs/assumptions.md)")
    link: LinkConfig = field(default_factory=LinkConfig)

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.chips % self.data_parallel:
            raise ConfigError("system.data_parallel", f"{self.data_parallel} replicas do not divide "
                              f"{self.chips} chips", allowed="a divisor of system.chips")
        if self.pipeline_stages is not None and self.pipeline_stages * self.data_parallel != self.chips:
            raise ConfigError("system.pipeline_stages", f"{self.pipeline_stages} stages x {self.data_parallel} "
                              f"replicas is not {self.chips} chips",
                              allowed=f"{self.chips // self.data_parallel} (chips / data_parallel)")

    @property
    def stages(self) -> int:
        return self.chips // self.data_parallel

    def chip_of(self, stage: int, replica: int) -> int:
        """Each replica's pipeline on consecutive chips: pipeline neighbours are ring neighbours."""
        return replica * self.stages + stage

    def hops(self, src: int, dst: int) -> int:
        if self.topology == "switch":
            return 1
        d = (dst - src) % self.chips
        return min(d, self.chips - d)

    def port(self, src: int, dst: int) -> int:
        """The sender's port a transfer leaves by: ``switch`` one per chip (0); ``ring`` 0 towards
        the next chip, 1 towards the previous (the shorter way; ties go to the next)."""
        if self.topology == "switch":
            return 0
        d = (dst - src) % self.chips
        return 0 if d <= self.chips - d else 1

    def lookahead_ps(self, src: int, dst: int) -> int:
        return self.hops(src, dst) * self.link.resolved.latency_ps


def ring_allreduce_ps(nbytes: int, n: int, link: LinkConfig) -> int:
    """Ring all-reduce of ``nbytes`` over ``n`` neighbouring chips with nothing overlapping it:
    2 (n - 1) steps of nbytes / n each (Thakur, Rabenseifner, Gropp, IJHPCA 2005)."""
    if n <= 1:
        return 0
    return 2 * (n - 1) * link.transfer_ps(-(-nbytes // n))

"""Configuration of the 3D network-on-chip: router, links (planar and TSV), network interface,
synthetic traffic and the measurement phases, as frozen dataclasses with units in field names.

Defaults follow BookSim2's ``booksim_config.cpp`` where it has a value, otherwise the Atleus
hardware reference; each carries its source. Only validation lives here: nothing in this module
knows how routers are simulated or how the network is partitioned.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from atleus_dist.kernel.errors import ConfigError

ALLOCATORS = ("separable_input_first",)
ROUTINGS = ("dor",)


def _int(field_name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field_name, f"must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(field_name, f"must be >= {minimum}, got {value}")
    return value


def _num(field_name: str, value: object, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(field_name, f"must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(field_name, f"must be in [{lo}, {hi}], got {value}")
    return float(value)


@dataclass(frozen=True)
class RouterConfig:
    """Input-queued VC router with BookSim2 ``iq_router`` semantics (non-speculative)."""

    num_vcs: int = 4                    # issue 3 validation config (BookSim2 default 16)
    vc_buf_size_flits: int = 8          # BookSim2 booksim_config.cpp vc_buf_size
    routing_delay_cycles: int = 0       # issue 3 (0 = lookahead routing, as BookSim2)
    vc_alloc_delay_cycles: int = 1      # BookSim2 vc_alloc_delay
    sw_alloc_delay_cycles: int = 1      # BookSim2 sw_alloc_delay
    crossbar_delay_cycles: int = 1      # BookSim2 st_prepare_delay 0 + st_final_delay 1
    credit_delay_cycles: int = 2        # issue 3 (BookSim2 default 0)
    wait_for_tail_credit: bool = True   # issue 3 (BookSim2 default 0)
    vc_allocator: str = "separable_input_first"  # issue 3
    sw_allocator: str = "separable_input_first"  # issue 3
    routing: str = "dor"                # dimension order X, Y, then Z (tier)
    clock_period_ps: int = 1000         # 1 GHz NoC clock, Atleus TCAD 2025 (confirm)

    def __post_init__(self) -> None:
        _int("num_vcs", self.num_vcs, 1)
        _int("vc_buf_size_flits", self.vc_buf_size_flits, 1)
        _int("routing_delay_cycles", self.routing_delay_cycles, 0)
        _int("vc_alloc_delay_cycles", self.vc_alloc_delay_cycles, 1)
        _int("sw_alloc_delay_cycles", self.sw_alloc_delay_cycles, 1)
        _int("crossbar_delay_cycles", self.crossbar_delay_cycles, 1)
        _int("credit_delay_cycles", self.credit_delay_cycles, 0)
        _int("clock_period_ps", self.clock_period_ps, 1)
        if not isinstance(self.wait_for_tail_credit, bool):
            raise ConfigError("wait_for_tail_credit", f"must be true or false, got {self.wait_for_tail_credit!r}")
        for name in ("vc_allocator", "sw_allocator"):
            if getattr(self, name) not in ALLOCATORS:
                raise ConfigError(name, f"unknown allocator {getattr(self, name)!r}", allowed=", ".join(ALLOCATORS))
        if self.routing not in ROUTINGS:
            raise ConfigError("routing", f"unknown routing {self.routing!r}", allowed=", ".join(ROUTINGS))


@dataclass(frozen=True)
class PlanarLink:
    """A link between neighbouring routers of one tier (and its credit return wire)."""

    latency_cycles: int = 1             # BookSim2 Channel default delay (mesh)
    width_bits: int = 128               # one flit per cycle at the default flit width
    energy_pj_per_bit: float = 0.10     # ~1 mm 32 nm wire + repeaters, Atleus-class NoC (confirm)

    def __post_init__(self) -> None:
        _int("planar.latency_cycles", self.latency_cycles, 1)
        _int("planar.width_bits", self.width_bits, 1)
        _num("planar.energy_pj_per_bit", self.energy_pj_per_bit, 0.0, 1e6)


@dataclass(frozen=True)
class TsvLink(PlanarLink):
    """A vertical link between tiers; may be narrower (serialised) or slower than planar links."""

    latency_cycles: int = 1             # TSV RC delay well under one 1 GHz cycle (confirm)
    width_bits: int = 128               # full-width TSV bundle by default
    energy_pj_per_bit: float = 0.02     # short TSV hop, lower C than a planar mm (confirm)

    def __post_init__(self) -> None:
        _int("tsv.latency_cycles", self.latency_cycles, 1)
        _int("tsv.width_bits", self.width_bits, 1)
        _num("tsv.energy_pj_per_bit", self.energy_pj_per_bit, 0.0, 1e6)


@dataclass(frozen=True)
class InterfaceConfig:
    """Network interface: packetisation and the injection/ejection channels."""

    flit_bits: int = 128                # flit width (Atleus-class 128-bit NoC, confirm)
    packet_flits: int = 4               # issue 3 validation config (head + 2 body + tail)
    local_latency_cycles: int = 1       # BookSim2 inject/eject channel delay
    router_energy_pj_per_bit: float = 0.05  # buffer+crossbar per bit per router (confirm)

    def __post_init__(self) -> None:
        _int("flit_bits", self.flit_bits, 8)
        _int("packet_flits", self.packet_flits, 1)
        _int("local_latency_cycles", self.local_latency_cycles, 1)
        _num("router_energy_pj_per_bit", self.router_energy_pj_per_bit, 0.0, 1e6)


@dataclass(frozen=True)
class TrafficConfig:
    """Synthetic traffic: a pattern and Bernoulli injection in packets/node/cycle."""

    pattern: str = "uniform"            # BookSim2 traffic names
    rate: float = 0.05                  # packets per node per cycle (BookSim2 injection_rate)
    hotspots: tuple[int, ...] = (0,)    # node ids for pattern "hotspot"
    hotspot_fraction: float = 0.2       # share of packets sent to a hotspot (rest uniform)

    def __post_init__(self) -> None:
        from atleus_dist.hw.noc.traffic import PATTERNS

        if self.pattern not in PATTERNS:
            raise ConfigError("traffic", f"unknown pattern {self.pattern!r}", allowed=", ".join(PATTERNS))
        _num("rate", self.rate, 0.0, 1.0)
        _num("hotspot_fraction", self.hotspot_fraction, 0.0, 1.0)
        if not self.hotspots:
            raise ConfigError("hotspots", "needs at least one node id")


@dataclass(frozen=True)
class PhaseConfig:
    """Warm-up, measurement and drain, like BookSim2's warm-up and sample periods."""

    warmup_cycles: int = 3000           # BookSim2 warmup_periods 3 x sample_period 1000
    measure_cycles: int = 10000         # BookSim2 max_samples 10 x sample_period 1000
    drain_cycles: int = 10000           # give up draining after this: reported as saturated
    latency_thres_cycles: int = 500     # BookSim2 latency_thres: above it the run is unstable

    def __post_init__(self) -> None:
        _int("warmup_cycles", self.warmup_cycles, 0)
        _int("measure_cycles", self.measure_cycles, 1)
        _int("drain_cycles", self.drain_cycles, 0)
        _int("latency_thres_cycles", self.latency_thres_cycles, 1)


@dataclass(frozen=True)
class NocConfig:
    """Everything one NoC run needs. ``topology`` is a registry key such as ``mesh:4x4x4``."""

    topology: str = "mesh:4x4x4"
    router: RouterConfig = field(default_factory=RouterConfig)
    planar: PlanarLink = field(default_factory=PlanarLink)
    tsv: TsvLink = field(default_factory=TsvLink)
    interface: InterfaceConfig = field(default_factory=InterfaceConfig)
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    phases: PhaseConfig = field(default_factory=PhaseConfig)
    partition: str = "single"
    seed: int = 1

    def __post_init__(self) -> None:
        _int("seed", self.seed, 0)
        from atleus_dist.hw.noc.topology import build_topology

        build_topology(self)  # validates the topology string and the traffic against it

    @property
    def end_cycle(self) -> int:
        p = self.phases
        return p.warmup_cycles + p.measure_cycles + p.drain_cycles

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NocConfig":
        """Build from a nested mapping (config file); unknown keys are errors naming the key."""
        parts = {"router": RouterConfig, "planar": PlanarLink, "tsv": TsvLink,
                 "interface": InterfaceConfig, "traffic": TrafficConfig, "phases": PhaseConfig}
        kwargs: dict = {}
        for key, value in (data or {}).items():
            if key in parts:
                if not isinstance(value, dict):
                    raise ConfigError(key, "must be a mapping")
                known = {f.name for f in dataclasses.fields(parts[key])}
                for k in value:
                    if k not in known:
                        raise ConfigError(f"{key}.{k}", "unknown key", allowed=", ".join(sorted(known)))
                if key == "traffic" and "hotspots" in value:
                    value = dict(value, hotspots=tuple(value["hotspots"]))
                kwargs[key] = parts[key](**value)
            elif key in ("topology", "partition", "seed"):
                kwargs[key] = value
            else:
                raise ConfigError(key, "unknown key", allowed="topology, partition, seed, " + ", ".join(parts))
        return cls(**kwargs)

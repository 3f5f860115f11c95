"""Configuration of the 3D network-on-chip: router, links (planar and TSV), network interface,
synthetic traffic and the measurement phases, as frozen dataclasses with units in field names.

Defaults follow BookSim2's ``booksim_config.cpp`` where it has a value, otherwise the Atleus
hardware reference; each carries its source. Only validation lives here: nothing in this module
knows how routers are simulated or how the network is partitioned.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

from atleus_dist.hw.noc.topology import build_topology
from atleus_dist.hw.noc.traffic import PATTERNS
from atleus_dist.hw.param_tree import build
from atleus_dist.hw.params import param, validate_fields
from atleus_dist.kernel.errors import ConfigError

ALLOCATORS = ("separable_input_first",)
ROUTINGS = ("dor",)
# every partition spelling any command accepts (auto: chosen by the partitioner)
PARTITION = re.compile(r"^(single|by-tier|auto|blocks:\d{1,3}x\d{1,3}|(map|tiers):\d{1,5}(,\d{1,5})*)$")
PARTITIONS_TEXT = "auto, single, by-tier, tiers:g0,g1,... (LP per tier), blocks:AxB, map:l0,l1,... (LP per router)"
MAX_ROUTERS = 4096  # a 16x16 mesh of 16 tiers; bigger networks are refused before any allocation
MAX_MESH_SIDE = 64


def mesh_dims(text: object, field_name: str, n: int) -> tuple[int, ...]:
    """``"4x4"`` -> (4, 4) for ``n`` = 2; each side 1..MAX_MESH_SIDE; bad text raises naming the field."""
    parts = text.lower().split("x") if isinstance(text, str) else []
    if len(parts) != n or not all(p.strip().isdigit() for p in parts):
        raise ConfigError(field_name, f"must look like {'x'.join(['4'] * n)}, got {text!r}")
    dims = tuple(int(p) for p in parts)
    if not all(1 <= d <= MAX_MESH_SIDE for d in dims):
        raise ConfigError(field_name, f"{text!r} has a side outside 1..{MAX_MESH_SIDE}")
    return dims


def check_routers(field_name: str, n_routers: int, what: str) -> None:
    if n_routers > MAX_ROUTERS:
        raise ConfigError(field_name, f"{what} has {n_routers:,} routers", allowed=f"at most {MAX_ROUTERS:,}")


@dataclass(frozen=True)
class RouterConfig:
    """Input-queued VC router with BookSim2 ``iq_router`` semantics (non-speculative)."""

    num_vcs: int = param(4, 1, 64, "issue 3 validation config (BookSim2 default 16)")
    vc_buf_size_flits: int = param(8, 1, 1024, "BookSim2 booksim_config.cpp vc_buf_size")
    routing_delay_cycles: int = param(0, 0, 100, "issue 3 (0 = lookahead routing, as BookSim2)")
    vc_alloc_delay_cycles: int = param(1, 1, 100, "BookSim2 vc_alloc_delay")
    sw_alloc_delay_cycles: int = param(1, 1, 100, "BookSim2 sw_alloc_delay")
    crossbar_delay_cycles: int = param(1, 1, 100, "BookSim2 st_prepare_delay 0 + st_final_delay 1")
    credit_delay_cycles: int = param(2, 0, 100, "issue 3 (BookSim2 default 0)")
    wait_for_tail_credit: bool = param(True, source="issue 3 (BookSim2 default 0)")
    vc_allocator: str = param("separable_input_first", source="issue 3", choices=ALLOCATORS)
    sw_allocator: str = param("separable_input_first", source="issue 3", choices=ALLOCATORS)
    routing: str = param("dor", source="dimension order X, Y, then Z (tier)", choices=ROUTINGS)
    clock_period_ps: int = param(1000, 1, 10**6, "1 GHz NoC clock, Atleus TCAD 2025 (confirm)")

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class PlanarLink:
    """A link between neighbouring routers of one tier (and its credit return wire)."""

    latency_cycles: int = param(1, 1, 100, "BookSim2 Channel default delay (mesh)")
    width_bits: int = param(128, 1, 4096, "one flit per cycle at the default flit width")
    energy_pj_per_bit: float = param(0.10, 0.0, 1e3, "~1 mm 32 nm wire + repeaters, Atleus-class NoC (confirm)")

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class TsvLink(PlanarLink):
    """A vertical link between tiers; may be narrower (serialised) or slower than planar links."""

    latency_cycles: int = param(1, 1, 100, "TSV RC delay well under one 1 GHz cycle (confirm)")
    width_bits: int = param(128, 1, 4096, "full-width TSV bundle by default")
    energy_pj_per_bit: float = param(0.02, 0.0, 1e3, "short TSV hop, lower C than a planar mm (confirm)")


@dataclass(frozen=True)
class InterfaceConfig:
    """Network interface: packetisation and the injection/ejection channels."""

    flit_bits: int = param(128, 8, 4096, "flit width (Atleus-class 128-bit NoC, confirm)")
    packet_flits: int = param(4, 1, 1024, "issue 3 validation config (head + 2 body + tail)")
    local_latency_cycles: int = param(1, 1, 100, "BookSim2 inject/eject channel delay")
    # the NI's width: each port is one injection and one ejection channel of one flit a cycle
    ni_ports: int = param(1, 1, 16, "local ports (injection + ejection channels, one flit a cycle each) of a "
                          "router's core NI; 1 = BookSim2's terminal (booksim_config.cpp c = 1, subnets = 1: one "
                          "channel each way), the network the Atleus paper simulated (assumed, docs/assumptions.md)")
    mc_ports: int | None = param(None, 0, 16, "local ports of the memory controller's own NI on each HBM port "
                                 "router, apart from the core's; None: the chip takes enough for the channels it "
                                 "serves (ceil(their peak / one port's flits a cycle): 2 for an HBM2 channel's 32 GB/s "
                                 "at 128 bits x 1 GHz), a synthetic network none; 0: the controller shares the core's "
                                 "NI (before issue 13)")
    router_energy_pj_per_bit: float = param(0.05, 0.0, 1e3, "buffer+crossbar per bit per router (confirm)")

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class TrafficConfig:
    """Synthetic traffic: a pattern and Bernoulli injection in packets/node/cycle."""

    pattern: str = param("uniform", source="BookSim2 traffic names", choices=PATTERNS)
    rate: float = param(0.05, 0.0, 1.0, "packets per node per cycle (BookSim2 injection_rate)")
    hotspots: tuple[int, ...] = param((0,), 0, MAX_ROUTERS - 1, "node ids for pattern hotspot", length=(1, 256))
    hotspot_fraction: float = param(0.2, 0.0, 1.0, "share of packets sent to a hotspot (rest uniform)")

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class PhaseConfig:
    """Warm-up, measurement and drain, like BookSim2's warm-up and sample periods."""

    warmup_cycles: int = param(3000, 0, 10**7, "BookSim2 warmup_periods 3 x sample_period 1000")
    # at most 1e8 cycles: ~20 min of a 4x4x4 mesh here; the chip run sets its own horizon
    measure_cycles: int = param(10000, 1, 10**8, "BookSim2 max_samples 10 x sample_period 1000")
    drain_cycles: int = param(10000, 0, 10**7, "give up draining after this: reported as saturated")
    latency_thres_cycles: int = param(500, 1, 10**7, "BookSim2 latency_thres: above it the run is unstable")

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class ChipPhases(PhaseConfig):
    """The chip run's single measurement phase: the whole step (no synthetic traffic)."""

    measure_cycles: int = param(10000, 1, 2**62, "the step's horizon, set by hw/chip.py")


@dataclass(frozen=True)
class NocConfig:
    """Everything one synthetic-traffic NoC run needs. ``topology`` is a registry key such as
    ``mesh:4x4x4``."""

    topology: str = param("mesh:4x4x4", source="issue 3 validation network (4x4 per tier, 4 tiers)")
    router: RouterConfig = field(default_factory=RouterConfig)
    planar: PlanarLink = field(default_factory=PlanarLink)
    tsv: TsvLink = field(default_factory=TsvLink)
    interface: InterfaceConfig = field(default_factory=InterfaceConfig)
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    phases: PhaseConfig = field(default_factory=PhaseConfig)
    partition: str = param("auto", source="the planner (hw/noc/plan.py): the fastest plan predicted, never slower than one LP")
    seed: int = param(1, 0, 2**63 - 1, "any fixed seed; results depend on it only through the traffic")

    def __post_init__(self) -> None:
        validate_fields(self)
        if not PARTITION.fullmatch(self.partition):
            raise ConfigError("partition", f"unknown partition {self.partition[:60]!r}", allowed=PARTITIONS_TEXT)
        if self.topology.startswith("mesh:"):
            dims = mesh_dims(self.topology[5:], "topology", 3)
            check_routers("topology", math.prod(dims), self.topology)
        topo = build_topology(self)  # validates the topology string and the traffic against it
        bad = [h for h in self.traffic.hotspots if h >= topo.n_routers]
        if bad:
            raise ConfigError("traffic.hotspots", f"node {bad[0]} is not in {self.topology}",
                              allowed=f"0..{topo.n_routers - 1}")

    @property
    def end_cycle(self) -> int:
        p = self.phases
        return p.warmup_cycles + p.measure_cycles + p.drain_cycles

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NocConfig":
        """Build from a nested mapping (config file); unknown keys or bad values name the key."""
        return build(cls, data or {})


@dataclass(frozen=True)
class ChipNocConfig:
    """The NoC of a chip run: the mesh of each tier, where the HBM ports sit, and the router, link
    and interface parameters (the chip's tiers make the Z dimension; no synthetic traffic)."""

    mesh: str | None = param(None, source="None: the squarest X x Y grid holding a tier's cores")
    hbm_ports: int | None = param(None, 1, MAX_ROUTERS, "None: one port per HBM channel placed by hbm.placement; "
                                  "N: N consecutive port routers from noc.hbm_router (explicit placement)")
    hbm_router: int | None = param(None, 0, MAX_ROUTERS - 1, "None: hbm.placement; a router: the first of the "
                                   "noc.hbm_ports (default 1) consecutive port routers (explicit placement)")
    router: RouterConfig = field(default_factory=RouterConfig)
    planar: PlanarLink = field(default_factory=PlanarLink)
    tsv: TsvLink = field(default_factory=TsvLink)
    interface: InterfaceConfig = field(default_factory=InterfaceConfig)

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.mesh is not None:
            mesh_dims(self.mesh, "mesh", 2)

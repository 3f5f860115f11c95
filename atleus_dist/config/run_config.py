"""The tree of one run: :class:`RunConfig` and the two sections that belong to no component
(:class:`ExecutionConfig`: where LPs run; :class:`ResultsConfig`: what the tables keep). Every
other section is declared where its component lives. Knows nothing of files or processes.

Adding a field anywhere in the tree is one line in its dataclass (``name: int = param(...)``):
the loader, ``--set``, ``atleus-dist components`` and docs/configuration.md pick it up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from atleus_dist.hw.arch import AtleusArchConfig
from atleus_dist.hw.links import SystemConfig
from atleus_dist.hw.system import SYSTEM_PARTITION, SYSTEM_PARTITIONS_TEXT
from atleus_dist.hw.noc.config import PARTITION, PARTITIONS_TEXT
from atleus_dist.hw.params import param, validate_fields
from atleus_dist.hw.tier import FixedLatencyTransferStub
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.workload.scenario import ScenarioConfig

BACKEND_NAMES = ("inline", "local", "ray")  # atleus_dist.backends.BACKENDS (not imported: no backend code here)
TRANSPORTS = ("stub", "noc")
KINDS = ("atleus", "3d-tpu", "2d-planar")
PLACEMENTS = ("spread", "pack")


@dataclass(frozen=True)
class ExecutionConfig:
    """Where and how the LPs run; none of it changes the result tables."""

    backend: str = param("local", source="local processes: no cluster needed", choices=BACKEND_NAMES)
    workers: int = param(2, 1, 1024, "the machine's 2 cores; more than LPs run one LP each")
    partition: str | None = param(None, source="None: the transport's default (noc: auto - the planner's pick, "
                                  "never predicted slower than one LP; stub: by-tier)")
    address: str | None = param(None, source="None: start Ray locally (ray backend only)")
    placement: str = param("spread", source="Ray actors spread over nodes", choices=PLACEMENTS)

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.partition is not None and not (PARTITION.fullmatch(self.partition)
                                               or SYSTEM_PARTITION.fullmatch(self.partition)):
            raise ConfigError("partition", f"unknown partition {self.partition[:60]!r}",
                              allowed=f"{PARTITIONS_TEXT}; a system of chips: {SYSTEM_PARTITIONS_TEXT}")
        if self.address is not None and self.backend != "ray":
            raise ConfigError("address", f"only the ray backend takes an address (backend is {self.backend})")


@dataclass(frozen=True)
class ResultsConfig:
    """What the result tables keep."""

    packet_rows: int = param(200_000, 1, 100_000_000, "about 200k packets: the packets table stays ~10 MB; "
                             "above it one packet in k is kept")


@dataclass(frozen=True)
class RunConfig:
    """Everything one ``run`` (or simulated baseline) needs, resolved."""

    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    chip: AtleusArchConfig = field(default_factory=AtleusArchConfig)
    system: SystemConfig = field(default_factory=SystemConfig)
    kind: str = param("atleus", source="the chip itself; 3d-tpu and 2d-planar are the baselines", choices=KINDS)
    transport: str = param("noc", source="the flit-level 3D NoC carries results between cores", choices=TRANSPORTS)
    stub: FixedLatencyTransferStub = field(default_factory=FixedLatencyTransferStub)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    results: ResultsConfig = field(default_factory=ResultsConfig)

    def __post_init__(self) -> None:
        validate_fields(self)
        p = self.execution.partition
        if self.system.chips > 1:
            if p is not None and not SYSTEM_PARTITION.fullmatch(p):
                raise ConfigError("execution.partition", f"{p!r} is not a partition of a system of "
                                  f"{self.system.chips} chips", allowed=SYSTEM_PARTITIONS_TEXT)
            if self.kind != "atleus":
                raise ConfigError("kind", f"the {self.kind} baseline runs on one chip (system.chips is "
                                  f"{self.system.chips})", allowed="atleus")
            return
        if p is not None and SYSTEM_PARTITION.fullmatch(p) and p != "auto" and p != "single":
            raise ConfigError("execution.partition", f"{p!r} cuts a system of chips; system.chips is 1",
                              allowed=PARTITIONS_TEXT)
        if self.transport == "stub" and p not in (None, "by-tier", "auto"):
            raise ConfigError("execution.partition", f"the stub transport runs one LP per tier, got {p!r}",
                              allowed="by-tier")

    @property
    def partition(self) -> str:
        """The partition to use: the given one, else the transport's default (the stub has one)."""
        if self.system.chips > 1:
            return self.execution.partition or "auto"
        if self.transport == "stub":
            return "by-tier"
        return self.execution.partition or DEFAULT_PARTITION[self.transport]


# the flit-level NoC: the planner (hw/noc/plan.py) picks single, by-tier, tiers:, blocks: or a
# balanced split and never a plan predicted slower than one LP; one LP per tier for the stub
DEFAULT_PARTITION = {"noc": "auto", "stub": "by-tier"}  # auto: hw/noc/plan.py picks the fastest plan

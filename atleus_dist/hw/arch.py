"""The whole Atleus chip as configured: how many tiers and cores of each kind, and the core models.

Only counts and the per-component configs; the NoC lives in ``hw.noc``. Knows nothing of
workloads, LPs, files, processes or Ray.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from atleus_dist.hw.hbm import Hbm2Config
from atleus_dist.hw.params import check_int, with_overrides
from atleus_dist.hw.reram import ReramCoreConfig
from atleus_dist.hw.systolic import SystolicCoreConfig
from atleus_dist.kernel.errors import ConfigError


@dataclass(frozen=True)
class AtleusArchConfig:
    # Atleus keeps frozen weights in ReRAM (never rewritten) for GPT-2 Medium. At 8 bits its 24
    # layers fill 3 tiers of 16 x 1,536 crossbars exactly (73,728) and the LM head needs 12,568
    # more (86,296 in all), so 4 ReRAM tiers is the smallest stack that holds it (confirm)
    reram_tiers: int = 4
    reram_cores_per_tier: int = 16  # Atleus: 16 ReRAM cores (x 16 tiles x 96 crossbars)
    systolic_tiers: int = 1  # Atleus: systolic tier(s) for dynamic operands (one assumed)
    systolic_cores_per_tier: int = 16  # assumed: same 4x4 core grid as the ReRAM tiers (confirm)
    reram_stages_per_layer: int = 3  # Atleus: three ReRAM pipeline stages per layer
    reram: ReramCoreConfig = field(default_factory=ReramCoreConfig)
    systolic: SystolicCoreConfig = field(default_factory=SystolicCoreConfig)
    hbm: Hbm2Config = field(default_factory=Hbm2Config)

    def __post_init__(self) -> None:
        for f in ("reram_tiers", "reram_cores_per_tier", "systolic_tiers", "systolic_cores_per_tier",
                  "reram_stages_per_layer"):
            check_int(f, getattr(self, f))

    @property
    def reram_cores(self) -> int:
        return self.reram_tiers * self.reram_cores_per_tier

    @property
    def systolic_cores(self) -> int:
        return self.systolic_tiers * self.systolic_cores_per_tier

    @property
    def crossbar_capacity(self) -> int:
        return self.reram_cores * self.reram.xbars_per_core

    def tier_of_reram_core(self, core: int) -> int:
        return core // self.reram_cores_per_tier

    def tier_of_systolic_core(self, core: int) -> int:
        return self.reram_tiers + core // self.systolic_cores_per_tier

    @property
    def tiers(self) -> int:
        return self.reram_tiers + self.systolic_tiers


def arch_with_sets(sets: dict[str, str], base: AtleusArchConfig | None = None) -> AtleusArchConfig:
    """Apply ``--set`` overrides: ``reram.xbar_rows=64``, ``systolic.rows=64``, ``hbm.stacks=2``,
    ``reram_tiers=4``. Unknown prefixes or fields raise naming the key."""
    arch = base or AtleusArchConfig()
    groups: dict[str, dict[str, str]] = {"": {}, "reram": {}, "systolic": {}, "hbm": {}}
    for key, value in sets.items():
        prefix, dot, name = key.partition(".")
        if not dot:
            groups[""][key] = value
        elif prefix in groups and prefix:
            groups[prefix][name] = value
        else:
            raise ConfigError(key, "unknown component prefix", allowed="reram., systolic., hbm. or a chip field")
    top = dict(groups[""])
    for comp in ("reram", "systolic", "hbm"):
        if groups[comp]:
            top[comp] = with_overrides(getattr(arch, comp), groups[comp])
    return with_overrides(arch, top) if top else arch

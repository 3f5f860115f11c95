"""The whole Atleus chip as configured: how many tiers and cores of each kind, and the core models.

Only counts and the per-component configs (the NoC's in ``hw.noc.config``); the NoC model lives in
``hw.noc``. Knows nothing of
workloads, LPs, files, processes or Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from atleus_dist.hw.hbm import Hbm2Config
from atleus_dist.hw.noc.config import ChipNocConfig, check_routers, mesh_dims
from atleus_dist.hw.params import param, validate_fields
from atleus_dist.hw.reram import ReramCoreConfig
from atleus_dist.hw.systolic import SystolicCoreConfig
from atleus_dist.kernel.errors import ConfigError


@dataclass(frozen=True)
class AtleusArchConfig:
    # Atleus keeps frozen weights in ReRAM (never rewritten) for GPT-2 Medium. At 8 bits its 24
    # layers fill 3 tiers of 16 x 1,536 crossbars exactly (73,728) and the LM head needs 12,568
    # more (86,296 in all), so 4 ReRAM tiers is the smallest stack that holds it (confirm)
    reram_tiers: int = param(4, 1, 16, "smallest stack holding GPT-2 Medium at 8 bits (86,296 crossbars)")
    reram_cores_per_tier: int = param(16, 1, 256, "Atleus: 16 ReRAM cores (x 16 tiles x 96 crossbars)")
    systolic_tiers: int = param(1, 1, 16, "Atleus: systolic tier(s) for dynamic operands (one assumed)")
    systolic_cores_per_tier: int = param(16, 1, 256, "assumed: same 4x4 core grid as the ReRAM tiers (confirm)")
    reram_stages_per_layer: int = param(3, 1, 64, "Atleus: three ReRAM pipeline stages per layer")
    reram: ReramCoreConfig = field(default_factory=ReramCoreConfig)
    systolic: SystolicCoreConfig = field(default_factory=SystolicCoreConfig)
    hbm: Hbm2Config = field(default_factory=Hbm2Config)
    noc: ChipNocConfig = field(default_factory=ChipNocConfig)

    def __post_init__(self) -> None:
        validate_fields(self)
        x, y = self.mesh_xy
        if self.noc.mesh is not None and x * y < self.cores_per_tier:
            raise ConfigError("noc.mesh", f"{self.noc.mesh} has {x * y} routers for {self.cores_per_tier} "
                              "cores per tier", allowed=f"at least {self.cores_per_tier} routers per tier")
        check_routers("noc.mesh", x * y * self.tiers, f"a {x}x{y} mesh of {self.tiers} tiers")

    @property
    def cores_per_tier(self) -> int:
        return max(self.reram_cores_per_tier, self.systolic_cores_per_tier)

    @property
    def mesh_xy(self) -> tuple[int, int]:
        """Routers of a tier (X, Y): ``noc.mesh``, else the squarest grid holding a tier's cores."""
        if self.noc.mesh is not None:
            x, y = mesh_dims(self.noc.mesh, "noc.mesh", 2)
            return x, y
        per_tier = self.cores_per_tier
        y = int(math.isqrt(per_tier))
        while per_tier % y:
            y -= 1
        return per_tier // y, y

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

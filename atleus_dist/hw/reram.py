"""ReRAM (ISAAC-style) core of the Atleus ReRAM tiers: weight blocks on crossbars, MVM timing and
energy forward and transposed, crossbar-wise quantisation, programming cost and write counters.

Closed forms (ISAAC pipeline, Shafiee et al. ISCA 2016). A weight of B bits takes
``cpw = ceil(B / bits_per_cell)`` adjacent cells; a K x N block (K inputs, N outputs) needs
``ceil(K / rows) * ceil(N * cpw / cols)`` crossbars, all read in parallel. Inputs of I bits go
through D-bit DACs in ``S = ceil(I / D)`` slices; one slice is one pipeline cycle of
``max(crossbar read, columns per ADC / ADC sample rate)``; after ``fill`` cycles (input buffer read,
shift-and-add, output register) one vector leaves per S cycles:

    forward latency(V vectors)    = (V * S + fill) * cycle
    transposed latency(V vectors) = (V * S * cpw + fill) * cycle_T     (columns driven one
                                    significance at a time, rows sensed: backward dX = dY W^T)

S cycles per vector is the crossbar's *throughput* (ISAAC: one input bit per 100 ns read, so a
16-bit vector occupies the crossbar 16 cycles; the eDRAM read, ADC, shift-and-add and output stages
of consecutive vectors overlap), and the fill is paid once per op, not per vector: a pipeline chunk
of c vectors costs (c * S + fill) cycles, so chunking only adds one fill (0.3 us) per chunk.

Energy = crossbar activations x (read + DACs + ADC samples + shift-and-add) + one dequantisation
multiply per output per crossbar row-block (its block scale) + partial-sum adds. Programming writes
rows one at a time. Knows nothing of the op graph, LPs, files, processes or Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from atleus_dist.hw.params import check_int, param, validate_fields
from atleus_dist.kernel.errors import ConfigError


@dataclass(frozen=True)
class ReramCoreConfig:
    xbar_rows: int = param(128, 8, 4096, "Atleus / ISAAC: 128x128 crossbars")
    xbar_cols: int = param(128, 8, 4096, "Atleus / ISAAC: 128x128 crossbars")
    bits_per_cell: int = param(2, 1, 8, "Atleus / ISAAC: 2 bits per cell")
    dac_bits: int = param(1, 1, 16, "Atleus / ISAAC: 1-bit DACs, bit-serial inputs")
    adc_bits: int = param(8, 1, 16, "Atleus / ISAAC: 8-bit ADCs")
    input_bits: int = param(16, 1, 32, "ISAAC: 16-bit inputs streamed 1 bit per cycle")
    adcs_per_xbar: int = param(1, 1, 4096, "ISAAC: 8 ADCs per IMA of 8 crossbars, shared across 128 columns")
    adc_msps: int = param(1280, 1, 1_000_000, "ISAAC: 1.28 GS/s ADC")
    xbar_read_ps: int = param(100_000, 1, 10**9, "ISAAC: 100 ns crossbar read cycle")
    pipeline_fill_cycles: int = param(3, 0, 1000, "ISAAC pipeline: eDRAM->IR, shift-and-add, OR->eDRAM (confirm)")
    xbars_per_tile: int = param(96, 1, 4096, "Atleus: 96 crossbars per tile")
    tiles_per_core: int = param(16, 1, 1024, "Atleus: 16 tiles per core")
    edram_bytes_per_tile: int = param(65536, 1, 1 << 40, "ISAAC (Shafiee et al., ISCA 2016): 64 KB eDRAM buffer "
                                      "per tile (mode generate's kv_cache: edram)")
    xbar_read_pj: float = param(30.0, 0.0, 1e6, "ISAAC: 8 crossbars 2.4 mW -> 0.3 mW x 100 ns")
    dac_pj: float = param(0.390625, 0.0, 1e6, "ISAAC: 8x128 1-bit DACs 4 mW -> per DAC per 100 ns cycle")
    adc_sample_pj: float = param(1.5625, 0.0, 1e6, "ISAAC: 8 ADCs 16 mW at 1.28 GS/s -> 2 mW / 1.28 GS/s")
    shift_add_pj: float = param(2.5, 0.0, 1e6, "ISAAC: shift-and-add 0.2 mW per IMA of 8 crossbars x 100 ns")
    dequant_mult_pj: float = param(0.2, 0.0, 1e6, "Horowitz ISSCC 2014: 8-bit multiply 0.2 pJ (block-scale multiply)")
    psum_add_pj: float = param(0.03, 0.0, 1e6, "Horowitz ISSCC 2014: 8-bit add 0.03 pJ (confirm width)")
    block_scale_bits: int = param(16, 1, 64, "one fp16 scale per crossbar block (Atleus crossbar-wise quantisation)")
    write_row_ps: int = param(50_880, 1, 10**9, "PRIME (Chi et al., ISCA 2016): ReRAM write latency 50.88 ns")
    write_cell_pj: float = param(7.64, 0.0, 1e6, "PRIME: 3.91 nJ per 512-bit write -> per cell (confirm)")
    parallel_write_xbars: int = param(16, 1, 4096, "one programming driver per tile, 16 tiles per core (assumed)")
    endurance_writes: int = param(1_000_000, 1, 10**15, "ReRAM cell endurance ~1e6 writes (conservative; confirm)")

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.adc_bits < self.bits_per_cell:
            raise ConfigError("adc_bits", f"must be >= bits_per_cell ({self.bits_per_cell})")
        if self.adcs_per_xbar > self.xbar_cols:
            raise ConfigError("adcs_per_xbar", f"must be <= xbar_cols ({self.xbar_cols})")

    @property
    def xbars_per_core(self) -> int:
        return self.xbars_per_tile * self.tiles_per_core

    def adc_ps(self, samples: int) -> int:
        """Time for one ADC to convert ``samples`` values (ps, rounded up)."""
        return -(-samples * 1_000_000 // self.adc_msps)


@dataclass(frozen=True)
class WeightBlock:
    """A K x N static weight matrix (K inputs, N outputs) at ``weight_bits``, as placed on crossbars."""

    k: int
    n: int
    weight_bits: int
    cells_per_weight: int
    row_tiles: int
    col_tiles: int

    @property
    def crossbars(self) -> int:
        return self.row_tiles * self.col_tiles

    @property
    def cells(self) -> int:
        return self.k * self.n * self.cells_per_weight


@dataclass(frozen=True)
class ReramCost:
    latency_ps: int
    energy_pj: float
    xbar_activations: int
    adc_samples: int
    cycles: int  # pipeline cycles

    def to_dict(self) -> dict:
        return {"cycles": self.cycles, "latency_ps": self.latency_ps, "energy_pj": self.energy_pj,
                "xbar_activations": self.xbar_activations, "adc_samples": self.adc_samples}


class ReramCore:
    """Timing/energy of weight blocks on an ISAAC-style core; stateless apart from its config."""

    def __init__(self, cfg: ReramCoreConfig | None = None) -> None:
        self.cfg = cfg or ReramCoreConfig()

    def cells_per_weight(self, weight_bits: int) -> int:
        check_int("weight_bits", weight_bits)
        if weight_bits > 32:
            raise ConfigError("weight_bits", f"must be <= 32, got {weight_bits}")
        return math.ceil(weight_bits / self.cfg.bits_per_cell)

    def block(self, k: int, n: int, weight_bits: int) -> WeightBlock:
        check_int("K", k)
        check_int("N", n)
        cpw = self.cells_per_weight(weight_bits)
        c = self.cfg
        return WeightBlock(k, n, weight_bits, cpw, math.ceil(k / c.xbar_rows), math.ceil(n * cpw / c.xbar_cols))

    @property
    def input_slices(self) -> int:
        return math.ceil(self.cfg.input_bits / self.cfg.dac_bits)

    def cycle_ps(self, transposed: bool = False) -> int:
        """One pipeline cycle: the crossbar read or the ADCs converting every sensed line."""
        c = self.cfg
        sensed = c.xbar_rows if transposed else c.xbar_cols
        return max(c.xbar_read_ps, c.adc_ps(math.ceil(sensed / c.adcs_per_xbar)))

    def mvm(self, blk: WeightBlock, vectors: int, transposed: bool = False) -> ReramCost:
        """``vectors`` input vectors through ``blk`` (forward y = xW, or transposed dx = dy W^T)."""
        check_int("vectors", vectors)
        c = self.cfg
        s = self.input_slices
        if not transposed:
            reads_per_vector = s
            dacs, samples = c.xbar_rows, c.xbar_cols
            outputs, reductions = blk.n, blk.row_tiles
        else:
            reads_per_vector = s * blk.cells_per_weight
            dacs, samples = math.ceil(c.xbar_cols / blk.cells_per_weight), c.xbar_rows
            outputs, reductions = blk.k, blk.col_tiles
        cycles = vectors * reads_per_vector + c.pipeline_fill_cycles
        activations = vectors * reads_per_vector * blk.crossbars
        per_activation = c.xbar_read_pj + dacs * c.dac_pj + samples * c.adc_sample_pj + c.shift_add_pj
        energy = (activations * per_activation
                  + vectors * outputs * reductions * c.dequant_mult_pj
                  + vectors * outputs * (reductions - 1) * c.psum_add_pj)
        return ReramCost(cycles * self.cycle_ps(transposed), energy, activations, activations * samples, cycles)

    def program(self, blk: WeightBlock) -> ReramCost:
        """Writing ``blk`` into its crossbars (row by row; ``parallel_write_xbars`` at a time)."""
        c = self.cfg
        rows_used = min(blk.k, c.xbar_rows)
        waves = math.ceil(blk.crossbars / c.parallel_write_xbars)
        cycles = rows_used * waves
        return ReramCost(cycles * c.write_row_ps, blk.cells * c.write_cell_pj, 0, 0, cycles)

    def scale_storage_bits(self, blk: WeightBlock) -> int:
        """Storage for crossbar-wise quantisation scales: one scale per crossbar block."""
        return blk.crossbars * self.cfg.block_scale_bits


class WriteCounters:
    """Programming count per crossbar of a set of cores, to report endurance. Owned by one model
    instance (never module state)."""

    def __init__(self, n_xbars: int, endurance_writes: int) -> None:
        check_int("crossbars", n_xbars, minimum=0)
        self.counts = np.zeros(n_xbars, dtype=np.int64)
        self.endurance_writes = endurance_writes

    def program(self, first: int, n: int, times: int = 1) -> None:
        if first < 0 or first + n > len(self.counts):
            raise ConfigError("crossbar", f"range {first}..{first + n} outside 0..{len(self.counts)}")
        self.counts[first:first + n] += times

    @property
    def max_writes(self) -> int:
        return int(self.counts.max()) if len(self.counts) else 0

    @property
    def total_writes(self) -> int:
        return int(self.counts.sum())

    def endurance_used(self) -> float:
        """Fraction of the endurance budget used by the most-written crossbar."""
        return self.max_writes / self.endurance_writes

    def steps_to_wear_out(self, writes_per_step: int) -> float:
        return math.inf if writes_per_step <= 0 else self.endurance_writes / writes_per_step

"""Systolic-array core of the Atleus systolic tier: GEMM cycles, SRAM traffic, vector unit, energy.

Cycle counts reproduce SCALE-Sim's *compute* cycles (no memory stalls) for the WS, OS and IS
dataflows: SCALE-Sim maps an (M x K) x (K x N) GEMM as Sr x T x Sc and counts, per fold,
the rows of its skewed demand matrices. Folding the operand that stays in the array gives

    WS: ceil(K/R) * ceil(N/C) folds of (2R + C + M - 2) cycles  (weights K x N stay)
    OS: ceil(M/R) * ceil(N/C) folds of ( R + C + K - 2) cycles  (outputs M x N stay)
    IS: ceil(K/R) * ceil(M/C) folds of (2R + C + N - 2) cycles  (inputs K x M stay)

(checked against SCALE-Sim 3.0.0's own compute classes on 54 shapes; see tests). Energy is
action counts x per-action energies (Accelergy style), computed apart from timing.
Knows nothing of the op graph, of LPs, files, processes or Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from atleus_dist.hw.params import ACT_BYTES, check_choice, check_int, param, validate_fields

DATAFLOWS = ("ws", "os", "is")
VECTOR_KINDS = ("softmax", "layernorm", "rmsnorm", "gelu", "relu", "swiglu", "add", "loss", "adam", "sgd", "argmax")


@dataclass(frozen=True)
class SystolicCoreConfig:
    rows: int = param(128, 1, 4096, "Atleus (Dhingra et al., TCAD 2025): 128x32 PEs per systolic core")
    cols: int = param(32, 1, 4096, "Atleus: 128x32 PEs per systolic core")
    dataflow: str = param("ws", source="SCALE-Sim default dataflow family; Atleus keeps weights/adapters "
                          "stationary", choices=DATAFLOWS)
    clock_ps: int = param(1000, 1, 10**6, "1 GHz PE clock (assumed; SCALE-Sim counts cycles only - confirm vs paper)")
    operand_bytes: int = param(ACT_BYTES, 1, 8, "16-bit operands for activations/gradients (bf16; ACT_BYTES)")
    mac_pj: float = param(1.5, 0.0, 1e6, "Horowitz ISSCC 2014, 45 nm: fp16 mult 1.1 pJ + add 0.4 pJ (not scaled)")
    sram_read_byte_pj: float = param(1.25, 0.0, 1e6, "Horowitz ISSCC 2014: 64-bit read from 8 KB SRAM ~10 pJ")
    sram_write_byte_pj: float = param(1.25, 0.0, 1e6, "Horowitz ISSCC 2014: same order as the read (assumed equal)")
    vector_lanes: int = param(32, 1, 65536, "one vector lane per PE column (assumed)")
    vector_op_pj: float = param(0.4, 0.0, 1e6, "Horowitz ISSCC 2014: fp16 add 0.4 pJ per element-op")
    softmax_ops_per_elem: int = param(5, 1, 1000, "max, sub, exp, sum, divide (standard 3-pass softmax)")
    layernorm_ops_per_elem: int = param(5, 1, 1000, "mean, sub, square, sum, scale (standard LayerNorm)")
    rmsnorm_ops_per_elem: int = param(3, 1, 1000, "square, sum, scale (Zhang & Sennrich 2019)")
    gelu_ops_per_elem: int = param(8, 1, 1000, "tanh approximation: ~8 element ops (Hendrycks & Gimpel 2016)")
    relu_ops_per_elem: int = param(1, 1, 1000, "one compare")
    swiglu_ops_per_elem: int = param(6, 1, 1000, "sigmoid (~4) + 2 multiplies (Shazeer 2020)")
    add_ops_per_elem: int = param(1, 1, 1000, "residual add")
    loss_ops_per_elem: int = param(5, 1, 1000, "softmax cross-entropy over the vocabulary, like softmax")
    adam_ops_per_elem: int = param(12, 1, 1000, "Adam: two moments, bias correction, sqrt, divide, update (Kingma & Ba 2015)")
    sgd_ops_per_elem: int = param(2, 1, 1000, "multiply-add")
    argmax_ops_per_elem: int = param(1, 1, 1000, "greedy sampling: one compare-and-select per logit (running max "
                                     "and its index)")

    def __post_init__(self) -> None:
        validate_fields(self)

    @property
    def pes(self) -> int:
        return self.rows * self.cols


def scalesim_compute_cycles(m: int, n: int, k: int, rows: int, cols: int, dataflow: str) -> int:
    """Compute cycles of an (m x k) x (k x n) GEMM on a rows x cols array, as SCALE-Sim counts them."""
    check_choice("dataflow", dataflow, DATAFLOWS)
    if dataflow == "ws":
        return math.ceil(k / rows) * math.ceil(n / cols) * (2 * rows + cols + m - 2)
    if dataflow == "os":
        return math.ceil(m / rows) * math.ceil(n / cols) * (rows + cols + k - 2)
    return math.ceil(k / rows) * math.ceil(m / cols) * (2 * rows + cols + n - 2)


@dataclass(frozen=True)
class SystolicCost:
    cycles: int
    latency_ps: int
    energy_pj: float
    macs: int
    utilisation: float  # MACs / (cycles x PEs): how busy the array is over the whole GEMM
    sram_read_bytes: int = 0
    sram_write_bytes: int = 0

    def to_dict(self) -> dict:
        return {
            "cycles": self.cycles, "latency_ps": self.latency_ps, "energy_pj": self.energy_pj,
            "macs": self.macs, "utilisation": self.utilisation,
            "sram_read_bytes": self.sram_read_bytes, "sram_write_bytes": self.sram_write_bytes,
        }


class SystolicCore:
    """Timing and energy of one systolic core; stateless apart from its config."""

    def __init__(self, cfg: SystolicCoreConfig | None = None) -> None:
        self.cfg = cfg or SystolicCoreConfig()

    def gemm(self, m: int, n: int, k: int, count: int = 1, dataflow: str | None = None) -> SystolicCost:
        """``count`` independent (m x k) x (k x n) GEMMs, run one after another on this core."""
        for name, v in (("M", m), ("N", n), ("K", k), ("count", count)):
            check_int(name, v)
        c = self.cfg
        df = dataflow or c.dataflow
        cycles = scalesim_compute_cycles(m, n, k, c.rows, c.cols, df) * count
        macs = m * n * k * count
        reads, writes = self._sram_elements(m, n, k, df)
        rb, wb = reads * c.operand_bytes * count, writes * c.operand_bytes * count
        energy = macs * c.mac_pj + rb * c.sram_read_byte_pj + wb * c.sram_write_byte_pj
        return SystolicCost(cycles, cycles * c.clock_ps, energy, macs, macs / (cycles * c.pes), rb, wb)

    def _sram_elements(self, m: int, n: int, k: int, df: str) -> tuple[int, int]:
        """Operand reads and output writes (elements): the stationary operand is read once, the
        streamed ones once per fold of the other dimension, partial sums written once per K fold."""
        r, cl = self.cfg.rows, self.cfg.cols
        if df == "ws":
            return k * n + m * k * math.ceil(n / cl), m * n * math.ceil(k / r)
        if df == "os":
            return m * k * math.ceil(n / cl) + k * n * math.ceil(m / r), m * n
        return m * k + k * n * math.ceil(m / cl), m * n * math.ceil(k / r)

    def vector(self, kind: str, elements: int) -> SystolicCost:
        """An element-wise or reduction function over ``elements`` values on the vector unit."""
        check_choice("vector kind", kind, VECTOR_KINDS)
        c = self.cfg
        ops = elements * getattr(c, f"{kind}_ops_per_elem")
        cycles = max(1, math.ceil(ops / c.vector_lanes))
        nbytes = elements * c.operand_bytes
        energy = ops * c.vector_op_pj + nbytes * (c.sram_read_byte_pj + c.sram_write_byte_pj)
        return SystolicCost(cycles, cycles * c.clock_ps, energy, 0, 0.0, nbytes, nbytes)

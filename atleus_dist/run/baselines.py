"""Baselines evaluated on the same op graph as Atleus: a GPU roofline model, and two simulated
ones that run through the normal ``run`` path (:func:`~atleus_dist.run.scenario_run.build` with
``kind``):

- ``3d-tpu``: the same stack with systolic tiers only - ``Mapper(arch, static_on="systolic")``
  puts every matmul on a systolic core and reads each static weight from HBM before every use.
- ``2d-planar``: Atleus with its tiers side by side in one plane. With the stub transport only the
  inter-tier transfer latency changes, derived from the NoC config (:func:`stub_latency_ps`):

      hop_ps  = (routing + vc_alloc + sw_alloc + crossbar delay cycles + link latency cycles) x clock
      3D:     L = (H_xy x hop_ps(planar link)) + (H_z x hop_ps(TSV link))
      planar: L = H_plane x hop_ps(planar link)

  where H are mean hop counts between a uniformly random router of tier a and one of tier b,
  averaged over all ordered pairs of distinct tiers a != b. Stacked, the X x Y tiers sit on top of
  each other (H_xy = mean in-tier Manhattan distance, H_z = mean |z_a - z_b|); planar, tier t is
  block t (row-major) of a ceil(sqrt(T)) x ceil(T / ceil(sqrt(T))) grid of X x Y blocks (4 tiers
  of 4x4: quadrants of an 8x8 mesh). Defaults (1 GHz, 3-cycle router, 1-cycle links: 4 ns a hop):
  stacked 2.5 + 5/3 = 25/6 hops = 16,667 ps; planar 37/6 hops = 24,667 ps. Contention,
  serialisation (packet size) and injection/ejection are not in either - the stub is a constant.

Each op of the compiled step runs alone on the GPU, one after another, and takes
``max(flops / (peak x compute_efficiency), bytes / (bandwidth x memory_efficiency)) + launch``;
energy is board power x time (+ optional dynamic energy per FLOP and per byte). The result is a
run directory like any other (``manifest.json`` with ``baseline: gpu`` and status ``complete``, an
``ops`` table in the tier LPs' schema), so ``atleus-dist report`` and ``compare`` read it unchanged.

Bytes per op are the roofline minimum for a GPU (each operand read once, each output written once,
in ``dtype_bytes``): the op graph's own ``nbytes`` is only set for HBM transfers, which are Atleus'
off-chip traffic. Of those, only the optimizer-state loads/stores are real GPU traffic by default
(``hbm_ops="update"``): saved activations stay in GPU memory as kernel outputs that backward
kernels read back, and their reads are already in those kernels' operand bytes. Vector ops are
memory-bound on a GPU (at most ~12 FLOP per >= 4 bytes, below the A100's FP32 ridge point of
19.5e12 / 2.039e12 = 9.6 FLOP/B), so they take bytes / bandwidth.

Knows the op graph and the result writers; knows nothing of LPs, backends, the NoC or Atleus timing.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from atleus_dist.config.tree import with_overrides
from atleus_dist.hw.noc.config import NocConfig
from atleus_dist.hw.noc.topology import _parse_dims
from atleus_dist.hw.params import ACT_BYTES, param, validate_fields
from atleus_dist.hw.tier import KIND_CODES, PHASE_CODES
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.results import finish_manifest, start_manifest
from atleus_dist.results.summary import summary_figures
from atleus_dist.results.writer import LPSink
from atleus_dist.run.driver import prepare_out_dir
from atleus_dist.workload import compile_step

HBM_OPS = ("all", "update", "none")
SIM_KINDS = ("atleus", "3d-tpu", "2d-planar")  # simulated architectures (``build(kind=...)``)
# operands read + results written, in elements, per element of a vector op (forward; backward reads
# the output gradient and the saved input(s) and writes the input gradient(s))
VECTOR_TRAFFIC_FWD = {"add": 3, "softmax": 2, "layernorm": 2, "rmsnorm": 2, "gelu": 2, "relu": 2,
                      "swiglu": 3, "loss": 2, "adam": 2, "sgd": 3, "argmax": 1}
VECTOR_TRAFFIC_BWD = {"add": 3, "softmax": 3, "layernorm": 3, "rmsnorm": 3, "gelu": 3, "relu": 3,
                      "swiglu": 5, "loss": 2}


@dataclass(frozen=True)
class GpuConfig:
    """An A100-class GPU (NVIDIA A100 Tensor Core GPU datasheet, SXM4 80 GB column)."""

    name: str = param("A100-SXM4-80GB", source="NVIDIA A100 datasheet, SXM4 80 GB")
    peak_flops_per_s: float = param(312e12, 1e9, 1e18, "datasheet: 312 TFLOPS dense FP16/BF16 Tensor Core "
                                    "(624 is with sparsity)")
    hbm_bytes_per_s: float = param(2.039e12, 1e9, 1e15, "datasheet: 2,039 GB/s HBM2e (80 GB SXM; the 40 GB part "
                                   "has 1,555 GB/s)")
    board_power_w: float = param(400.0, 1.0, 1e5, "datasheet: max TDP 400 W (SXM); energy = power x time")
    compute_efficiency: float = param(1.0, 1e-6, 1.0, "fraction of peak a matmul reaches; 1.0 = ideal roofline")
    memory_efficiency: float = param(1.0, 1e-6, 1.0, "fraction of peak bandwidth reached; 1.0 = ideal roofline")
    launch_overhead_ps: int = param(0, 0, 10**12, "per kernel; 0 = ideal; 3-5 us is typical without CUDA graphs")
    dtype_bytes: int = param(ACT_BYTES, 1, 8, "FP16/BF16 operands, the precision of the peak above (ACT_BYTES)")
    dynamic_pj_per_flop: float = param(0.0, 0.0, 1e6, "optional energy on top of board power x time (0: power covers it)")
    dynamic_pj_per_byte: float = param(0.0, 0.0, 1e6, "optional energy per byte on top of board power x time")
    batched_gemm_efficiency: float = param(1.0, 1e-6, 1.0, "fraction of peak for per-head batched matmuls "
                                           "(QK^T, AV...); 1.0 = ideal roofline")
    hbm_ops: str = param("update", source="which HBM transfers are GPU traffic: all, update (optimizer state), none",
                         choices=HBM_OPS)

    def __post_init__(self) -> None:
        validate_fields(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# NVIDIA Jetson AGX Orin 64GB (Jetson AGX Orin Series Technical Brief v1.2; Jetson Linux developer
# guide, "Power modes"). Peak FP16 tensor throughput is derived: the GPU's 170 sparse INT8 TOPS
# are 85 dense (Ampere sparsity doubles the rate), and FP16 runs at half the INT8 rate: 42.5e12
# FLOP/s at MAXN (16 SMs, 64 tensor cores, 1.3 GHz). LPDDR5 256-bit at 6400 MT/s: 204.8 GB/s.
# A power mode caps the module's power and sets the GPU clock and active TPCs (of 8) and the
# memory clock; peak scales with TPCs x clock (confirm the per-mode clocks against the guide).
ORIN_PEAK_FLOPS_MAXN = 42.5e12
ORIN_LPDDR5_BYTES_PER_S = 204.8e9
ORIN_GPU_MHZ_MAXN = 1301.25
JETSON_ORIN_MODES = {  # mode: (module power W, GPU TPCs of 8, GPU MHz, EMC MHz of 3199)
    "maxn": (60.0, 8, 1301.25, 3199), "50w": (50.0, 8, 828.75, 3199),
    "30w": (30.0, 4, 624.75, 3199), "15w": (15.0, 3, 420.75, 2133),
}
# Achieved fraction of peak per kernel class (assumed, not measured here; stated so a user sees a
# realistic bound next to the ideal roofline): large FP16 cuBLAS GEMMs typically reach 60-80% of
# tensor peak, per-head batched GEMMs with head_dim 64 far less, element-wise kernels ~80% of DRAM
# bandwidth, and a kernel launch without CUDA graphs costs a few microseconds.
GPU_PROFILES = {
    "ideal": {},
    "realistic": {"compute_efficiency": 0.7, "batched_gemm_efficiency": 0.35, "memory_efficiency": 0.8,
                  "launch_overhead_ps": 4_000_000},
}
GPU_DEVICES = ("a100", "jetson-orin")


def jetson_orin(mode: str = "maxn") -> GpuConfig:
    """Jetson AGX Orin 64GB in power ``mode`` (energy = the mode's power budget x time)."""
    if mode not in JETSON_ORIN_MODES:
        raise ConfigError("mode", f"unknown Jetson AGX Orin power mode {mode!r}", allowed=", ".join(JETSON_ORIN_MODES))
    power, tpcs, mhz, emc = JETSON_ORIN_MODES[mode]
    return GpuConfig(name=f"Jetson-AGX-Orin-64GB-{mode}",
                     peak_flops_per_s=ORIN_PEAK_FLOPS_MAXN * tpcs / 8 * mhz / ORIN_GPU_MHZ_MAXN,
                     hbm_bytes_per_s=ORIN_LPDDR5_BYTES_PER_S * emc / 3199, board_power_w=power)


def gpu_config(sets: dict[str, str] | None = None, device: str = "a100") -> GpuConfig:
    """The ``device`` (A100, or Jetson AGX Orin with ``mode=``) with ``--set key=value``
    overrides; ``profile=ideal|realistic`` applies a set of achieved-efficiency figures first.
    Unknown keys raise naming the key."""
    sets = dict(sets or {})
    profile = sets.pop("profile", "ideal")
    if profile not in GPU_PROFILES:
        raise ConfigError("profile", f"unknown GPU profile {profile!r}", allowed=", ".join(GPU_PROFILES))
    mode = sets.pop("mode", "maxn")
    if device not in GPU_DEVICES:
        raise ConfigError("device", f"unknown GPU {device!r}", allowed=", ".join(GPU_DEVICES))
    if device == "a100" and mode != "maxn":
        raise ConfigError("mode", "power modes are Jetson AGX Orin's", allowed="maxn")
    base = jetson_orin(mode) if device == "jetson-orin" else GpuConfig()
    if GPU_PROFILES[profile]:
        base = dataclasses.replace(base, **GPU_PROFILES[profile],
                                   name=f"{base.name}-{profile}")
    return with_overrides(base, sets) if sets else base


def op_arrays(graph) -> dict[str, np.ndarray]:
    """Per-op columns of the graph (kind/phase codes, layer, MACs, FLOPs, GPU bytes) as numpy arrays."""
    ops = list(graph)
    kind = np.array([KIND_CODES[o.kind] for o in ops], dtype=np.int8)
    mm = np.array([o.m * o.k + o.k * o.n + o.m * o.n for o in ops], dtype=np.int64)
    count = np.array([o.count for o in ops], dtype=np.int64)
    traffic = np.array([(VECTOR_TRAFFIC_BWD if o.phase == "bwd" else VECTOR_TRAFFIC_FWD).get(o.vector_kind, 0)
                        for o in ops], dtype=np.int64)
    return {"kind": kind, "phase": np.array([PHASE_CODES[o.phase] for o in ops], dtype=np.int8),
            "layer": np.array([o.layer for o in ops], dtype=np.int32),
            "macs": np.array([o.macs for o in ops], dtype=np.int64), "mm_elements": mm * count,
            "vector_elements": np.array([o.elements for o in ops], dtype=np.int64) * traffic,
            "hbm_bytes": np.array([o.nbytes for o in ops], dtype=np.int64),
            "batched": (kind == KIND_CODES["dynamic_mm"]) & (count > 1)}


def gpu_bytes(cfg: GpuConfig, a: dict[str, np.ndarray]) -> np.ndarray:
    """Bytes each op moves through GPU memory (see the module docstring)."""
    kind = a["kind"]
    is_mm = (kind == KIND_CODES["static_mm"]) | (kind == KIND_CODES["dynamic_mm"])
    is_hbm = (kind == KIND_CODES["hbm_read"]) | (kind == KIND_CODES["hbm_write"])
    keep_hbm = {"all": is_hbm, "none": np.zeros_like(is_hbm),
                "update": is_hbm & (a["phase"] == PHASE_CODES["update"])}[cfg.hbm_ops]
    nbytes = np.where(is_mm, a["mm_elements"], 0) * cfg.dtype_bytes
    nbytes += np.where(kind == KIND_CODES["vector"], a["vector_elements"], 0) * cfg.dtype_bytes
    nbytes += np.where(keep_hbm, a["hbm_bytes"], 0)
    return nbytes


def gpu_times(cfg: GpuConfig, macs: np.ndarray, nbytes: np.ndarray, kernel: np.ndarray,
              batched: np.ndarray | None = None) -> np.ndarray:
    """Roofline time of each op in ps (int64); ``kernel`` marks ops that pay a launch, ``batched``
    the per-head batched matmuls (their own efficiency)."""
    eff = cfg.compute_efficiency if batched is None else np.where(batched, cfg.batched_gemm_efficiency,
                                                                 cfg.compute_efficiency)
    compute_s = 2.0 * macs / (cfg.peak_flops_per_s * eff)
    memory_s = nbytes / (cfg.hbm_bytes_per_s * cfg.memory_efficiency)
    t = np.rint(np.maximum(compute_s, memory_s) * 1e12).astype(np.int64)
    return t + np.where(kernel & (t > 0), cfg.launch_overhead_ps, 0)


def evaluate_gpu(graph, cfg: GpuConfig | None = None) -> dict[str, np.ndarray]:
    """The ``ops`` table columns of the graph run op after op on the GPU."""
    cfg = cfg or GpuConfig()
    a = op_arrays(graph)
    nbytes = gpu_bytes(cfg, a)
    # HBM transfers of the graph are plain memory traffic on a GPU (part of the kernels that use
    # them), and ReRAM programming does not exist: neither launches a kernel
    kernel = np.isin(a["kind"], [KIND_CODES[k] for k in ("static_mm", "dynamic_mm", "vector")])
    dur = gpu_times(cfg, a["macs"], nbytes, kernel, a["batched"])
    end = np.cumsum(dur)
    energy = (cfg.board_power_w * dur  # 1 W for 1 ps is 1 pJ
              + cfg.dynamic_pj_per_flop * 2.0 * a["macs"] + cfg.dynamic_pj_per_byte * nbytes)
    n = len(dur)
    cols = {"op": np.arange(n, dtype=np.int64), "tier": np.zeros(n, dtype=np.int32),
            "core": np.zeros(n, dtype=np.int32), "layer": a["layer"], "kind": a["kind"], "phase": a["phase"],
            "start_ps": end - dur, "end_ps": end, "macs": a["macs"], "bytes": nbytes,
            "energy_pj": energy.astype(np.float64)}
    step = np.array([o.step for o in graph], dtype=np.int32)
    if n and step.max() >= 0:  # mode generate: each op's decode step, as a chip run records it
        cols["step"] = step
    return cols


def scenario_config(sc) -> dict:
    """The scenario as plain data (manifest ``config.scenario``; ``report`` reads seq and batch)."""
    out = {"name": sc.name, "model": sc.model.name, "mode": sc.mode, "seq": sc.seq, "batch": sc.batch,
           "finetune": sc.finetune, "lora_rank": sc.lora_rank, "lora_targets": list(sc.lora_targets),
           "quant": sc.quant.name, "optimizer": sc.optimizer,
           "pipeline_chunk_tokens": sc.pipeline_chunk_tokens}
    if sc.stream_cores is not None:  # only when set, so other manifests stay as they were
        out["stream_cores"] = sc.stream_cores
    if sc.mode == "generate":  # likewise
        out.update(new_tokens=sc.new_tokens, kv_cache=sc.kv_cache)
    if sc.micro_batches != 1 or sc.schedule != "gpipe":  # systems of chips, likewise
        out.update(micro_batches=sc.micro_batches, schedule=sc.schedule)
    return out


def write_gpu_baseline(sc, out: str | os.PathLike, cfg: GpuConfig | None = None, graph=None,
                       label: str = "gpu") -> dict:
    """Compile ``sc`` (unless ``graph`` is given), evaluate it on the GPU and write a complete run
    directory at ``out``. Returns the manifest."""
    cfg = cfg or GpuConfig()
    path = prepare_out_dir(out)
    # a GPU runs each op over the whole sequence: token chunks (Atleus' layer pipeline) would only
    # make it re-read every weight once per chunk
    graph = compile_step(sc.unpipelined()) if graph is None else graph
    config = {"baseline": label, "gpu": cfg.to_dict(), "scenario": scenario_config(sc)}
    manifest = start_manifest(path, f"baseline {label}", config, {"n_lps": 0, "groups": [], "backend": "none"})
    try:
        cols = evaluate_gpu(graph, cfg)
        sink = LPSink(str(path), 0)
        sink.write("ops", cols, meta={"kind_codes": KIND_CODES, "phase_codes": PHASE_CODES,
                                      "tier_names": "gpu", "baseline": label})
        sink.close()
        figures = summary_figures(path, manifest)
    except BaseException as exc:
        finish_manifest(path, manifest, "failed", {}, error=f"{type(exc).__name__}: {exc}")
        raise
    figures.pop("absent_tables", None)
    return finish_manifest(path, dict(manifest, baseline=label), "complete", figures)


# --- stub latency of a stacked vs a planar layout -------------------------------------------------
def mean_tier_hops(x: int, y: int, tiers: int, layout: str) -> tuple[Fraction, Fraction]:
    """(planar hops, TSV hops) between a random router of tier a and one of tier b != a, averaged
    over ordered pairs of distinct tiers (see the module docstring)."""
    if tiers < 2:
        return Fraction(0), Fraction(0)
    pairs = [(a, b) for a in range(tiers) for b in range(tiers) if a != b]
    if layout == "3d":
        xy = Fraction(sum(abs(i - j) for i in range(x) for j in range(x)), x * x) + \
            Fraction(sum(abs(i - j) for i in range(y) for j in range(y)), y * y)
        return xy, Fraction(sum(abs(a - b) for a, b in pairs), len(pairs))
    if layout != "planar":
        raise ConfigError("layout", f"unknown layout {layout!r}", allowed="3d, planar")
    cols = math.isqrt(tiers - 1) + 1  # ceil(sqrt(tiers))
    total = Fraction(0)
    for a, b in pairs:
        (ra, ca), (rb, cb) = divmod(a, cols), divmod(b, cols)
        # x of a router of block c: c * x + i, i uniform on 0..x-1
        total += sum(abs((ca * x + i) - (cb * x + j)) for i in range(x) for j in range(x)) / Fraction(x * x)
        total += sum(abs((ra * y + i) - (rb * y + j)) for i in range(y) for j in range(y)) / Fraction(y * y)
    return total / len(pairs), Fraction(0)


def stub_latency_ps(layout: str, noc=None, tiers: int | None = None) -> int:
    """Inter-tier stub latency (ps, rounded) of the ``3d`` (TSV) or ``planar`` layout of the NoC
    ``noc`` (default :class:`~atleus_dist.hw.noc.config.NocConfig`); ``tiers`` defaults to the
    mesh's Z."""
    noc = noc or NocConfig()
    x, y, z = _parse_dims(noc.topology.partition(":")[2])
    r = noc.router
    pipeline = r.routing_delay_cycles + r.vc_alloc_delay_cycles + r.sw_alloc_delay_cycles + r.crossbar_delay_cycles
    planar, tsv = mean_tier_hops(x, y, tiers or z, layout)
    cycles = planar * (pipeline + noc.planar.latency_cycles) + tsv * (pipeline + noc.tsv.latency_cycles)
    return max(1, round(cycles * r.clock_period_ps))

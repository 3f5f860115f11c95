"""A scenario: model + mode (inference | finetune with LoRA or full) + sequence, batch, quantisation
and capacity policy; and the quantisation strings like ``M8F4`` (attention-weight bits / FFN bits).

Loaded from ``workloads/scenarios/*.yaml`` or built from command-line flags. Knows nothing of
hardware timing, LPs, processes or Ray; the only file access is :func:`load_scenario`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from atleus_dist.hw.params import check_leaf, hints, param, validate_fields
from atleus_dist.kernel.errors import ConfigError
from atleus_dist.workload.model import ModelSpec, load_model, workloads_dir

MODES = ("inference", "finetune", "generate")
KV_CACHES = ("hbm", "edram")
MAX_NEW_TOKENS = 1024  # decode steps: ~25 ops per layer each, so GPT-2 Medium at 1024 is ~0.6 M ops
FINETUNE_KINDS = ("lora", "full")
POLICIES = ("stream", "fit")
SCHEDULES = ("gpipe", "1f1b")
OPTIMIZERS = ("adam", "sgd")
_QUANT = re.compile(r"^M(\d{1,2})F(\d{1,2})$")


@dataclass(frozen=True)
class Quant:
    """Crossbar-wise quantisation: bits of attention (and LM-head) weights and of FFN weights."""

    attn_bits: int
    ffn_bits: int

    @property
    def name(self) -> str:
        return f"M{self.attn_bits}F{self.ffn_bits}"

    def bits_for(self, weight: str) -> int:
        return self.ffn_bits if weight in ("gate", "up", "down") else self.attn_bits


def parse_quant(text: str) -> Quant:
    m = _QUANT.match(text or "")
    if not m:
        raise ConfigError("quant", f"cannot parse {text!r}", allowed="M<bits>F<bits>, e.g. M8F4, M4F8, M16F16")
    a, f = int(m.group(1)), int(m.group(2))
    for bits in (a, f):
        if not 1 <= bits <= 16:
            raise ConfigError("quant", f"weight bits must be in 1..16, got {text!r}",
                              allowed="M<bits>F<bits> with bits in 1..16")
    return Quant(a, f)


MAX_CHUNKS = 512  # pipeline chunks per step: more makes op graphs of millions of ops (refused up front)


@dataclass(frozen=True)
class ScenarioConfig:
    """A scenario as the user gives it (names and numbers); :meth:`resolve` loads the model and
    checks the fields against it. The defaults are the built-in default scenario."""

    name: str = param("default-gpt2-medium-lora32-s128", source="the README's main job")
    model: str = param("gpt2-medium", source="Atleus evaluates LoRA fine-tuning of GPT-2 Medium")
    mode: str = param("finetune", source="Atleus: fine-tuning; generate: prefill of seq tokens, then new_tokens "
                      "decode steps with a KV cache (workload.decode)", choices=MODES)
    seq: int = param(128, 1, 65536, "simulates in about a minute on 2 cores (the paper's runs use 1024); "
                     "mode generate: the prompt")
    new_tokens: int | None = param(None, 1, MAX_NEW_TOKENS, "mode generate only (required there): decode steps "
                                   "after the prefill, one token per sequence each; None otherwise")
    kv_cache: str = param("hbm", source="mode generate: the KV cache in HBM, interleaved over the channels like "
                          "saved activations; edram: in the ReRAM tiles' eDRAM buffers (ISAAC: 64 KB per tile) "
                          "when it fits", choices=KV_CACHES)
    batch: int = param(1, 1, 1024, "one sequence per step")
    finetune: str = param("lora", source="Atleus: LoRA", choices=FINETUNE_KINDS)
    lora_rank: int = param(32, 1, 65536, "Atleus: LoRA rank 32")
    lora_targets: tuple[str, ...] = param(("q", "v"), source="Atleus: LoRA on W_Q and W_V", length=(1, 16))
    quant: str = param("M8F8", source="8-bit weights unless the scenario says (M<attn bits>F<FFN bits>)")
    policy: str = param("stream", source="stream weights that do not fit the ReRAM tiers", choices=POLICIES)
    optimizer: str = param("adam", source="Adam (Kingma & Ba 2015), as in LoRA fine-tuning", choices=OPTIMIZERS)
    pipeline_chunk_tokens: int = param(32, 1, 2**31 - 1, "32-token chunks: the pipeline fills in a few % of a "
                                       "step, ~40k ops for GPT-2 Medium at seq 1024 (Scenario)")
    stream_cores: int | None = param(None, 1, 4096, "policy stream: ReRAM cores of the stream region; None: the "
                                     "fewest whole cores holding the largest weight's core slices, the rest "
                                     "resident (workload.streaming; bench/RESULTS.md issue 13 session 5)")
    micro_batches: int = param(1, 1, 4096, "systems of chips: one micro-batch (a pipeline wants >= 4 x stages: "
                               "GPipe's bubble (p - 1) / (m + p - 1))")
    schedule: str = param("gpipe", source="GPipe (Huang et al. 2019); 1f1b: PipeDream-Flush (Narayanan et al. 2021)",
                          choices=SCHEDULES)

    def __post_init__(self) -> None:
        validate_fields(self)
        parse_quant(self.quant)

    def resolve(self, root: Path | None = None) -> "Scenario":
        """The :class:`Scenario`: the model loaded, every field checked against it."""
        data = dataclasses.asdict(self)
        return scenario_from_dict(data, root)

    @classmethod
    def of(cls, sc: "Scenario") -> "ScenarioConfig":
        return cls(name=sc.name or sc.model.name, model=sc.model.name, mode=sc.mode, seq=sc.seq,
                   new_tokens=sc.new_tokens, kv_cache=sc.kv_cache, batch=sc.batch,
                   finetune=sc.finetune, lora_rank=sc.lora_rank, lora_targets=sc.lora_targets, quant=sc.quant.name,
                   policy=sc.policy, optimizer=sc.optimizer, pipeline_chunk_tokens=sc.pipeline_chunk_tokens,
                   stream_cores=sc.stream_cores, micro_batches=sc.micro_batches, schedule=sc.schedule)


@dataclass(frozen=True)
class Scenario:
    model: ModelSpec
    mode: str = "finetune"
    seq: int = 128  # the default scenario's (ScenarioConfig)
    batch: int = 1
    finetune: str = "lora"
    lora_rank: int = 32  # Atleus: LoRA rank 32
    lora_targets: tuple[str, ...] = ("q", "v")  # Atleus: LoRA on W_Q and W_V
    quant: Quant = field(default_factory=lambda: Quant(8, 8))  # 8-bit weights unless the scenario says
    policy: str = "stream"
    optimizer: str = "adam"
    # Layer pipelining (ISAAC / PipeLayer style): each layer's token-wise ops are split into chunks of
    # this many tokens of every sequence, so chunk j can enter layer i+1 while chunk j+1 is still in
    # layer i. >= seq gives one chunk (the unpipelined graph). 32 tokens: one chunk through one
    # frozen weight is 32 x 16 bit-serial cycles = 51 us forward on the ReRAM tier, short against a
    # layer (so the pipeline fills in a few % of the step) yet few enough ops that a GPT-2 Medium
    # step at seq 1024 (32 chunks) stays ~40k ops.
    pipeline_chunk_tokens: int = 32
    name: str = ""
    # policy stream: cores of the stream region (None: the fewest that hold the largest weight's
    # core slices; workload.streaming); more cores program more weights side by side, fewer stay resident
    stream_cores: int | None = None
    # systems of chips (workload.stages): micro-batches per replica and their pipeline schedule
    micro_batches: int = 1
    schedule: str = "gpipe"
    # mode generate (workload.decode): decode steps after the prefill, and where the KV cache lives
    new_tokens: int | None = None
    kv_cache: str = "hbm"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError("mode", f"unknown mode {self.mode!r}", allowed=", ".join(MODES))
        if self.finetune not in FINETUNE_KINDS:
            raise ConfigError("finetune", f"unknown kind {self.finetune!r}", allowed=", ".join(FINETUNE_KINDS))
        for f, allowed in (("policy", POLICIES), ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                           ("kv_cache", KV_CACHES)):
            if getattr(self, f) not in allowed:
                raise ConfigError(f, f"unknown value {getattr(self, f)!r}", allowed=", ".join(allowed))
        declared = {f.name: f for f in dataclasses.fields(ScenarioConfig)}
        for f in ("seq", "batch", "lora_rank", "pipeline_chunk_tokens", "micro_batches"):
            check_leaf(declared[f], int, getattr(self, f), f)
        for f in ("stream_cores", "new_tokens"):
            if getattr(self, f) is not None:
                check_leaf(declared[f], int, getattr(self, f), f)
        self._check_generate()
        if len(self.chunks()) > MAX_CHUNKS:
            raise ConfigError("pipeline_chunk_tokens", f"{self.pipeline_chunk_tokens} cuts seq {self.seq} into "
                              f"{len(self.chunks())} chunks", allowed=f"at least {-(-self.seq // MAX_CHUNKS)}")
        fixed = self.model.tokens_per_sample()
        if fixed is not None and self.seq != fixed:
            raise ConfigError("seq", f"{self.model.name} always has {fixed} tokens per sample", allowed=fixed)
        m = self.model
        if m.position_kind == "learned" and self.seq > m.positions:
            raise ConfigError("seq", f"{self.seq} exceeds the {m.positions} learned positions of {m.name}")
        if self.uses_lora:
            shapes = m.linear_shapes()
            if not self.lora_targets:
                raise ConfigError("lora_targets", "LoRA needs at least one target", allowed=", ".join(shapes))
            for t in self.lora_targets:
                if t not in shapes:
                    raise ConfigError("lora_targets", f"{t!r} is not a weight of {m.name}", allowed=", ".join(shapes))
            limit = min(min(shapes[t]) for t in self.lora_targets)
            if self.lora_rank > limit:
                raise ConfigError("lora_rank", f"{self.lora_rank} exceeds the smallest target dimension {limit} "
                                  f"(d_model {m.d_model})")
            object.__setattr__(self, "lora_targets", tuple(dict.fromkeys(self.lora_targets)))

    def _check_generate(self) -> None:
        m = self.model
        if self.mode != "generate":
            for f, unset in (("new_tokens", None), ("kv_cache", "hbm")):
                if getattr(self, f) != unset:
                    raise ConfigError(f, f"only for mode generate (mode is {self.mode!r})", allowed=unset)
            return
        if self.new_tokens is None:
            raise ConfigError("new_tokens", "mode generate needs the number of decode steps",
                              allowed=f"1..{MAX_NEW_TOKENS}")
        if not (m.causal and m.head == "lm"):
            raise ConfigError("mode", f"{m.name} is not a causal language model (generate decodes with an LM "
                              "head)", allowed="inference, finetune")
        if m.position_kind == "learned" and self.seq + self.new_tokens > m.positions:
            raise ConfigError("new_tokens", f"seq {self.seq} + {self.new_tokens} new tokens exceed the "
                              f"{m.positions} learned positions of {m.name}",
                              allowed=f"1..{max(0, m.positions - self.seq)}")

    @property
    def tokens(self) -> int:
        return self.seq * self.batch

    def chunks(self) -> list[tuple[int, int]]:
        """Pipeline chunks as (first position, positions) along the sequence; each chunk holds those
        positions of every sequence of the batch. The last chunk takes the remainder."""
        c = min(self.pipeline_chunk_tokens, self.seq)
        return [(a, min(c, self.seq - a)) for a in range(0, self.seq, c)]

    def unpipelined(self) -> "Scenario":
        """The same step as one chunk (what a GPU baseline should run: one kernel per whole op)."""
        return dataclasses.replace(self, pipeline_chunk_tokens=self.seq)

    @property
    def uses_lora(self) -> bool:
        return self.mode == "finetune" and self.finetune == "lora"

    @property
    def full_finetune(self) -> bool:
        return self.mode == "finetune" and self.finetune == "full"

    def lora_params(self) -> int:
        if not self.uses_lora:
            return 0
        shapes = self.model.linear_shapes()
        return self.model.layers * sum(self.lora_rank * (shapes[t][0] + shapes[t][1]) for t in self.lora_targets)

    def trainable_params(self) -> int:
        if self.mode != "finetune":
            return 0
        return self.lora_params() if self.uses_lora else self.model.param_count()


SCENARIO_FIELDS = ("name", "model", "mode", "seq", "new_tokens", "kv_cache", "batch", "finetune", "lora_rank",
                   "lora_targets", "quant", "policy", "optimizer", "pipeline_chunk_tokens", "stream_cores",
                   "micro_batches", "schedule")


def scenario_from_dict(data: dict, root: Path | None = None) -> Scenario:
    if not isinstance(data, dict):
        raise ConfigError("scenario", "must be a mapping")
    unknown = sorted(set(data) - set(SCENARIO_FIELDS))
    if unknown:
        raise ConfigError(unknown[0], "not a scenario field", allowed=", ".join(SCENARIO_FIELDS))
    if "model" not in data:
        raise ConfigError("model", "missing from the scenario")
    kw = dict(data)
    declared = {f.name: f for f in dataclasses.fields(ScenarioConfig)}
    th = hints(ScenarioConfig)
    for key in kw:
        kw[key] = check_leaf(declared[key], th[key], kw[key], key)
    kw["model"] = load_model(kw["model"], root)
    if "quant" in kw:
        kw["quant"] = parse_quant(kw["quant"])
    return Scenario(**kw)


def available_scenarios(root: Path | None = None) -> list[str]:
    return sorted(p.stem for p in ((root or workloads_dir()) / "scenarios").glob("*.yaml"))


def scenario_file(name: str, root: Path | None = None) -> Path:
    """The file of a named scenario (``workloads/scenarios/<name>.yaml``); unknown names list them."""
    path = (root or workloads_dir()) / "scenarios" / f"{name}.yaml"
    if not isinstance(name, str) or "/" in name or not path.is_file():
        raise ConfigError("scenario", f"unknown scenario {name!r}", allowed=", ".join(available_scenarios(root)))
    return path


def load_scenario(name: str, root: Path | None = None) -> Scenario:
    """The scenario of a file; sections of the run beside it (``system:``, a mapping - no scenario
    field is one) belong to the run's configuration (:mod:`atleus_dist.config.load`), not here."""
    with open(scenario_file(name, root)) as fh:
        data = yaml.safe_load(fh)
    data = {k: v for k, v in data.items() if not isinstance(v, dict)} if isinstance(data, dict) else data
    data.setdefault("name", name)
    return scenario_from_dict(data, root)

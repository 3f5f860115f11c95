"""Transformer model shapes loaded from ``workloads/models/*.yaml`` and their parameter counts.

A model is data: layers, widths, heads, activation, vocabulary, positions, norm placement.
``ModelSpec.param_count()`` counts the parameters of the published module set (biases included,
tied embeddings once) so that tests can compare it to the model cards. Knows nothing of hardware,
mapping, LPs, processes or Ray; the only file access is :func:`load_model`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from atleus_dist.hw.params import check_int, param, validate_fields
from atleus_dist.kernel.errors import ConfigError

ACTIVATIONS = ("gelu", "relu", "swiglu")
NORMS = ("layernorm", "rmsnorm")
NORM_POSITIONS = ("pre", "post")
POSITION_KINDS = ("learned", "rope", "alibi", "none")
HEADS = ("lm", "classifier", "none")
INPUTS = ("tokens", "patches")


def workloads_dir() -> Path:
    """``$ATLEUS_WORKLOADS`` or the package's ``atleus_dist/workloads/`` (models, scenarios, arch
    files: shipped in the wheel; the repository's top-level ``workloads`` is a symlink to it)."""
    env = os.environ.get("ATLEUS_WORKLOADS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "workloads"


CARD = "the model's YAML, from its public model card"
REQUIRED = dataclasses.MISSING


@dataclass(frozen=True)
class ModelSpec:
    name: str = param(REQUIRED, source=CARD)
    layers: int = param(REQUIRED, 1, 1024, CARD)
    d_model: int = param(REQUIRED, 1, 1 << 17, CARD)
    heads: int = param(REQUIRED, 1, 1024, CARD)
    kv_heads: int = param(REQUIRED, 1, 1024, CARD)
    d_ff: int = param(REQUIRED, 1, 1 << 20, CARD)
    activation: str = param(REQUIRED, source=CARD, choices=ACTIVATIONS)
    vocab: int = param(REQUIRED, 0, 10**7, CARD)
    positions: int = param(REQUIRED, 0, 10**7, CARD)
    # True for decoder (GPT-2, BLOOM, OPT, Llama): token t attends to tokens <= t only, so a pipeline
    # chunk needs the keys/values of itself and earlier chunks; False for encoders (BERT, RoBERTa,
    # ViT), where every chunk needs every chunk's keys/values. Required: it decides dependencies.
    causal: bool = param(REQUIRED, source=CARD)
    position_kind: str = param("learned", source="GPT-2/BERT-style learned positions", choices=POSITION_KINDS)
    position_offset: int = param(0, 0, 10_000, "OPT/RoBERTa reserve the first positions (padding offset)")
    token_types: int = param(0, 0, 1000, "BERT: 2 segment embeddings; others none")
    norm: str = param("layernorm", source="most models (Llama: rmsnorm)", choices=NORMS)
    norm_position: str = param("pre", source="GPT-2 and later (BERT: post)", choices=NORM_POSITIONS)
    embedding_norm: bool = param(False, source="BLOOM/BERT normalise embeddings; GPT-2 does not")
    final_norm: bool = param(True, source="pre-norm models end with a norm")
    bias: bool = param(True, source="most models (Llama: no biases)")
    tied_embeddings: bool = param(True, source="GPT-2 ties the LM head to the embedding")
    pooler: bool = param(False, source="BERT's pooler; others none")
    head: str = param("lm", source="language models", choices=HEADS)
    classes: int = param(0, 0, 10**6, "classifier heads only (ViT: 1000 ImageNet classes)")
    input: str = param("tokens", source="text models (ViT: patches)", choices=INPUTS)
    patch_size: int = param(0, 0, 4096, "ViT only")
    image_size: int = param(0, 0, 65536, "ViT only")
    image_channels: int = param(0, 0, 64, "ViT only")
    cls_token: bool = param(False, source="ViT prepends a learned class token; text models do not")
    published_params: int = param(0, 0, 10**14, "the parameter count the model card publishes")
    published_precision: object = "exact"  # "exact" or a number of significant digits

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.d_model % self.heads:
            raise ConfigError("heads", f"{self.heads} heads do not divide d_model {self.d_model}")
        if self.heads % self.kv_heads:
            raise ConfigError("kv_heads", f"{self.kv_heads} kv heads do not divide {self.heads} heads")
        if self.input == "tokens" and self.vocab < 1:
            raise ConfigError("vocab", "a token model needs vocab >= 1")
        if self.input == "patches":
            for f in ("patch_size", "image_size", "image_channels"):
                check_int(f, getattr(self, f))
            if self.image_size % self.patch_size:
                raise ConfigError("patch_size", f"{self.patch_size} does not divide image_size {self.image_size}")
        if self.head == "lm" and self.input != "tokens":
            raise ConfigError("head", "an lm head needs token inputs", allowed="classifier, none")
        if self.head == "classifier" and self.classes < 1:
            raise ConfigError("classes", "a classifier head needs classes >= 1")
        if self.published_precision != "exact" and not isinstance(self.published_precision, int):
            raise ConfigError("published_precision", "must be 'exact' or a number of significant digits")

    # --- derived shapes ------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def norm_params(self) -> int:
        return 2 * self.d_model if self.norm == "layernorm" else self.d_model

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """Static weight matrices of one layer as (K inputs, N outputs)."""
        d, kv, ff = self.d_model, self.kv_dim, self.d_ff
        shapes = {"q": (d, d), "k": (d, kv), "v": (d, kv), "o": (d, d)}
        if self.activation == "swiglu":
            shapes.update({"gate": (d, ff), "up": (d, ff), "down": (ff, d)})
        else:
            shapes.update({"up": (d, ff), "down": (ff, d)})
        return shapes

    def head_shape(self) -> tuple[int, int] | None:
        if self.head == "lm":
            return (self.d_model, self.vocab)
        if self.head == "classifier":
            return (self.d_model, self.classes)
        return None

    def tokens_per_sample(self) -> int | None:
        """Fixed sequence length for patch models (patches + class token); None for text."""
        if self.input != "patches":
            return None
        return (self.image_size // self.patch_size) ** 2 + int(self.cls_token)

    # --- parameter counts --------------------------------------------------------------------
    def layer_params(self) -> int:
        n = sum(k * nout + (nout if self.bias else 0) for k, nout in self.linear_shapes().values())
        return n + 2 * self.norm_params

    def embedding_params(self) -> int:
        d = self.d_model
        if self.input == "patches":
            n = self.patch_size ** 2 * self.image_channels * d + (d if self.bias else 0)
            n += d if self.cls_token else 0
        else:
            n = self.vocab * d
        if self.position_kind == "learned":
            n += (self.positions + self.position_offset) * d
        n += self.token_types * d
        return n + (self.norm_params if self.embedding_norm else 0)

    def head_params(self) -> int:
        shape = self.head_shape()
        if shape is None or (self.head == "lm" and self.tied_embeddings):
            return 0
        k, n = shape
        return k * n + (n if self.head == "classifier" else 0)

    def param_count(self) -> int:
        n = self.embedding_params() + self.layers * self.layer_params() + self.head_params()
        n += self.norm_params if self.final_norm else 0
        n += (self.d_model * self.d_model + self.d_model) if self.pooler else 0
        return n

    def matches_published(self) -> bool:
        """True when the counted parameters equal the published total at its stated precision."""
        n = self.param_count()
        if self.published_precision == "exact":
            return n == self.published_params
        digits = int(self.published_precision)
        return float(f"{n:.{digits}g}") == float(f"{self.published_params:.{digits}g}")


def available_models(root: Path | None = None) -> list[str]:
    d = (root or workloads_dir()) / "models"
    return sorted(p.stem for p in d.glob("*.yaml"))


def model_from_dict(data: dict) -> ModelSpec:
    if not isinstance(data, dict):
        raise ConfigError("model", "must be a mapping of model fields")
    names = {f.name for f in dataclasses.fields(ModelSpec)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(unknown[0], "not a model field", allowed=", ".join(sorted(names)))
    missing = [f.name for f in dataclasses.fields(ModelSpec)
               if f.default is dataclasses.MISSING and f.name not in data]
    if missing:
        raise ConfigError(missing[0], "missing from the model definition")
    return ModelSpec(**data)


def load_model(name: str, root: Path | None = None) -> ModelSpec:
    """The model ``workloads/models/<name>.yaml``; unknown names list the available ones."""
    path = (root or workloads_dir()) / "models" / f"{name}.yaml"
    if not isinstance(name, str) or "/" in name or not path.is_file():
        raise ConfigError("model", f"unknown model {name!r}", allowed=", ".join(available_models(root)))
    with open(path) as fh:
        return model_from_dict(yaml.safe_load(fh))

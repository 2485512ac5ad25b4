"""What every model loader provides: preprocessing off the critical path, then a forward pass."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import InputError
from .spec import MODEL_DTYPES, ModelSpec

_TORCH_DTYPES = {name: getattr(torch, name) for name in MODEL_DTYPES}


def model_dtype(name: str) -> torch.dtype:
    try:
        return _TORCH_DTYPES[name]
    except KeyError:
        raise InputError(f"dtype {name}: expected one of {', '.join(MODEL_DTYPES)}") from None


@dataclass
class Prepared:
    """A preprocessed batch: model inputs for the items at ``ok`` (positions in the batch);
    ``failed`` holds ``(position, reason)`` for items that could not be decoded."""

    inputs: Any
    ok: list[int]
    failed: list[tuple[int, str]] = field(default_factory=list)


class Encoder:
    """A frozen model ready to embed one modality.

    Subclasses set ``spec``, ``modality``, ``n_layers`` (hidden-state layers available to
    ``--layers``), ``default_pool`` (what ``--pool`` means when not given) and ``device``.
    """

    spec: ModelSpec
    modality: str
    n_layers: int
    default_pool: str = "mean"
    device: torch.device
    dtype_name: str = "float32"
    max_length: int | None = None

    def length(self, item) -> int:
        """Cheap size proxy for sorting a shard by length (cuts padding); 0 = no sorting."""
        return len(item) if isinstance(item, str) and self.modality == "text" else 0

    def prepare(self, items: list) -> Prepared:  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, prepared: Prepared, layers: list[int] | None, pool: str | None) -> dict[str, torch.Tensor]:
        """Pooled (len(ok), dim) tensors keyed by :func:`~latentlab.loaders.spec.layer_key`."""
        raise NotImplementedError  # pragma: no cover

    def describe_pool(self, layers: list[int] | None, pool: str | None) -> str:
        return pool or self.default_pool

    def normalizes(self, layers: list[int] | None, pool: str | None) -> bool:
        """Whether the model's own pipeline L2-normalises these outputs (recorded in the sidecar)."""
        return False

    def provenance(self) -> dict:
        return {}


def to_device(batch: dict, device: torch.device) -> dict:
    """Move the tensors of a tokenizer/processor output to ``device`` (other values as they are)."""
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}

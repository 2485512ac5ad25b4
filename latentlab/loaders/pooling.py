"""Pooling token states into one vector per item, respecting the attention mask."""
from __future__ import annotations

import torch

from ..errors import InputError
from .spec import POOLS


def check_pool(pool: str | None) -> str | None:
    if pool is not None and pool not in POOLS:
        raise InputError(f"pool {pool}: expected one of {', '.join(POOLS)}")
    return pool


def pool_tokens(hidden: torch.Tensor, mask: torch.Tensor | None, how: str) -> torch.Tensor:
    """(batch, tokens, dim) → (batch, dim) in float32.

    ``mean``: average of the unmasked tokens (padding excluded, as in Sentence-BERT,
    Reimers & Gurevych 2019); ``cls``: the first token; ``last``: the last unmasked token
    (works for left and right padding); ``max``: element-wise max over unmasked tokens.
    Without a mask (vision models) every token counts.
    """
    h = hidden.float()
    if mask is None:
        mask = torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)
    m = mask.to(h.device).bool()
    if how == "mean":
        w = m.unsqueeze(-1).to(h.dtype)
        return (h * w).sum(1) / w.sum(1).clamp_min(1.0)
    if how == "cls":
        return h[:, 0]
    if how == "last":
        positions = torch.arange(h.shape[1], device=h.device).expand_as(m)
        idx = torch.where(m, positions, torch.zeros_like(positions)).argmax(1)
        return h[torch.arange(h.shape[0], device=h.device), idx]
    if how == "max":
        return h.masked_fill(~m.unsqueeze(-1), float("-inf")).amax(1)
    raise InputError(f"pool {how}: expected one of {', '.join(POOLS)}")

"""The STRUCTURE regulariser: keep a projection's neighbourhood structure close to its input's.

For a batch of embeddings Z (n × d), rows are L2-normalised and then centred on the batch
mean, ``Z̃``; the similarity structure is the row-stochastic matrix ``P = softmax(Z̃Z̃ᵀ/τ)``
(row i: a distribution over the batch, i included), and its powers ``P^l`` describe
l-step neighbourhoods (random walks on the similarity graph). For the source batch X and
its projection f(X) the regulariser is

    R(X, f(X)) = (1/L) Σ_{l=1..L} (1/n) Σ_i JS(P_X^l[i] ‖ P_f(X)^l[i]),

the Jensen–Shannon divergence between matching rows, averaged over rows and over the
L = ``levels`` powers (Gröger et al. 2025, eq. for R_S; the authors' code also divides by
the number of levels). τ is fixed (not learned).

**JS direction.** Here JS(p ‖ q) = ½ KL(p ‖ m) + ½ KL(q ‖ m) with m = ½(p + q), the standard
(symmetric, bounded by log 2) definition. The authors' code calls
``F.kl_div(log(q), m)`` and ``F.kl_div(log(p), m)``, which compute KL(m ‖ q) and KL(m ‖ p):
the *reverse* KL pair, also zero exactly when p = q but unbounded and with gradients that
weight the entries differently (it penalises q being small where m is not). It also adds
eps = 1e-12 inside the logs; here logs are taken of strictly positive values clamped at the
dtype's smallest normal number, so identical inputs give exactly 0.

References
----------
Gröger, Wen, Le & Brbić, "With Limited Data for Multimodal Alignment, Let the STRUCTURE
Guide You", NeurIPS 2025, arXiv 2506.16895 (reference code: ``structure_reg`` in its
``src/loss/clip_loss.py``).
Lin, "Divergence measures based on the Shannon entropy", IEEE Trans. Inf. Theory 37(1), 1991.
"""
from __future__ import annotations

import torch

from ..compute import l2_normalize

#: similarity temperature τ of the structure distributions: the CLIP temperature at
#: initialisation, which the authors' CLIPLoss passes to the regulariser
STRUCTURE_TAU = 0.07


def structure_matrix(Z: torch.Tensor, tau: float = STRUCTURE_TAU) -> torch.Tensor:
    """``softmax(Z̃Z̃ᵀ/τ)`` row-wise, with ``Z̃`` the L2-normalised rows centred on their mean
    (normalise first, then centre: the authors' default order)."""
    Zn = l2_normalize(Z)
    Zn = Zn - Zn.mean(0, keepdim=True)
    return torch.softmax(Zn @ Zn.T / tau, dim=1)


def js_rows(P: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """Jensen–Shannon divergence (nats) between matching rows of row-stochastic P and Q."""
    tiny = torch.finfo(P.dtype).tiny
    M = 0.5 * (P + Q)
    logm = M.clamp_min(tiny).log()
    kl_pm = (P * (P.clamp_min(tiny).log() - logm)).sum(1)
    kl_qm = (Q * (Q.clamp_min(tiny).log() - logm)).sum(1)
    return 0.5 * (kl_pm + kl_qm)


def structure_loss(original: torch.Tensor, projected: torch.Tensor, levels: int = 1,
                   tau: float = STRUCTURE_TAU) -> torch.Tensor:
    """R(original, projected): mean over rows and over ``levels`` matrix powers of the row-wise
    JS divergence between the two batches' structure matrices (a 0-dim tensor; gradients flow
    into both arguments — detach ``original`` for a fixed reference). Rows are paired; the
    widths may differ. Computed in at least float32 (never under bf16 autocast)."""
    if original.shape[0] != projected.shape[0]:
        raise ValueError(f"structure_loss: {original.shape[0]} vs {projected.shape[0]} rows")
    if levels < 1:
        raise ValueError(f"structure_loss: levels={levels} must be ≥ 1")
    dtype = torch.promote_types(torch.promote_types(original.dtype, projected.dtype), torch.float32)
    with torch.autocast(original.device.type, enabled=False):
        P = structure_matrix(original.to(dtype), tau)
        Q = structure_matrix(projected.to(dtype), tau)
        total = torch.zeros((), dtype=dtype, device=P.device)
        Pl, Ql = P, Q
        for level in range(1, levels + 1):
            if level > 1:  # l-step neighbourhoods: powers of the row-stochastic matrices
                Pl, Ql = Pl @ P, Ql @ Q
            total = total + js_rows(Pl, Ql).mean()
        return total / levels


__all__ = ["structure_loss", "structure_matrix", "js_rows", "STRUCTURE_TAU"]

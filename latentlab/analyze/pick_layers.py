"""Which layers to align: every (source layer, target layer) pair scored and ranked.

Each pair of layers is scored on the paired rows by mutual k-NN (Huh et al. 2024: the mean
shared fraction of the k cosine nearest neighbours) and by linear CKA (Kornblith et al.
2019), each beside what shuffled pairs give: the mean score over K seeded shufflings of the
target rows, the null-calibrated score (Gröger, Wen & Brbić 2026: 0 = no better than chance)
and the add-one p-value. The pairs are ranked by mutual k-NN, then by CKA. STRUCTURE (Gröger
et al. 2025) reports that the last layers are often not the best choice for alignment — this
ranking is how a user finds out for their own models.

This is a thin ranking over :func:`latentlab.analyze.matrix.similarity_matrix`, which
computes the rows × cols scores and their calibration; each shuffle moves the target rows of
every target layer at once, so the calibrated *best* pair is paid for as the maximum over all
pairs (``best_calibrated``), not as one comparison.

References
----------
Huh, Cheung, Wang & Isola, "The Platonic Representation Hypothesis", ICML 2024.
Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations Revisited", ICML 2019.
Gröger, Wen & Brbić, "An Aristotelian view of the Platonic representation hypothesis", ICML 2026.
Gröger et al., "With Limited Data for Multimodal Alignment, Let the STRUCTURE Guide You", 2025.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError
from .. import stats
from .matrix import similarity_matrix
from .prep import check_positive

METRICS = (("mutual_knn", "mutual_knn"), ("cka", "linear_cka"))


@dataclass(frozen=True)
class LayerPair:
    """One (source layer, target layer) pair: each score, its shuffled-pairs mean, calibrated score, p-value."""

    rank: int
    source: str
    target: str
    source_index: int
    target_index: int
    mutual_knn: float | None
    mutual_knn_shuffled: float | None
    mutual_knn_calibrated: float | None
    mutual_knn_p_value: float | None
    cka: float | None
    cka_shuffled: float | None
    cka_calibrated: float | None
    cka_p_value: float | None


@dataclass(frozen=True)
class PickLayersResult:
    """Every layer pair, best first (mutual k-NN, then CKA; similarities: higher = more alike)."""

    n: int
    k: int
    shuffles: int
    alpha: float
    sources: list[str]
    targets: list[str]
    pairs: list[LayerPair]
    #: the best pair's score calibrated as a maximum over all pairs (one shuffle moves every target layer)
    best_calibrated: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> LayerPair:
        return self.pairs[0]

    def to_dict(self) -> dict:
        from ..results import to_jsonable

        return to_jsonable({"n": self.n, "k": self.k, "shuffles": self.shuffles, "alpha": self.alpha,
                            "sources": self.sources, "targets": self.targets,
                            "best": self.best.__dict__, "pairs": [p.__dict__ for p in self.pairs],
                            "best_calibrated": {m: c.to_dict() for m, c in self.best_calibrated.items()},
                            "notes": self.notes})


def _value(v):
    return None if v is None else float(v)


def pick_layers(sources, targets, *, k: int = 10, shuffles: int = 20, alpha: float = 0.05, seed: int = 0,
                source_labels=None, target_labels=None, device="auto", dtype="float32") -> PickLayersResult:
    """Score and rank every (source layer, target layer) pair of row-paired inputs.

    Parameters
    ----------
    sources, targets : the layers of each model (paths — ``PATH::i`` picks a slice of a 3-D
        .npy — or arrays); every input has the same rows, row i being the same item.
    k : neighbours of mutual k-NN.
    shuffles : seeded shufflings of the target rows for the shuffled-pairs score (their mean),
        the calibrated score and the p-value; ≥ ⌈1/α⌉ − 1 for a calibrated value that can be > 0.
    """
    sources, targets = list(sources), list(targets)
    if not sources or not targets:
        raise InputError(f"{'sources' if not sources else 'targets'}: give at least one layer")
    k = check_positive(k, "k", integer=True, allow_none=False)
    shuffles = check_positive(shuffles, "shuffles", integer=True, allow_none=False)
    alpha = stats.check_alpha(alpha)
    common = dict(row_labels=source_labels, col_labels=target_labels, calibrate=shuffles, alpha=alpha, seed=seed,
                  device=device, dtype=dtype)
    mats = {key: similarity_matrix(sources, targets, metric=metric, params={"k": k} if key == "mutual_knn" else None,
                                   **common) for key, metric in METRICS}
    first = mats["mutual_knn"]
    pairs = []
    for i, src in enumerate(first.row_labels):
        for j, tgt in enumerate(first.col_labels):
            cells = {}
            for key, m in mats.items():
                cal = m.calibrated[i][j] if m.calibrated else None
                cells.update({key: _value(m.matrix[i][j]), f"{key}_shuffled": cal.null_mean if cal else None,
                              f"{key}_calibrated": cal.calibrated if cal else None,
                              f"{key}_p_value": cal.p_value if cal else None})
            pairs.append(dict(source=src, target=tgt, source_index=i, target_index=j, **cells))
    # best first; an undefined score (a constant layer) sorts last
    pairs.sort(key=lambda p: tuple((p[m] is None, -(p[m] or 0.0)) for m, _ in METRICS))
    ranked = [LayerPair(rank=r + 1, **p) for r, p in enumerate(pairs)]
    notes = sorted(set(first.notes + mats["cka"].notes))
    return PickLayersResult(n=first.n, k=int(first.params.get("k", k)), shuffles=shuffles, alpha=alpha,
                            sources=list(first.row_labels), targets=list(first.col_labels), pairs=ranked,
                            best_calibrated={key: m.aggregate["best"] for key, m in mats.items() if m.aggregate},
                            notes=notes)


__all__ = ["pick_layers", "PickLayersResult", "LayerPair"]

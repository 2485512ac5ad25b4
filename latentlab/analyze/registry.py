"""One registry of the paired similarity measures: what each one is, and how to compute it.

Every measure declares its direction (similarity or distance), its range, the best score it
can attain (for null calibration), the transformations it is invariant to, its paper and a
``prepare`` function returning a :class:`~latentlab.analyze.prep.Prepared` (the score, and
its value under shuffled pairing). The CLI help (``latentlab similarity --list``), the JSON
of ``similarity`` / ``cka-matrix``, calibration and the table-driven invariance test
(``tests/analyze/test_registry.py``) all read this table, in the style of ReSi's measure
flags (Klabunde et al., "ReSi: A Comprehensive Benchmark for Representational Similarity
Measures", ICLR 2025).

Invariance names (each applied to one space while the other is kept):
``rotation`` (x ↦ xQ, Q orthogonal), ``isotropic_scale`` (x ↦ c·x, c > 0), ``translation``
(x ↦ x + t), ``invertible_linear`` (x ↦ xM, M invertible).
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Callable

from ..errors import InputError

INVARIANCES = ("rotation", "isotropic_scale", "translation", "invertible_linear")
SIMILARITY, DISTANCE = "similarity", "distance"


@dataclass(frozen=True)
class Measure:
    """A paired measure: row i of A and row i of B describe the same item."""

    name: str
    direction: str
    range: tuple[float, float]
    invariances: frozenset | Callable[[dict], frozenset]
    reference: str
    summary: str
    target: str  # "module:function" of the prepare function, imported on first use
    params: dict = field(default_factory=dict)
    quadratic: bool = False  # time O(n²) (chunked, never an n × n matrix held unless said)

    @property
    def higher_is_better(self) -> bool:
        return self.direction == SIMILARITY

    @property
    def best(self) -> float:
        """The best attainable score (the s_max of calibration)."""
        return self.range[1] if self.higher_is_better else self.range[0]

    def invariant_to(self, params: dict | None = None) -> frozenset:
        inv = self.invariances
        return inv({**self.params, **(params or {})}) if callable(inv) else inv

    def prepare(self, x, y, *, backend=None, **params):
        module, func = self.target.split(":")
        fn = getattr(importlib.import_module(module), func)
        unknown = set(params) - set(self.params)
        if unknown:
            raise InputError(f"{self.name} takes no parameter {', '.join(sorted(unknown))}")
        return fn(x, y, backend=backend, **{**self.params, **params})

    def describe(self) -> dict:
        return {"name": self.name, "direction": self.direction, "range": list(self.range),
                "invariances": sorted(self.invariant_to()), "reference": self.reference,
                "summary": self.summary, "params": dict(self.params), "quadratic": self.quadratic}


def _shape_invariances(params: dict) -> frozenset:
    from .shape import invariances
    return invariances(params.get("alpha", 1.0))


def _rsa_invariances(params: dict) -> frozenset:
    from .rsa import INVARIANCES as RSA_INV
    return frozenset(k for k, holds in RSA_INV[params.get("rdm", "correlation")].items() if holds)


_STD = frozenset({"rotation", "isotropic_scale", "translation"})
_COSINE_KNN = frozenset({"rotation", "isotropic_scale"})
_HUH = "Huh, Cheung, Wang & Isola, The Platonic Representation Hypothesis, ICML 2024"

MEASURES: dict[str, Measure] = {m.name: m for m in [
    Measure("linear_cka", SIMILARITY, (0.0, 1.0), _STD,
            "Kornblith, Norouzi, Lee & Hinton, Similarity of Neural Network Representations Revisited, ICML 2019",
            "centred kernel alignment, linear kernel", "latentlab.analyze.cka:prepare_linear_cka",
            {"debiased": False}),
    Measure("debiased_cka", SIMILARITY, (-1.0, 1.0), _STD,
            "Song et al., JMLR 2012 (unbiased HSIC); Kornblith et al., ICML 2019",
            "linear CKA with the unbiased HSIC estimator (can dip below 0 for unrelated inputs)",
            "latentlab.analyze.cka:prepare_linear_cka", {"debiased": True}),
    Measure("rbf_cka", SIMILARITY, (0.0, 1.0), _STD,
            "Kornblith et al., ICML 2019 (σ = sigma_frac × median distance)",
            "centred kernel alignment, Gaussian kernel", "latentlab.analyze.cka:prepare_rbf_cka",
            {"sigma_frac": 0.5, "debiased": False}, quadratic=True),
    Measure("mutual_knn", SIMILARITY, (0.0, 1.0), _COSINE_KNN, _HUH,
            "mean shared fraction of the k cosine nearest neighbours", "latentlab.analyze.neighbors:prepare_mutual_knn_xy",
            {"k": 10}, quadratic=True),
    Measure("cknna", SIMILARITY, (-1.0, 1.0), _COSINE_KNN, _HUH,
            "CKA restricted to mutual k-nearest-neighbour pairs (unbiased HSIC)",
            "latentlab.analyze.knn_scores:prepare_cknna", {"k": 10}, quadratic=True),
    Measure("cycle_knn", SIMILARITY, (0.0, 1.0), _COSINE_KNN, _HUH,
            "fraction of rows found again going B's k-NN then A's k-NN",
            "latentlab.analyze.knn_scores:prepare_cycle_knn", {"k": 10}, quadratic=True),
    Measure("lcs_knn", SIMILARITY, (0.0, 1.0), _COSINE_KNN, _HUH,
            "longest common subsequence of the ordered k-NN lists / k",
            "latentlab.analyze.knn_scores:prepare_lcs_knn", {"k": 10}, quadratic=True),
    Measure("edit_distance_knn", SIMILARITY, (0.0, 1.0), _COSINE_KNN, _HUH,
            "1 − Levenshtein distance of the ordered k-NN lists / k",
            "latentlab.analyze.knn_scores:prepare_edit_distance_knn", {"k": 10}, quadratic=True),
    Measure("svcca", SIMILARITY, (0.0, 1.0), _STD,
            "Raghu, Gilmer, Yosinski & Sohl-Dickstein, SVCCA, NeurIPS 2017",
            "mean canonical correlation of the top-variance PCA parts", "latentlab.analyze.subspace:prepare_svcca_xy",
            {"variance": 0.99}),
    Measure("pwcca", SIMILARITY, (0.0, 1.0), frozenset({"isotropic_scale", "translation"}),
            "Morcos, Raghu & Bengio, NeurIPS 2018", "projection-weighted mean canonical correlation",
            "latentlab.analyze.subspace:prepare_pwcca"),
    Measure("rsa", SIMILARITY, (-1.0, 1.0), _rsa_invariances,
            "Kriegeskorte, Mur & Bandettini, Representational similarity analysis, Front. Syst. Neurosci. 2008",
            "rank (or Pearson) correlation of the two representational dissimilarity matrices",
            "latentlab.analyze.rsa:prepare_rsa", {"method": "spearman", "rdm": "correlation"}, quadratic=True),
    Measure("distance_correlation", SIMILARITY, (0.0, 1.0), _STD,
            "Székely, Rizzo & Bakirov, Ann. Statist. 35(6), 2007",
            "distance correlation (0 ⇔ independent, population); bias_corrected: dCor², unbiased, can dip below 0",
            "latentlab.analyze.distcorr:prepare_distcorr", {"bias_corrected": False}, quadratic=True),
    Measure("shape", DISTANCE, (0.0, math.pi / 2), _shape_invariances,
            "Williams, Kunz, Kornblith & Linderman, Generalized Shape Metrics on Neural Representations, NeurIPS 2021",
            "angular shape distance after partial whitening α (α = 1: Procrustes, α = 0: CCA); radians",
            "latentlab.analyze.shape:prepare_shape", {"alpha": 1.0}),
]}


def get(name: str) -> Measure:
    """The measure called ``name`` (InputError listing the known names otherwise)."""
    try:
        return MEASURES[name]
    except KeyError:
        raise InputError(f"metric {name!r}: unknown; expected one of {', '.join(MEASURES)}") from None


__all__ = ["Measure", "MEASURES", "INVARIANCES", "get", "SIMILARITY", "DISTANCE"]

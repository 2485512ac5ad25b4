"""Cross-modal retrieval: rank metrics, gallery hubness, and training-free fixes.

``evaluate(Q, G, truth=None, fix=None, **params)`` reports R@1/5/10, median/mean rank, MRR
and the gallery's hubness (k = 10), before and after a fix: ``invgc`` / ``localadj``
(Jian & Wang 2023), ``csls`` (Conneau et al. 2018), ``qbnorm`` (Bogolin et al. 2022) or
``dbnorm`` (Wang et al. 2023). The fixes are also usable on their own:

    G2 = invgc(G, bank_gallery=TG, bank_queries=TQ, r_gallery=0.1, r_query=0.1)
    scores = csls(Q, G).scores(slice(0, 100))     # a block of CSLS scores

Scores are cosine similarities of L2-normalised rows (higher = more similar); ranks are
1-based in reports and count ties against the query.
"""
from .csls import csls
from .evaluate import DirectionResult, RetrievalMetrics, RetrievalResult, evaluate
from .invgc import invgc, pool_size
from ..ranks import RankMetrics, check_truth, rank_metrics, summarize_ranks, true_ranks
from .qbnorm import dbnorm, qbnorm
from .scoring import AdjustedScores
from .sweep import parse_sweep

__all__ = ["evaluate", "invgc", "csls", "qbnorm", "dbnorm", "rank_metrics", "true_ranks", "summarize_ranks",
           "check_truth", "RankMetrics", "RetrievalResult", "RetrievalMetrics", "DirectionResult",
           "AdjustedScores", "pool_size", "parse_sweep"]

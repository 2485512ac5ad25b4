"""Rank metrics, ties, truth handling and the chunked ranking / top-k engine."""
import numpy as np
import pytest
import torch

from latentlab.compute import Backend
from latentlab.errors import InputError
from latentlab.knn import topk_cosine
from latentlab.retrieval import evaluate, rank_metrics, true_ranks
from latentlab.ranks import check_truth, ranks_from_scores
from latentlab.retrieval.scoring import AdjustedScores, ranked_pass

TIE = np.array([[.9, .1, .3, .2], [.5, .5, .1, 0], [.2, .8, .4, .1], [.3, .3, .3, .3]])


def small_backend(dtype="float64"):
    # a tiny byte budget forces many query blocks and gallery chunks
    return Backend.make("cpu", dtype, block_bytes=4096)


def test_tie_example():
    ranks = ranks_from_scores(torch.as_tensor(TIE), torch.arange(4)[:, None]).numpy()
    assert ranks.tolist() == [0, 1, 1, 3]
    m = rank_metrics(TIE)
    assert (m.r_at_1, m.mean_rank, m.mrr) == (0.25, 2.25, 0.5625)


def test_degenerate_model_gets_worst_rank():
    m = rank_metrics(np.zeros((5, 5)))
    assert m.r_at_1 == 0.0 and m.mean_rank == 5.0


def test_two_d_truth_best_rank_counts():
    s = np.array([[.1, .9, .5], [.3, .2, .1]])
    m = rank_metrics(s, truth=[[2, 1], [1, 2]])
    assert m.r_at_1 == 0.5 and m.mean_rank == 1.5  # 0-based ranks 0 and 1 (index 1 beats index 2)


def test_truth_out_of_range():
    with pytest.raises(InputError, match="outside"):
        check_truth([0, 5], 2, 3)


def naive_ranks(s, truth):
    out = []
    for i, row in enumerate(s):
        best = max(row[j] for j in np.atleast_1d(truth[i]))
        out.append(int((row >= best).sum()) - 1)
    return np.array(out)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    q, g = rng.normal(size=(70, 12)), rng.normal(size=(90, 12))
    return q, g


def cos(q, g):
    qn, gn = q / np.linalg.norm(q, axis=1, keepdims=True), g / np.linalg.norm(g, axis=1, keepdims=True)
    return qn @ gn.T


def test_ranked_pass_matches_true_ranks_and_dense(data):
    q, g = data
    truth = np.random.default_rng(0).integers(0, len(g), size=(len(q), 2))
    b = small_backend()
    ranks, top = ranked_pass(q, g, truth, backend=b, k=10, gallery_chunk=16, block_rows=8)
    assert np.array_equal(ranks, true_ranks(q, g, truth, backend=b, gallery_chunk=16, block_rows=8))
    assert np.array_equal(ranks, naive_ranks(cos(q, g), truth))
    dense = torch.topk(torch.as_tensor(cos(q, g)), 10, dim=1).indices.numpy()
    assert np.array_equal(top, dense)


def test_chunked_topk_cosine_equals_dense(data):
    q, g = data
    _, idx = topk_cosine(q, g, 10, backend=small_backend(), gallery_chunk=7, block_rows=5)
    assert np.array_equal(idx, torch.topk(torch.as_tensor(cos(q, g)), 10, dim=1).indices.numpy())


class _Shift(AdjustedScores):
    """A column-dependent adjustment that reorders the gallery."""

    def __init__(self, q, g, b, shift):
        super().__init__(q, g, b)
        self.shift = torch.as_tensor(shift)

    def adjust(self, s, q0, q1, g0, g1):
        return s - self.shift[g0:g1]


def test_adjusted_scores_chunked_equal_dense(data):
    q, g = data
    shift = np.random.default_rng(1).uniform(0, 0.5, len(g))
    sc = _Shift(q, g, small_backend(), shift)
    dense = cos(q, g) - shift
    assert np.allclose(sc.scores(), dense, atol=1e-12)
    assert np.array_equal(sc.ranks(gallery_chunk=16, block_rows=8), naive_ranks(dense, np.arange(len(q))))
    assert np.array_equal(sc.topk(10, gallery_chunk=16, block_rows=8),
                          torch.topk(torch.as_tensor(dense), 10, dim=1).indices.numpy())


def test_clip_reference_values(clip_pair):
    img, txt = clip_pair
    res = evaluate(img, txt, both=True)
    assert res.baseline.r_at_1 == pytest.approx(0.552, abs=1e-12)
    assert res.reverse.baseline.r_at_1 == pytest.approx(0.506, abs=1e-12)
    assert res.baseline.n_queries == 500 and res.baseline.hubness_skew > 0

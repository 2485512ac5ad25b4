"""Anchor strategies and the bad inputs of fit."""
import numpy as np
import pytest

from latentlab.align import check_anchor_indices, fit_aligner, select_anchors
from latentlab.errors import InputError, LatentlabWarning


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(300, 6))


@pytest.mark.parametrize("strategy", ["random", "kmeans", "fps"])
def test_strategies_distinct_sorted_seeded(X, strategy):
    a = select_anchors(X, 25, strategy, seed=3)
    assert len(a) == 25 and len(np.unique(a)) == 25 and np.all(np.diff(a) > 0)
    assert np.array_equal(a, select_anchors(X, 25, strategy, seed=3))


def test_fps_matches_naive():
    Z = np.random.default_rng(1).normal(size=(80, 3))
    got = select_anchors(Z, 6, "fps", seed=0)
    U = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    first = int(np.random.default_rng(0).integers(80))
    chosen = [first]
    for _ in range(5):
        d = np.min(((U[:, None] - U[chosen][None]) ** 2).sum(-1), axis=1)
        chosen.append(int(np.argmax(d)))
    assert np.array_equal(got, np.sort(chosen))


def test_kmeans_covers_clusters():
    rng = np.random.default_rng(2)
    centres = np.eye(5) * 10
    X = np.concatenate([c + rng.normal(size=(50, 5)) * 0.1 for c in centres])
    a = select_anchors(X, 5, "kmeans", seed=0)
    assert sorted(set(a // 50)) == [0, 1, 2, 3, 4]


def test_stratified_proportional():
    labels = np.repeat([0, 1, 2], [100, 50, 50])
    a = select_anchors(np.zeros((200, 2)), 20, "stratified", labels=labels, seed=0)
    assert np.bincount(labels[a]).tolist() == [10, 5, 5]
    with pytest.raises(InputError, match="needs `labels`"):
        select_anchors(np.zeros((200, 2)), 20, "stratified")


def test_bad_anchor_indices():
    with pytest.raises(InputError, match="out of range"):
        check_anchor_indices([0, 5, 10], 10, 12)
    with pytest.raises(InputError, match="appears 2 times"):
        check_anchor_indices([1, 2, 2], 10)
    with pytest.raises(InputError, match="1-D"):
        check_anchor_indices(np.zeros((2, 2), dtype=int), 10)
    with pytest.raises(InputError, match="integers"):
        check_anchor_indices(np.array(["a"]), 10)


def test_fit_bad_inputs(X):
    Y = X[:, :4]
    with pytest.raises(InputError, match="paired rows"):
        fit_aligner("procrustes", X, Y[:200])
    with pytest.raises(InputError, match="at least 2 rows"):
        fit_aligner("affine", X, Y, anchors=[3])
    with pytest.raises(InputError, match="cca `components` 5 needs at least 6 anchors"), \
            pytest.warns(LatentlabWarning, match="fewer anchors than dimensions"):
        fit_aligner("cca", X, X, anchors=[0, 1, 2, 3], components=5)
    with pytest.raises(InputError, match="lowrank needs `rank`"):
        fit_aligner("lowrank", X, Y)
    with pytest.raises(InputError, match="`rank` 9: exceeds"):
        fit_aligner("lowrank", X, Y, rank=9)
    with pytest.raises(InputError, match="`alpha` -1"):
        fit_aligner("ridge", X, Y, alpha=-1.0)
    with pytest.raises(InputError, match="does not apply"):
        fit_aligner("procrustes", X, Y, rank=2)
    with pytest.raises(InputError, match="unknown method"):
        fit_aligner("magic", X, Y)
    with pytest.raises(InputError, match="n_anchors 500"):
        fit_aligner("affine", X, Y, n_anchors=500)
    with pytest.raises(InputError, match="either `anchors` or `n_anchors`"):
        fit_aligner("affine", X, Y, anchors=[1, 2], n_anchors=5)
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(InputError, match="row 7 contains NaN"):
        fit_aligner("affine", bad, Y)

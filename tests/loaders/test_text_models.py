"""st: and hf: on the packaged all-MiniLM-L6-v2 (real weights, offline)."""
from __future__ import annotations

import numpy as np
import pytest

from latentlab.errors import InputError
from latentlab.loaders import embed, load_model

pytestmark = pytest.mark.models

TEXTS = ["A man is eating food.", "A man is riding a white horse on an enclosed ground.",
         "hi", "Two dogs play in the snow while a child watches from the porch of a small house.",
         "", "The quick brown fox jumps over the lazy dog."]


@pytest.fixture(scope="module")
def models(minilm_dir):
    return (load_model(f"st:{minilm_dir}", device="cpu"), load_model(f"hf:{minilm_dir}", device="cpu"))


def test_st_equals_hf_mean_normalized(models, minilm_dir):
    st, hf = models
    a = embed(st, TEXTS, batch_size=4)
    b = embed(hf, TEXTS, pool="mean", normalize=True, batch_size=4)
    assert a.shape == b.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(a, b, atol=1e-5)
    from sentence_transformers import SentenceTransformer  # the reference implementation

    ref = SentenceTransformer(str(minilm_dir), device="cpu").encode(TEXTS, batch_size=4)
    np.testing.assert_allclose(a, ref, atol=1e-5)


def test_layers_all_gives_seven(models):
    st, hf = models
    layers = embed(hf, TEXTS, layers="all", pool="mean", normalize=True)
    assert sorted(layers) == list(range(7)) and all(v.shape == (len(TEXTS), 384) for v in layers.values())
    np.testing.assert_allclose(layers[6], embed(st, TEXTS), atol=1e-5)  # last layer = the ST embedding
    st_layers = embed(st, TEXTS, layers="all", normalize=True)  # st: pools with its own mode (mean)
    for i in range(7):
        np.testing.assert_allclose(st_layers[i], layers[i], atol=1e-5)
    assert not np.allclose(layers[0], layers[6], atol=1e-2)  # layers differ: we did not copy one


def test_against_direct_transformers_call(models, minilm_dir):
    """Layer 3 with cls / max pooling equals a hand-written pass over one unpadded text each."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    _, hf = models
    tok = AutoTokenizer.from_pretrained(minilm_dir)
    model = AutoModel.from_pretrained(minilm_dir).eval()
    got_cls = embed(hf, TEXTS, layers=3, pool="cls", batch_size=3)
    got_max = embed(hf, TEXTS, layers=3, pool="max", batch_size=3)
    for i, text in enumerate(TEXTS):
        with torch.inference_mode():
            h = model(**tok([text], return_tensors="pt"), output_hidden_states=True).hidden_states[3][0]
        np.testing.assert_allclose(got_cls[i], h[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(got_max[i], h.max(0).values.numpy(), atol=1e-5)


def test_order_independent_of_batching(models):
    _, hf = models
    one = embed(hf, TEXTS, batch_size=1)
    many = embed(hf, TEXTS[::-1], batch_size=5)[::-1]
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_layer_out_of_range_names_count(models):
    _, hf = models
    with pytest.raises(InputError, match="has 7 hidden-state layers"):
        embed(hf, TEXTS, layers=9)


def test_st_rejects_images(minilm_dir, image_folder):
    with pytest.raises(InputError, match="embed text"):
        embed(f"st:{minilm_dir}", image_folder)


def test_bfloat16_close_to_float32(minilm_dir, models):
    st, _ = models
    half = embed(f"st:{minilm_dir}", TEXTS[:3], dtype="bfloat16", device="cpu")
    assert half.dtype == np.float32
    cos = (half * embed(st, TEXTS[:3])).sum(1)
    assert (cos > 0.98).all()

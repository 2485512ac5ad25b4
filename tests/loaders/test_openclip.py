"""openclip: on a tiny random model: a model-config .json plus saved weights (real loading code)."""
from __future__ import annotations

import numpy as np
import pytest

from latentlab.errors import InputError
from latentlab.loaders import embed, load_model

pytestmark = pytest.mark.models


def _reference_images(model, files):
    import open_clip
    import torch
    from PIL import Image

    _, _, preprocess = open_clip.create_model_and_transforms("tiny-clip-test")
    with torch.inference_mode():
        return model.encode_image(torch.stack([preprocess(Image.open(f).convert("RGB")) for f in files])).numpy()


def test_image_embedding_matches_open_clip(tiny_openclip, image_folder):
    config, weights, _, model = tiny_openclip
    good = sorted(p for p in image_folder.iterdir() if "bad" not in p.name)
    with pytest.warns(UserWarning, match="skipped"):
        got = embed(f"openclip:{config}:{weights}", image_folder, batch_size=2, device="cpu")
    assert got.shape == (5, 16)
    np.testing.assert_allclose(got, _reference_images(model, good), atol=1e-5)


def test_text_embedding_and_pt_weights(tiny_openclip):
    import open_clip
    import torch

    config, _, pt_weights, model = tiny_openclip
    texts = ["a photo of a cat", "a dog", "two birds on a wire above the road"]
    got = embed(f"openclip:{config}:{pt_weights}", texts, normalize=True, device="cpu")
    with torch.inference_mode():
        ref = model.encode_text(open_clip.get_tokenizer("tiny-clip-test")(texts), normalize=True).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_layers_are_residual_blocks(tiny_openclip, image_folder):
    config, weights, _, model = tiny_openclip
    enc = load_model(f"openclip:{config}:{weights}", modality="text", device="cpu")
    assert enc.n_layers == 3
    texts = ["a photo of a cat", "a dog"]
    got = embed(enc, texts, layers="all", pool="last")
    assert sorted(got) == [0, 1, 2]
    # the last token before padding is end-of-text; its state after the last block, through
    # ln_final and the projection, is exactly encode_text (CLIP's argmax pooling)
    proj = model.ln_final(__import__("torch").from_numpy(got[2])) @ model.text_projection
    np.testing.assert_allclose(proj.detach().numpy(), embed(enc, texts), atol=1e-5)
    with pytest.warns(UserWarning, match="skipped"):
        img = embed(f"openclip:{config}:{weights}", image_folder, layers=-1, pool="cls")
    assert img.shape == (5, 32)


def test_openclip_errors(tiny_openclip, tmp_path):
    config, weights, _, _ = tiny_openclip
    with pytest.raises(InputError, match="unknown open_clip architecture"):
        embed(f"openclip:No-Such-Arch:{weights}", ["x"])
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(InputError, match="cannot load"):
        embed(f"openclip:{config}:{bad}", ["x"])

"""Image hf: loading on tiny random models saved to disk; undecodable images."""
from __future__ import annotations

import numpy as np
import pytest

from latentlab.errors import InputError
from latentlab.loaders import embed, embed_to_file, load_model

pytestmark = pytest.mark.models


def _direct(path, files, tower=None, layer=-1):
    """Reference: the model called by hand, one image at a time, mean over all tokens."""
    import torch
    import transformers
    from PIL import Image

    model = transformers.AutoModel.from_pretrained(path).eval()
    model = getattr(model, tower) if tower else model
    proc = transformers.AutoImageProcessor.from_pretrained(path)
    rows = []
    for f in files:
        px = proc(images=[Image.open(f).convert("RGB")], return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            rows.append(model(pixel_values=px, output_hidden_states=True).hidden_states[layer][0].mean(0).numpy())
    return np.stack(rows)


def test_vit_folder_skips_bad_image(tiny_vit_dir, image_folder):
    good = sorted(p for p in image_folder.iterdir() if "bad" not in p.name)
    with pytest.warns(UserWarning, match="cannot decode, skipped"):
        got = embed(f"hf:{tiny_vit_dir}", image_folder, layers="all", batch_size=2)
    assert sorted(got) == [0, 1, 2]  # embeddings + 2 blocks
    assert got[2].shape == (5, 32)
    np.testing.assert_allclose(got[2], _direct(tiny_vit_dir, good, layer=2), atol=1e-5)
    np.testing.assert_allclose(got[0], _direct(tiny_vit_dir, good, layer=0), atol=1e-5)


def test_strict_fails_on_bad_image(tiny_vit_dir, image_folder):
    with pytest.raises(InputError, match="img2_bad.png.*cannot decode"):
        embed(f"hf:{tiny_vit_dir}", image_folder, strict=True)


def test_skipped_recorded_in_sidecar(tiny_vit_dir, image_folder, tmp_path):
    with pytest.warns(UserWarning):
        rep = embed_to_file(f"hf:{tiny_vit_dir}", image_folder, tmp_path / "v.npy", progress=False)
    assert rep.count == 5 and rep.skipped == 1
    assert rep.provenance["skipped"][0]["index"] == 3 and "img2_bad" in rep.provenance["skipped"][0]["item"]
    assert rep.provenance["input_hash_of"].startswith("listing")
    assert rep.provenance["model_sha256"]


def test_clip_vision_tower(tiny_clip_hf_dir, image_folder):
    good = sorted(p for p in image_folder.iterdir() if "bad" not in p.name)
    enc = load_model(f"hf:{tiny_clip_hf_dir}", modality="image", device="cpu")
    assert enc.n_layers == 4  # 3 vision blocks + embeddings
    got = embed(enc, [str(p) for p in good], modality="image", layers=1)
    np.testing.assert_allclose(got, _direct(tiny_clip_hf_dir, good, tower="vision_model", layer=1), atol=1e-5)


def test_image_model_without_tokenizer_rejects_text(tiny_vit_dir):
    with pytest.raises(InputError, match="no usable tokenizer"):
        embed(f"hf:{tiny_vit_dir}", ["some text"])

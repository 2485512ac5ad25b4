"""Built-in example data.

``mind_the_gap_clip.npy``: float16 array (2, 500, 512) — CLIP embeddings of 500 MSCOCO
val2017 images (``[0]``) and their captions (``[1]``), row i of each a matched pair, as
released with Liang et al., "Mind the Gap", NeurIPS 2022 (MIT licence, see LICENSE here).
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def example_path() -> Path:
    """Path of the shipped CLIP image/caption example (use ``::0`` and ``::1``)."""
    return HERE / "mind_the_gap_clip.npy"

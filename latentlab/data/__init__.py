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


#: environment variable naming a folder that holds the Mind-the-Gap dumps (features_<model>[_random].npy)
DATA_ENV = "LATENTLAB_MTG_DIR"


def mind_the_gap_dir(start: Path | None = None) -> Path | None:
    """The folder of the Mind-the-Gap dumps, or None when there is none to find.

    ``$LATENTLAB_MTG_DIR`` when set (an error if it holds no ``features_clip.npy``: a wrong
    setting must not pass silently), else ``shared/data/mind-the-gap`` beside the project that
    holds ``start`` (default: the working directory; the project is the nearest folder with a
    ``pyproject.toml``; the team keeps its data beside it).
    The package itself ships only the CLIP pair (:func:`example_path`).
    """
    import os

    given = os.environ.get(DATA_ENV)
    if given:
        folder = Path(given).expanduser()
        if not (folder / "features_clip.npy").is_file():
            raise FileNotFoundError(f"{DATA_ENV}={given}: no features_clip.npy there")
        return folder
    here = (start or Path.cwd()).resolve()
    root = next((p for p in (here, *here.parents) if (p / "pyproject.toml").is_file()), None)
    folder = root.parent / "shared" / "data" / "mind-the-gap" if root is not None else None
    return folder if folder is not None and (folder / "features_clip.npy").is_file() else None

"""Shared fixtures: the team's real embeddings in ../shared/data, and a CLI runner."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
MTG = SHARED_DATA / "mind-the-gap"


@pytest.fixture(scope="session")
def mtg_dir() -> Path:
    """The Mind-the-Gap dumps (shape (2, n, d) each); skip when ../shared/data is absent."""
    if not (MTG / "features_clip.npy").exists():
        pytest.skip(f"shared data not found at {MTG} (tests with real embeddings need ../shared/data)")
    return MTG


@pytest.fixture(scope="session")
def clip_pair(mtg_dir):
    """(image, text) float64 arrays of CLIP on 500 MSCOCO pairs."""
    arr = np.load(mtg_dir / "features_clip.npy").astype(np.float64)
    return arr[0], arr[1]


class Cli:
    """Invoke ``latentlab`` in-process; ``.json(...)`` parses stdout of a --json call."""

    def __init__(self):
        from latentlab.cli import cli

        self.cli = cli
        self.runner = CliRunner()

    def __call__(self, *args, ok: bool = True):
        res = self.runner.invoke(self.cli, [str(a) for a in args], catch_exceptions=False)
        if ok and res.exit_code != 0:
            raise AssertionError(f"latentlab {' '.join(map(str, args))} exited {res.exit_code}:\n{res.output}")
        return res

    def json(self, *args):
        res = self(*args, "--json")
        return json.loads(res.stdout)


@pytest.fixture
def cli() -> Cli:
    return Cli()


def _write_shards(folder: Path, x: np.ndarray, sizes, *, stem: str = "emb") -> Path:
    if isinstance(sizes, int):  # rows per shard, the last one short (LAION dumps are cut this way)
        sizes = [min(sizes, len(x) - lo) for lo in range(0, len(x), sizes)]
    # A mistyped size list would silently drop rows and the in-memory comparison would still pass.
    assert sum(sizes) == len(x), f"shard sizes {list(sizes)} add up to {sum(sizes)}, not the {len(x)} rows"
    folder.mkdir()
    lo = 0
    for i, n in enumerate(sizes):
        np.save(folder / f"{stem}_{i}.npy", x[lo : lo + n])
        lo += n
    return folder


@pytest.fixture(scope="session")
def write_shards():
    """``write_shards(folder, x, sizes, stem="emb") -> folder``: a new folder of ``x`` as .npy shards
    ``{stem}_0.npy``, ``{stem}_1.npy``, … (numbers not padded, so ``_10`` sorts after ``_9`` only by
    number), shard i the next ``sizes[i]`` rows in x's own dtype; an int ``sizes`` is rows per shard.
    Session-scoped so module- and package-scoped fixtures can build their folders with it."""
    return _write_shards


def _cuda() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch missing is a broken install, not a skip
        return False


#: Every numeric device test runs on the CPU and, where one is present, on CUDA (POT's backend
#: fixture pattern); on a CPU-only machine the CUDA cases skip with the reason.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not _cuda(), reason="no CUDA device on this machine"))]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


try:  # property-based tests draw the same examples on every run: CI never flakes on a new draw
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("latentlab", derandomize=True, deadline=None, print_blob=True)
    _hyp_settings.load_profile("latentlab")
except ImportError:  # pragma: no cover - hypothesis is in the test extras
    pass

"""The worked notebooks run top to bottom (executed with nbclient, outputs never committed)."""
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path):
    """Runs where the team's data is (../shared/data) or, on a fresh clone, on the CLIP pair the package ships."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("matplotlib")
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks with outputs stripped"
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 1, "the notebook should draw its figures"


def _run(path, cwd):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()


@pytest.mark.slow
def test_a_notebook_that_finds_no_data_fails(tmp_path, monkeypatch):
    """A wrong data setting is an error in the first cell, never a notebook that silently does nothing."""
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("LATENTLAB_MTG_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="LATENTLAB_MTG_DIR"):
        _run(NOTEBOOKS[0], tmp_path)


def test_data_is_found_by_env_beside_the_project_or_not_at_all(tmp_path, monkeypatch):
    from latentlab.data import example_path, mind_the_gap_dir

    monkeypatch.delenv("LATENTLAB_MTG_DIR", raising=False)
    assert mind_the_gap_dir(tmp_path) is None  # a fresh clone: the notebooks use example_path()
    assert example_path().is_file()
    mtg = tmp_path / "shared" / "data" / "mind-the-gap"
    mtg.mkdir(parents=True)
    (mtg / "features_clip.npy").write_bytes(b"")
    (tmp_path / "project" / "notebooks").mkdir(parents=True)
    assert mind_the_gap_dir(tmp_path / "project" / "notebooks") is None  # no project there yet
    (tmp_path / "project" / "pyproject.toml").write_text("")
    assert mind_the_gap_dir(tmp_path / "project" / "notebooks") == mtg
    monkeypatch.setenv("LATENTLAB_MTG_DIR", str(mtg))
    assert mind_the_gap_dir(tmp_path / "elsewhere") == mtg
    monkeypatch.setenv("LATENTLAB_MTG_DIR", str(tmp_path / "project"))
    with pytest.raises(FileNotFoundError, match="LATENTLAB_MTG_DIR"):
        mind_the_gap_dir()

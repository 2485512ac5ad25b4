"""Issue 11: an ``embed`` INPUT that cannot be read is one ``error:`` line naming the file, exit 2
(it was exit 1 with Python's PermissionError as the message). No model is loaded: the input is
read before the model, so an empty local model folder is never opened."""
from __future__ import annotations

import builtins
import io
import os

import pytest



@pytest.fixture
def model(tmp_path_factory) -> str:
    """A local model folder (local: no hub probe), empty: loading it would fail loudly."""
    return f"hf:{tmp_path_factory.mktemp('model')}"


INPUTS = {  # name, contents, extra arguments
    "text": ("items.txt", "a cat\na dog\n", []),
    "csv": ("items.csv", "text\na cat\na dog\n", ["--column", "text"]),
    "jsonl": ("items.jsonl", '{"text": "a cat"}\n', ["--column", "text"]),
    "image list": ("paths.txt", "a.png\nb.png\n", ["--modality", "image"]),
}


def _check(res, name):
    err = res.stderr.strip()
    assert res.exit_code == 2, (res.exit_code, err)
    assert "\n" not in err and err.startswith("error:") and "internal error" not in err, err
    assert name in err and "cannot read" in err and "Permission denied" in err, err
    assert res.stdout == ""


@pytest.mark.parametrize("kind", list(INPUTS))
def test_embed_input_denied(cli, tmp_path, model, monkeypatch, kind):
    """Reading the input fails with EACCES (simulated: tests may run as root, who reads anyway)."""
    name, text, extra = INPUTS[kind]
    (tmp_path / name).write_text(text)
    real_open = builtins.open

    def deny(file, *args, **kwargs):
        if str(file).endswith(name):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    monkeypatch.setattr(io, "open", deny)  # pathlib.Path.read_text opens through io.open
    res = cli("embed", model, tmp_path / name, *extra, "-o", tmp_path / "out.npy", ok=False)
    _check(res, name)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no output, parts, lock or sidecar


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file anyway (the simulated test covers it)")
@pytest.mark.parametrize("kind", list(INPUTS))
def test_embed_input_chmod_000(cli, tmp_path, model, kind):
    name, text, extra = INPUTS[kind]
    (tmp_path / name).write_text(text)
    os.chmod(tmp_path / name, 0)
    try:
        res = cli("embed", model, tmp_path / name, *extra, "-o", tmp_path / "out.npy", ok=False)
    finally:
        os.chmod(tmp_path / name, 0o644)
    _check(res, name)


@pytest.mark.parametrize("extra,fragment", [
    (["--modality", "text"], "a folder is read as images"),
    ([], "folder holds no images"),
])
def test_embed_input_folder(cli, tmp_path, model, extra, fragment):
    """A folder where a file was meant: named, exit 2 (a folder of images is a valid input)."""
    (tmp_path / "items.txt").mkdir()
    res = cli("embed", model, tmp_path / "items.txt", *extra, "-o", tmp_path / "out.npy", ok=False)
    err = res.stderr.strip()
    assert res.exit_code == 2 and "\n" not in err and "items.txt" in err and fragment in err, err

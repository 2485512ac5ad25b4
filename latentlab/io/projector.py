"""TensorBoard Embedding Projector files: ``tensors.tsv``, ``metadata.tsv``, ``projector_config.pbtxt``.

The format, as TensorBoard's projector plugin reads it (``projector_config.proto`` and
``projector_plugin.py`` in tensorflow/tensorboard):

- ``tensors.tsv``: one row per item, tab-separated floats, no header;
- ``metadata.tsv``: one line per item; the first line is a header of column names when there
  is more than one column, and there is *no* header when there is a single column (the
  "vocabulary file" exception of the TensorFlow embedding guide);
- ``projector_config.pbtxt``: a protobuf text ``ProjectorConfig`` with one ``embeddings { … }``
  entry per tensor (``tensor_name``, ``tensor_path``, ``metadata_path``, ``tensor_shape``);
  relative paths are resolved against the config's folder, and must stay inside it.

Two sets of the same width go into one tensor with a ``set`` column (so the projector shows
both spaces together, as latentlab's joint view does); sets of different widths get one
tensor each (``tensors_a.tsv``, ``tensors_b.tsv`` …). Point TensorBoard at the folder:
``tensorboard --logdir DIR``.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from ..errors import InputError

CONFIG = "projector_config.pbtxt"
BLOCK_ROWS = 16384   # rows formatted at a time: memory stays bounded for any n


def write_projector(directory, a, b=None, *, labels=None, text_a=None, text_b=None, names=("A", "B"),
                    force: bool = False) -> dict:
    """Write TensorBoard projector files for ``a`` (and ``b``) into ``directory``.

    Parameters
    ----------
    directory : the folder to write (created if missing; its parent must exist).
    a, b : embeddings (paths with ``::KEY`` selectors, arrays, :class:`~latentlab.io.Embeddings`).
    labels : one label per row of A (shared by B when A and B have as many rows), or one per
        row of A then B; a list or a text file (see :func:`latentlab.io.texts.read_texts`).
    text_a, text_b : one string per row of A / B (list or text file).
    names : the sets' names in the ``set`` column and the tensor names.
    force : overwrite projector files already in ``directory``.

    Returns
    -------
    dict with ``directory``, ``files`` (paths written) and ``embeddings`` (one entry per tensor:
    ``name``, ``tensor_path``, ``metadata_path``, ``shape``, ``columns``).
    """
    from . import as_embeddings
    from .outputs import check_outputs
    from .texts import read_texts

    folder = Path(directory)
    sets = [as_embeddings(a, "a")] + ([as_embeddings(b, "b")] if b is not None else [])
    names = [str(n) for n in names][: len(sets)]
    if len(names) != len(sets) or (len(sets) == 2 and names[0] == names[1]):
        raise InputError(f"names {names!r}: give one distinct name per set")
    texts = [read_texts(t, n_rows=e.n, arg=arg, what=f"{arg[-1]} ({e.name})") if t is not None else None
             for t, e, arg in zip((text_a, text_b), sets, ("text_a", "text_b"))]
    labs = _split_labels(labels, sets, read_texts)
    joint = len(sets) == 2 and sets[0].dim == sets[1].dim
    groups = [list(range(len(sets)))] if joint or len(sets) == 1 else [[0], [1]]
    plan = []
    for g in groups:
        suffix = "" if len(groups) == 1 else f"_{'ab'[g[0]]}"
        plan.append((g, folder / f"tensors{suffix}.tsv", folder / f"metadata{suffix}.tsv"))
    files = [p for _, t, m in plan for p in (t, m)] + [folder / CONFIG]

    inputs = {"a": a, "b": b, "labels": labels, "text_a": text_a, "text_b": text_b}
    inputs = {k: v for k, v in inputs.items() if isinstance(v, (str, os.PathLike))}
    for target in (folder, *files):   # the folder may not be (or be inside) an input; no file may be one
        check_outputs({"directory": target}, inputs)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"directory {folder}: exists and is not a folder")
    if not folder.parent.is_dir():
        raise InputError(f"directory {folder}: its parent folder {folder.parent} does not exist")
    existing = [p.name for p in files if p.exists()]
    if existing and not force:
        raise InputError(f"directory {folder}: already holds {', '.join(existing)}; choose another folder or "
                         f"overwrite them (`force`)")
    folder.mkdir(exist_ok=True)

    entries = []
    with contextlib.ExitStack() as stack:   # every file goes to a temporary name; all are renamed at the end
        from .writers import atomic_output

        for g, tpath, mpath in plan:
            columns = _columns(len(g) > 1, labs, texts, g)
            with open(stack.enter_context(atomic_output(tpath)), "w", encoding="utf-8") as fh:
                for s in g:
                    _write_tensor(fh, sets[s])
            with open(stack.enter_context(atomic_output(mpath)), "w", encoding="utf-8") as fh:
                if len(columns) > 1:
                    fh.write("\t".join(columns) + "\n")
                for s in g:
                    for r in range(sets[s].n):
                        fh.write("\t".join(_cell(_value(c, s, r, names, labs, texts)) for c in columns) + "\n")
            name = " and ".join(names[s] for s in g)
            entries.append({"name": name, "tensor_path": tpath.name, "metadata_path": mpath.name,
                            "shape": [sum(sets[s].n for s in g), sets[g[0]].dim], "columns": columns})
        with open(stack.enter_context(atomic_output(folder / CONFIG)), "w", encoding="utf-8") as fh:
            fh.write(projector_config(entries))
    return {"directory": str(folder), "files": [str(p) for p in files], "embeddings": entries}


def projector_config(entries: list[dict]) -> str:
    """``ProjectorConfig`` in protobuf text format, one ``embeddings`` block per entry."""
    blocks = []
    for e in entries:
        lines = [f'  tensor_name: "{_pb_string(e["name"])}"', f'  tensor_path: "{_pb_string(e["tensor_path"])}"',
                 f'  metadata_path: "{_pb_string(e["metadata_path"])}"']
        lines += [f"  tensor_shape: {int(v)}" for v in e["shape"]]
        blocks.append("embeddings {\n" + "\n".join(lines) + "\n}\n")
    return "".join(blocks)


def _split_labels(labels, sets, read_texts):
    if labels is None:
        return None
    n = [e.n for e in sets]
    counts = (n[0], sum(n)) if len(n) == 2 and n[0] == n[1] else (sum(n),)
    lab = read_texts(labels, n_rows=counts, arg="labels",
                     what="a" if len(n) == 1 else "a and b (one per row of a, or of a then b)")
    if len(n) == 1:
        return [lab]
    return [lab, lab] if len(lab) == n[0] else [lab[: n[0]], lab[n[0]:]]


def _columns(several_sets: bool, labs, texts, g) -> list[str]:
    cols = ["set"] if several_sets else []
    cols.append("row")
    if labs is not None:
        cols.append("label")
    if any(texts[s] is not None for s in g):
        cols.append("text")
    return cols


def _value(column: str, s: int, r: int, names, labs, texts) -> str:
    if column == "set":
        return names[s]
    if column == "row":
        return str(r)
    if column == "label":
        return labs[s][r]
    return texts[s][r] if texts[s] is not None else ""


def _cell(text: str) -> str:
    # a tab or line break inside a value would shift columns or add a row
    return " ".join(str(text).split())


def _write_tensor(fh, emb) -> None:
    for start in range(0, emb.n, BLOCK_ROWS):
        block = np.asarray(emb.data[start : start + BLOCK_ROWS], dtype=np.float64)
        np.savetxt(fh, block, delimiter="\t", fmt="%.9g")   # 9 significant digits round-trip float32


def _pb_string(text: str) -> str:
    text = " ".join(str(text).split())
    return text.replace("\\", "\\\\").replace('"', '\\"')


__all__ = ["write_projector", "projector_config", "CONFIG"]

"""Refuse, before any work, an output that would overwrite an input or another output.

Every writing command calls :func:`check_outputs` first with what it will write and what
it reads. Paths are compared after :func:`os.path.realpath`, so symlinks, ``./x`` against
``x`` and ``dir/../x`` are caught; ``::KEY`` selectors are stripped from input specs. A
folder input protects every file inside it. Besides its main file a writer may write
companions, which are checked too:

- :func:`embed_output`: ``OUT`` (a file, or a folder of ``embeddings.npy``/``layerNN.npy``
  with a ``.json`` beside each), the provenance sidecar ``OUT.json`` and the resumable
  parts folder ``OUT.parts`` (see :mod:`latentlab.loaders.writer`);
- :func:`markdown_output`: ``R.md`` and its figure folder ``R_files/``;
- a plain path: that file alone (the temporary file beside it has a random name).

An input's provenance sidecars (``A.json`` or ``A.npy.json`` beside ``A.npy``, read by
:func:`latentlab.io.read_embeddings`) are protected when they exist.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Union

from ..errors import InputError
from .formats import FORMATS, SELECTOR

_EMBED_FOLDER_FILES = re.compile(r"(embeddings|layer\d+)\.(npy|json)")


@dataclass(frozen=True)
class _Target:
    """One path a run reads or writes; ``tree``: everything inside it counts too."""

    real: str
    shown: str
    what: str = ""  # "" = the main path; else "sidecar", "parts folder", …
    tree: bool = False
    names: re.Pattern | None = None  # a tree of which only these direct children are written

    def holds(self, real: str) -> bool:
        if not self.tree or not real.startswith(self.real.rstrip(os.sep) + os.sep):
            return False
        if self.names is None:
            return True
        return os.path.dirname(real) == self.real and bool(self.names.fullmatch(os.path.basename(real)))


@dataclass(frozen=True)
class Written:
    """What one output option writes: its main path and the companions beside it."""

    targets: tuple[_Target, ...]


Spec = Union[str, os.PathLike, Written, None]


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def plain_output(path: str | os.PathLike) -> Written:
    """A single file (every writer in :mod:`latentlab.io.writers`, figures, HTML, aligners)."""
    return Written((_Target(_real(path), os.fspath(path)),))


def embed_output(out: str | os.PathLike) -> Written:
    """``latentlab embed -o OUT``: OUT itself, its sidecar ``OUT.json`` and ``OUT.parts``."""
    from ..loaders.writer import sidecar_path  # imported here: loaders pulls in torch

    out = Path(out)
    suffix = out.suffix.lower()
    folder = suffix not in (*FORMATS, ".safetensors") and (not suffix or out.is_dir())
    main = _Target(_real(out), os.fspath(out), tree=folder, names=_EMBED_FOLDER_FILES if folder else None)
    side, parts = sidecar_path(out), Path(str(out) + ".parts")
    return Written((main, _Target(_real(side), os.fspath(side), "sidecar"),
                    _Target(_real(parts), os.fspath(parts), "parts folder", tree=True)))


def markdown_output(path: str | os.PathLike) -> Written:
    """``report --markdown R.md``: the file and its figure folder ``R_files/``."""
    path = Path(path)
    figs = path.parent / f"{path.stem}_files"
    return Written((_Target(_real(path), os.fspath(path)),
                    _Target(_real(figs), os.fspath(figs), "figure folder", tree=True)))


def _input_targets(spec: str | os.PathLike, sidecars: bool) -> list[_Target]:
    path = os.fspath(spec).split(SELECTOR)[0]
    real = _real(path)
    found = [_Target(real, path, tree=os.path.isdir(real))]
    if sidecars:  # the two names read_sidecar looks for
        p = Path(path)
        cands = {Path(str(p) + ".json")} | ({p.with_suffix(".json")} if p.suffix else set())
        found += [_Target(_real(c), os.fspath(c), "sidecar") for c in sorted(cands) if c.is_file()]
    return found


def _relation(a: _Target, b: _Target) -> str | None:
    """How a written path ``a`` meets another path ``b``: same, inside or holds."""
    if a.real == b.real:
        return "same"
    if b.holds(a.real):
        return "inside"
    if a.holds(b.real):
        return "holds"
    return None


def _subject(opt: str, main: _Target, t: _Target) -> str:
    head = f"{opt} {main.shown}:"
    return head if t is main else f"{head} its {t.what} {t.shown}"


def _input_phrase(rel: str, name: str, t: _Target, subject_is_main: bool) -> str:
    if t.what:
        noun = f"the {t.what} {t.shown} of the input {name}"
    elif t.tree:
        noun = f"the input folder {name}"
    else:
        noun = f"the input {name}"
    if rel == "same":
        return f"{'is also' if subject_is_main else 'is'} {noun}"
    return f"is inside {noun}" if rel == "inside" else f"would hold {noun}"


def _output_phrase(rel: str, opt: str, t: _Target) -> str:
    if rel == "same":
        return f"is the same file as {opt}" if not t.what else f"is the {t.what} of {opt}"
    where = f"the output folder of {opt}" if not t.what else f"the {t.what} of {opt}"
    return f"is inside {where}" if rel == "inside" else f"would hold the {t.what or 'output'} of {opt}"


def check_outputs(outputs: Mapping[str, Spec], inputs: Mapping[str, str | os.PathLike | Iterable | None], *,
                  input_sidecars: bool = True) -> None:
    """Raise :class:`InputError` when an output would overwrite an input or another output.

    Parameters
    ----------
    outputs : option name (``"-o"``, ``"--plan"``) → path, :class:`Written` from
        :func:`embed_output` / :func:`markdown_output`, or None (not written this run).
    inputs : name the user knows (``"A"``, ``"MAP"``, ``"--truth"``) → path spec (``::KEY``
        selectors allowed), a list of specs, or None.
    input_sidecars : also protect inputs' existing ``.json`` provenance sidecars (off for
        ``embed``, whose inputs are texts or images, not embeddings).

    Raises
    ------
    InputError
        One line naming the option and the file, e.g. ``-o in.npy: is also the input A;
        choose another output path`` or ``--plan p.npy: is the same file as -o``.
    """
    read: list[tuple[str, _Target]] = []
    for name, spec in inputs.items():
        specs = spec if isinstance(spec, (list, tuple)) else [spec]
        for s in specs:
            if s is not None and os.fspath(s) not in ("", "-"):
                read += [(name, t) for t in _input_targets(s, input_sidecars)]
    written: list[tuple[str, Written]] = []
    for opt, spec in outputs.items():
        if spec is None or (not isinstance(spec, Written) and os.fspath(spec) == ""):
            continue
        written.append((opt, spec if isinstance(spec, Written) else plain_output(spec)))
    for i, (opt, out) in enumerate(written):
        main = out.targets[0]
        for t in out.targets:
            for name, r in read:
                rel = _relation(t, r)
                if rel:
                    raise InputError(f"{_subject(opt, main, t)} {_input_phrase(rel, name, r, t is main)}; "
                                     f"choose another output path")
            for other_opt, other in written[:i]:
                for o in other.targets:
                    rel = _relation(t, o)
                    if rel:
                        raise InputError(f"{_subject(opt, main, t)} {_output_phrase(rel, other_opt, o)}; "
                                         f"choose another output path")


def require_suffix(option: str, path: str | os.PathLike | None, suffixes: tuple[str, ...], what: str) -> None:
    """Refuse an output name whose suffix does not say what is written (``report -o x.npy``)."""
    if path is None:
        return
    if Path(path).suffix.lower() not in suffixes:
        raise InputError(f"{option} {os.fspath(path)}: {what} is written to a file ending in "
                         f"{' or '.join(suffixes)}; choose such a name")


__all__ = ["check_outputs", "plain_output", "embed_output", "markdown_output", "require_suffix", "Written"]

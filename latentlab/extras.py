"""Optional extras: one message, on every path, when one is missing.

``pip install latentlab`` leaves out the heavy optional libraries; the commands that need
them say which extra brings them (``latentlab[viz]`` for umap-learn, ``latentlab[models]``
for transformers / sentence-transformers / pillow, ``latentlab[openclip]`` for open_clip).
A :class:`MissingExtra` is an :class:`~latentlab.errors.InputError`, so the CLI shows it as one
``error: … pip install 'latentlab[…]'`` line with exit status 2.
"""
from __future__ import annotations

import importlib

from .errors import InputError

#: import name -> (pip package, extra that installs it)
EXTRAS = {
    "umap": ("umap-learn", "viz"),
    "transformers": ("transformers", "models"),
    "sentence_transformers": ("sentence-transformers", "models"),
    "PIL": ("pillow", "models"),
    "open_clip": ("open_clip_torch", "openclip"),
}


class MissingExtra(InputError):
    """An optional dependency is not installed (or does not import)."""


def install_hint(module: str) -> str:
    package, extra = EXTRAS[module]
    return f"pip install 'latentlab[{extra}]'" + ("" if package == module else f" (brings {package})")


def require(module: str, what: str):
    """Import ``module`` for ``what`` (e.g. "the UMAP projection"), or raise :class:`MissingExtra`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package, _ = EXTRAS[module]
        detail = "" if isinstance(exc, ModuleNotFoundError) and exc.name == module else f" ({exc})"
        raise MissingExtra(f"{what} needs {package}, which is not installed{detail}: {install_hint(module)}") from None

"""Embeddings from frozen models: ``hf:``, ``st:`` and ``openclip:`` specs.

>>> import latentlab
>>> X = latentlab.embed("st:sentence-transformers/all-MiniLM-L6-v2", ["a cat", "a dog"])
>>> layers = latentlab.embed("hf:./minilm", "sentences.txt", layers="all", normalize=True)

Model libraries (transformers, sentence-transformers, open_clip) are imported only when a
model is loaded, so ``import latentlab`` works without the ``[models]`` extra. Torch is
imported only when a function of :mod:`.api` is first used: the CLI's option definitions
(:data:`POOLS`, :data:`MODEL_DTYPES`, …) come from :mod:`.spec` and keep ``latentlab --help`` fast.
"""
from __future__ import annotations

import importlib

from .inputs import read_inputs
from .spec import DEFAULT_SHARD_SIZE, MODEL_DTYPES, POOLS, ModelSpec, parse_spec

_LAZY = {"embed": "api", "embed_to_file": "api", "load_model": "api", "EmbedReport": "api"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["embed", "embed_to_file", "load_model", "EmbedReport", "ModelSpec", "parse_spec", "read_inputs",
           "POOLS", "MODEL_DTYPES", "DEFAULT_SHARD_SIZE"]

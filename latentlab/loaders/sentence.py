"""``st:NAME_OR_PATH``: a sentence-transformers model.

Without ``--layers``/``--pool`` the output is the model's own sentence embedding (every
module of its pipeline: pooling, dense heads, normalisation). With ``--layers`` the hidden
states of its transformer are pooled with ``--pool`` (default: the model's pooling mode);
modules after pooling (Dense, Normalize) are not applied to them. Tokenisation is always
the model's own (its ``max_seq_length``, lower-casing and prompts).
"""
from __future__ import annotations

import warnings

import torch

from ..compute import resolve_device
from ..errors import InputError, LatentlabWarning
from ..extras import require
from .base import Prepared, model_dtype, to_device
from .huggingface import _first, _HFBase
from .hub import not_cached, offline_reason
from .provenance import model_identity
from .spec import ModelSpec, layer_key, offline

# sentence-transformers pooling modes → ours (modes without an equivalent fall back to mean)
_POOL_NAMES = {"mean": "mean", "cls": "cls", "max": "max", "lasttoken": "last", "last": "last"}

def load_st(spec: ModelSpec, *, modality: str, device="auto", dtype: str = "float32",
            max_length: int | None = None):
    if modality != "text":
        raise InputError(f"{spec.text}: sentence-transformers models embed text here; "
                         f"use hf: or openclip: for images")
    SentenceTransformer = require("sentence_transformers", spec.text).SentenceTransformer
    dev, tdtype = resolve_device(device), model_dtype(dtype)
    local = spec.local is not None
    no_hub = offline_reason(spec)  # a hub name with no network: the local cache only, no retries
    with offline(local or no_hub is not None):
        try:
            model = SentenceTransformer(str(spec.local) if local else spec.name, device=str(dev),
                                        local_files_only=local or no_hub is not None, trust_remote_code=False)
        except Exception as exc:
            if no_hub:
                raise InputError(not_cached(spec, no_hub)) from exc
            raise InputError(f"{spec.text}: cannot load the model ({type(exc).__name__}: {_first(exc)})") from exc
    model.eval().to(dtype=tdtype)
    if max_length is not None:
        model.max_seq_length = max_length
    return STEncoder(spec, model, dev, dtype)

def _modules(model):
    return [model[i] for i in range(len(model))]

def _transformer_model(model):
    for module in _modules(model):
        for attr in ("auto_model", "model"):
            inner = getattr(module, attr, None)
            if isinstance(inner, torch.nn.Module) and hasattr(inner, "config"):
                return inner
    raise InputError("this sentence-transformers model has no transformer module; `layers`/`pool` need one")

def _pooling_mode(model) -> str:
    for module in _modules(model):
        if type(module).__name__ == "Pooling":
            mode = getattr(module, "pooling_mode", None)
            if mode is None and hasattr(module, "get_pooling_mode_str"):
                mode = module.get_pooling_mode_str()
            mode = str(mode)
            if mode not in _POOL_NAMES:
                warnings.warn(f"pooling mode {mode!r} of this model has no `pool` equivalent; "
                              f"hidden states are mean-pooled", LatentlabWarning)
            return _POOL_NAMES.get(mode, "mean")
    return "mean"

class STEncoder(_HFBase):
    modality = "text"

    def __init__(self, spec, model, device, dtype_name):
        tower = _transformer_model(model)
        ident = model_identity(spec, None, tower.config)
        super().__init__(spec, tower, None, device, dtype_name, ident)
        self.model = model
        self.default_pool = _pooling_mode(model)
        self.max_length = model.max_seq_length
        self._prep = getattr(model, "preprocess", None) or model.tokenize

    def prepare(self, items):
        return Prepared(dict(self._prep(list(items))), list(range(len(items))))

    def forward(self, prepared, layers, pool):
        batch = to_device(prepared.inputs, self.device)
        if layers is None and pool is None:
            return {layer_key(None): self.model(batch)["sentence_embedding"]}
        out = self._call(batch, hidden=layers is not None)
        return self._pooled(out, batch.get("attention_mask"), layers, pool)

    def describe_pool(self, layers, pool):
        if layers is None and pool is None:
            return f"model pipeline ({self.default_pool} pooling and the modules after it)"
        return pool or self.default_pool

    def normalizes(self, layers, pool):
        # a Normalize module makes the pipeline's sentence embedding unit-length; pooled hidden
        # states (--layers/--pool) skip the modules after pooling, so they are not normalised
        return layers is None and pool is None and any(type(m).__name__ == "Normalize" for m in _modules(self.model))

    def provenance(self):
        return {**self.ident, "loader": "sentence-transformers",
                "pipeline": [type(m).__name__ for m in _modules(self.model)],
                "architecture": type(self.tower).__name__, "max_length": self.max_length}

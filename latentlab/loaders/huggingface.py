"""``hf:NAME_OR_PATH``: a transformers ``AutoModel`` with its tokenizer or image processor.

Hidden states are transformers' ``hidden_states`` tuple (index 0 = the embedding output,
i = after block i), so a 6-block model has 7 layers. The default output pools
``last_hidden_state`` (after any final norm the model applies). Dual encoders (CLIP-like
models) embed with their text or vision tower, whichever the input modality needs.
"""
from __future__ import annotations

import inspect

import torch

from ..compute import resolve_device
from ..errors import InputError
from ..extras import require
from .base import Encoder, Prepared, model_dtype, to_device
from .inputs import load_image
from .pooling import pool_tokens
from .hub import not_cached, offline_reason
from .provenance import model_identity
from .spec import ModelSpec, layer_key, offline


def _dtype_kwarg() -> str:
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def load_hf(spec: ModelSpec, *, modality: str, device="auto", dtype: str = "float32",
            max_length: int | None = None) -> Encoder:
    """Load ``hf:`` models; local folders are read with hub access switched off."""
    transformers = require("transformers", spec.text)
    dev, tdtype = resolve_device(device), model_dtype(dtype)
    local = spec.local is not None
    name = str(spec.local) if local else spec.name
    no_hub = offline_reason(spec)  # a hub name with no network: the local cache only, no retries
    local = local or no_hub is not None
    with offline(local):
        try:
            model = transformers.AutoModel.from_pretrained(
                name, local_files_only=local, weights_only=True, **{_dtype_kwarg(): tdtype})
        except Exception as exc:  # missing files, unknown architecture, no network: one message
            if no_hub:
                raise InputError(not_cached(spec, no_hub)) from exc
            raise InputError(f"{spec.text}: cannot load the model ({type(exc).__name__}: {_first(exc)})") from exc
        try:
            if modality == "image":
                processor = transformers.AutoImageProcessor.from_pretrained(name, local_files_only=local)
            else:
                processor = transformers.AutoTokenizer.from_pretrained(name, local_files_only=local)
        except Exception as exc:
            what = "image processor" if modality == "image" else "tokenizer"
            raise InputError(f"{spec.text}: no usable {what} for {modality} inputs "
                             f"({type(exc).__name__}: {_first(exc)})") from exc
    model.eval().to(dev)
    tower = select_tower(model, modality)
    ident = model_identity(spec, name, model.config)
    if modality == "image":
        return HFImageEncoder(spec, tower, processor, dev, dtype, ident)
    return HFTextEncoder(spec, tower, processor, dev, dtype, ident, max_length=max_length)


def select_tower(model, modality: str):
    """The sub-model that embeds ``modality``: CLIP-like text/vision towers, a seq2seq encoder."""
    if hasattr(model, "vision_model") and hasattr(model, "text_model"):
        return model.vision_model if modality == "image" else model.text_model
    if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
        return model.get_encoder()
    return model


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else "no message"


def _n_layers(tower) -> int | None:
    cfg = tower.config
    blocks = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "num_layers", None)
    return int(blocks) + 1 if blocks else None


class _HFBase(Encoder):
    def __init__(self, spec, tower, processor, device, dtype_name, ident):
        self.spec, self.tower, self.processor = spec, tower, processor
        self.device, self.dtype_name, self.ident = device, dtype_name, ident
        self.n_layers = _n_layers(tower)
        params = inspect.signature(tower.forward).parameters
        self._accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        self._params = set(params)

    def _call(self, batch: dict, hidden: bool):
        kwargs = {k: v for k, v in batch.items() if self._accepts_any or k in self._params}
        return self.tower(**kwargs, output_hidden_states=hidden, return_dict=True)

    def _pooled(self, out, mask, layers, pool) -> dict[str, torch.Tensor]:
        how = pool or self.default_pool
        if layers is None:
            return {layer_key(None): pool_tokens(out.last_hidden_state, mask, how)}
        return {layer_key(i): pool_tokens(out.hidden_states[i], mask, how) for i in layers}

    def provenance(self) -> dict:
        return {**self.ident, "loader": "transformers", "architecture": type(self.tower).__name__,
                "max_length": self.max_length}


class HFTextEncoder(_HFBase):
    modality = "text"

    def __init__(self, spec, tower, tokenizer, device, dtype_name, ident, *, max_length=None, default_pool="mean"):
        super().__init__(spec, tower, tokenizer, device, dtype_name, ident)
        self.default_pool = default_pool
        self.max_length = max_length or default_max_length(tokenizer, tower.config)
        if self.n_layers is None:  # exotic config: count the hidden states of a one-token probe
            with torch.inference_mode():
                self.n_layers = len(self._call(to_device(dict(self.prepare(["probe"]).inputs), device), True).hidden_states)

    def prepare(self, items: list) -> Prepared:
        # runs on the worker thread: fast tokenizers release the GIL while the model computes
        batch = self.processor(list(items), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        return Prepared(dict(batch), list(range(len(items))))

    def forward(self, prepared, layers, pool):
        batch = to_device(prepared.inputs, self.device)
        out = self._call(batch, hidden=layers is not None)
        return self._pooled(out, batch.get("attention_mask"), layers, pool)


class HFImageEncoder(_HFBase):
    modality = "image"

    def prepare(self, items: list) -> Prepared:
        images, ok, failed = [], [], []
        for pos, item in enumerate(items):
            try:
                images.append(load_image(item))
                ok.append(pos)
            except Exception as exc:  # PIL raises many types for corrupt files
                failed.append((pos, f"{type(exc).__name__}: {_first(exc)}"))
        inputs = self.processor(images=images, return_tensors="pt") if images else None
        return Prepared(dict(inputs) if inputs is not None else None, ok, failed)

    def forward(self, prepared, layers, pool):
        batch = to_device(prepared.inputs, self.device)
        batch["pixel_values"] = batch["pixel_values"].to(model_dtype(self.dtype_name))
        out = self._call(batch, hidden=layers is not None)
        return self._pooled(out, None, layers, pool)


def default_max_length(tokenizer, config) -> int | None:
    """The tokenizer's limit when it states a real one, capped by the position table."""
    limits = [getattr(tokenizer, "model_max_length", None), getattr(config, "max_position_embeddings", None)]
    limits = [int(x) for x in limits if isinstance(x, (int, float)) and 0 < x < 1_000_000]
    return min(limits) if limits else None

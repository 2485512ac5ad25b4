"""``openclip:ARCH:PRETRAINED_OR_PATH``: an open_clip model, image or text tower.

ARCH is a built-in architecture (``ViT-B-32``), a model-config ``.json`` file (registered
under its file name), or ``hf-hub:org/repo`` / ``local-dir:/folder`` (then no PRETRAINED).
PRETRAINED is a pretrained tag (downloaded through open_clip's cache) or a weights file
(``.safetensors``, or a ``.pt``/``.bin`` read with ``torch.load(weights_only=True)``).

The default output is the model's joint-space embedding (``encode_image``/``encode_text``,
not normalised unless ``--normalize``). With ``--layers``, layer i is the output of residual
block i (there is no separate embedding layer), pooled with ``--pool`` (default mean; for
text the padding after the end-of-text token is excluded).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..compute import resolve_device
from ..errors import InputError
from ..extras import MissingExtra, install_hint, require
from .base import Encoder, Prepared, model_dtype
from .huggingface import _first
from .inputs import load_image
from .pooling import pool_tokens
from .hub import not_cached, offline_reason
from .provenance import hub_revision, weights_sha256
from .spec import ModelSpec, layer_key, offline

_PRECISION = {"float32": "fp32", "float64": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def load_openclip(spec: ModelSpec, *, modality: str, device="auto", dtype: str = "float32",
                  max_length: int | None = None) -> Encoder:
    try:
        open_clip = require("open_clip", spec.text)
    except MissingExtra:
        raise
    except Exception as exc:  # torchvision built for another torch raises RuntimeError, not ImportError
        raise MissingExtra(f"{spec.text}: needs open_clip_torch with a torchvision matching torch "
                           f"({type(exc).__name__}: {_first(exc)}): {install_hint('open_clip')} where "
                           f"torch and torchvision match") from exc
    if dtype == "float64":
        raise InputError("dtype float64: open_clip models run in float32, float16 or bfloat16")
    dev = resolve_device(device)
    arch = spec.name
    if arch.endswith(".json"):
        path = Path(arch).expanduser().resolve()
        open_clip.add_model_config(path)  # registers the config under its file stem
        arch = path.stem
    elif arch.startswith("local-dir:"):
        arch = f"local-dir:{spec.local}"
    elif not arch.startswith("hf-hub:") and arch not in open_clip.list_models():
        raise InputError(f"{spec.text}: unknown open_clip architecture {arch!r} "
                         f"(see open_clip.list_models(), or pass a model-config .json)")
    weights = spec.local if spec.pretrained else None
    tag = spec.pretrained if spec.pretrained and weights is None else None
    on_disk = weights is not None or spec.name.startswith("local-dir:")
    no_hub = None if on_disk or not (tag or arch.startswith("hf-hub:")) else offline_reason(spec)
    try:
        with offline(on_disk or no_hub is not None):
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=tag, precision=_PRECISION[dtype], device=dev, weights_only=True)
    except Exception as exc:
        if no_hub:
            raise InputError(not_cached(spec, no_hub)) from exc
        raise InputError(f"{spec.text}: cannot create the model ({type(exc).__name__}: {_first(exc)})") from exc
    if weights is not None:
        try:  # open_clip's own loader: safetensors, or torch.load(weights_only=True); fixes key layouts
            open_clip.load_checkpoint(model, str(weights), strict=True, weights_only=True)
        except Exception as exc:
            raise InputError(f"{weights}: cannot load as {arch} weights ({type(exc).__name__}: {_first(exc)})") from exc
        model.to(device=dev, dtype=model_dtype(dtype) if dtype != "float64" else torch.float32)
    model.eval()
    ident = {"model": spec.text, "architecture": arch}
    if weights is not None:
        ident.update(model_path=str(weights), model_sha256=weights_sha256(weights))
    else:
        ident.update(pretrained=tag or None, model_revision=hub_revision(spec.name))
    tokenizer = open_clip.get_tokenizer(arch) if modality == "text" else None
    return OpenClipEncoder(spec, model, preprocess, tokenizer, modality, dev, dtype, ident, max_length)


class OpenClipEncoder(Encoder):
    def __init__(self, spec, model, preprocess, tokenizer, modality, device, dtype_name, ident, max_length):
        self.spec, self.model, self.preprocess, self.tokenizer = spec, model, preprocess, tokenizer
        self.modality, self.device, self.dtype_name, self.ident = modality, device, dtype_name, ident
        self.max_length = max_length or getattr(model, "context_length", None)
        tower = model.visual if modality == "image" else getattr(model, "transformer", None)
        blocks = getattr(getattr(tower, "transformer", tower), "resblocks", None)
        self.n_layers = len(blocks) if blocks is not None else 0
        self._dtype = next(model.parameters()).dtype

    def prepare(self, items):
        if self.modality == "text":
            tokens = self.tokenizer(list(items), context_length=self.max_length)
            return Prepared(tokens, list(range(len(items))))
        tensors, ok, failed = [], [], []
        for pos, item in enumerate(items):
            try:
                tensors.append(self.preprocess(load_image(item)))
                ok.append(pos)
            except Exception as exc:
                failed.append((pos, f"{type(exc).__name__}: {_first(exc)}"))
        return Prepared(torch.stack(tensors) if tensors else None, ok, failed)

    def forward(self, prepared, layers, pool):
        x = prepared.inputs.to(self.device)
        if self.modality == "image":
            x = x.to(self._dtype)
        if layers is None and pool is None:
            fn = self.model.encode_image if self.modality == "image" else self.model.encode_text
            return {layer_key(None): fn(x)}
        if layers is None:
            raise InputError("pool applies to `layers` with openclip: (its default output is already pooled)")
        if not hasattr(self.model, "forward_intermediates") or not self.n_layers:
            raise InputError(f"{self.spec.text}: `layers` is not supported for this open_clip architecture")
        how = pool or self.default_pool
        if self.modality == "image":
            out = self.model.forward_intermediates(image=x, image_indices=list(layers), intermediates_only=True,
                                                   image_output_fmt="NLC", image_output_extra_tokens=True)
            states = [torch.cat([p, s], dim=1) for p, s in
                      zip(out["image_intermediates_prefix"], out["image_intermediates"])]
            mask = None
        else:
            out = self.model.forward_intermediates(text=x, text_indices=list(layers), intermediates_only=True)
            states, mask = out["text_intermediates"], x != 0  # open_clip pads with token id 0
        return {layer_key(i): pool_tokens(h, mask, how) for i, h in zip(layers, states)}

    def describe_pool(self, layers, pool):
        if layers is None and pool is None:
            return "model (encode_image / encode_text projection)"
        return pool or self.default_pool

    def provenance(self):
        return {**self.ident, "loader": "open_clip", "max_length": self.max_length if self.modality == "text" else None}

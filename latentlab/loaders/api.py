"""``embed``, ``embed_to_file`` and ``load_model``: the loaders' public functions (see the package doc)."""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..compute import resolve_device
from ..errors import InputError, LatentlabWarning
from ..extras import require
from ..results import ResultMixin
from .base import Encoder
from .hub import require_available
from .spec import MODEL_DTYPES
from .inputs import InputSet, read_inputs
from .pooling import check_pool
from .provenance import now
from .run import output_keys, run_shards
from .spec import DEFAULT_SHARD_SIZE, ModelSpec, parse_layers, parse_spec, resolve_layers
from .writer import MemorySink, ShardStore, output_layout, sidecar_path


def load_model(model: str, *, modality: str = "text", device="auto", dtype: str = "float32",
               max_length: int | None = None) -> Encoder:
    """Load a model spec once (reuse the result across :func:`embed` calls)."""
    spec = parse_spec(model)
    require_available(spec)  # a hub name with no network and no cached copy: one error, now
    if dtype == "float16" and resolve_device(device).type == "cpu":
        warnings.warn("dtype float16 on CPU is slow and some ops lack kernels; use bfloat16 or float32 there",
                      LatentlabWarning)
    if max_length is not None and max_length < 1:
        raise InputError(f"max_length {max_length}: must be at least 1")
    if spec.kind == "hf":
        from .huggingface import load_hf as loader
    elif spec.kind == "st":
        from .sentence import load_st as loader
    else:
        from .openclip import load_openclip as loader
    return loader(spec, modality=modality, device=device, dtype=dtype, max_length=max_length)


@dataclass(frozen=True)
class EmbedReport(ResultMixin):
    """What ``latentlab embed`` wrote: files, shape, throughput and the provenance record."""

    files: list
    sidecar: str
    count: int
    dim: int
    layers: list
    skipped: int
    resumed_shards: int
    seconds: float
    items_per_s: float
    provenance: dict = field(default_factory=dict)


def _prepare(model, inputs, *, layers, pool, modality, column, limit, device, dtype, max_length):
    check_pool(pool)
    if dtype not in MODEL_DTYPES:
        raise InputError(f"dtype {dtype}: expected one of {', '.join(MODEL_DTYPES)}")
    selection = parse_layers(layers)
    data = inputs if isinstance(inputs, InputSet) else read_inputs(inputs, modality=modality, column=column,
                                                                  limit=limit)
    if data.modality == "image":  # decoding needs pillow: say so now, not as n "undecodable" items
        require("PIL", "image inputs")
    if isinstance(model, Encoder):
        encoder = model
        if encoder.modality != data.modality:
            raise InputError(f"{encoder.spec.text} was loaded for {encoder.modality}, the input is {data.modality}")
    else:
        encoder = load_model(model, modality=data.modality, device=device, dtype=dtype, max_length=max_length)
    chosen = resolve_layers(selection, encoder.n_layers, encoder.spec.text)
    return encoder, data, chosen


def embed(model, inputs, *, layers=None, pool: str | None = None, normalize: bool = False,
          batch_size: int = 32, max_length: int | None = None, device="auto", dtype: str = "float32",
          limit: int | None = None, modality: str = "auto", column: str | None = None,
          strict: bool = False, progress: bool = False):
    """Embed ``inputs`` with a frozen model and return the arrays (float32, input order).

    Parameters
    ----------
    model : ``"hf:NAME_OR_PATH"``, ``"st:NAME_OR_PATH"``, ``"openclip:ARCH:PRETRAINED_OR_PATH"``,
        or an encoder from :func:`load_model`.
    inputs : a path (text file, .jsonl/.csv/.parquet with ``column``, image folder, list of
        image paths with ``modality="image"``) or a Python list of strings / PIL images.
    layers : ``None`` (the model's own embedding), ``"all"``, an index (``-1``) or a list /
        ``"0,3,6"`` of hidden-state layers.
    pool : ``mean`` (mask-aware), ``cls``, ``last`` or ``max``; default: the model's own pooling
        for ``st:``, mean otherwise.
    normalize : L2-normalise every output row.
    dtype : model precision, float32, float64, float16 or bfloat16 (half precision on GPU).

    Returns
    -------
    numpy.ndarray (n, d) when ``layers`` is None or one index; a dict {layer: (n, d) array}
    otherwise. Undecodable images are skipped with a warning (``strict=True`` raises).
    """
    encoder, data, chosen = _prepare(model, inputs, layers=layers, pool=pool, modality=modality, column=column,
                                     limit=limit, device=device, dtype=dtype, max_length=max_length)
    sink = MemorySink()
    run_shards(encoder, data, sink, layers=chosen, pool=pool, normalize=normalize, batch_size=batch_size,
               shard_size=max(len(data.items), 1), strict=strict, show_progress=progress)
    keys = output_keys(chosen)
    if not any(sink.shards[i][0][keys[0]].shape[0] for i in sink.shards):
        raise InputError(f"{data.source}: no item could be embedded ({len(sink.skipped())} undecodable)")
    arrays = sink.arrays(keys)
    selection = parse_layers(layers)
    if selection is None or (isinstance(selection, list) and len(selection) == 1 and not isinstance(layers, (list, tuple))):
        return arrays[keys[0]]  # one output asked for as a scalar: one array
    return {i: arrays[k] for i, k in zip(chosen, keys)}


def embed_to_file(model, inputs, out, *, layers=None, pool: str | None = None, normalize: bool = False,
                  batch_size: int = 32, max_length: int | None = None, device="auto", dtype: str = "float32",
                  limit: int | None = None, modality: str = "auto", column: str | None = None,
                  strict: bool = False, shard_size: int = DEFAULT_SHARD_SIZE, progress: bool = True) -> EmbedReport:
    """Embed like :func:`embed` and write ``out`` in resumable shards, plus the ``OUT.json`` sidecar.

    ``out`` ending in ``.npy`` (one output), ``.safetensors`` (one tensor per layer) or a
    folder (``layer00.npy``, …). A rerun with the same settings after an interruption skips
    the shards already in ``OUT.parts``.
    """
    out = Path(out)
    selection = parse_layers(layers)
    wanted = 1 if selection is None else (2 if selection == "all" else len(set(selection)))
    output_layout(out, ["x"] * wanted)  # a bad OUT fails before the model loads
    encoder, data, chosen = _prepare(model, inputs, layers=layers, pool=pool, modality=modality, column=column,
                                     limit=limit, device=device, dtype=dtype, max_length=max_length)
    keys = output_keys(chosen)
    settings = {
        "model": encoder.spec.text, "modality": data.modality, "layers": chosen,
        "pooling": encoder.describe_pool(chosen, pool),
        # unit rows either way; which step did it is said too (--normalize, or the model itself)
        "normalize": bool(normalize) or encoder.normalizes(chosen, pool),
        "normalized_by": ("--normalize" if normalize else
                          "the model's pipeline (Normalize module)" if encoder.normalizes(chosen, pool) else None),
        "dtype": encoder.dtype_name, "max_length": encoder.max_length, "column": data.column,
    }
    fingerprint = {**settings, "input_sha256": data.sha256, "limit": limit, "shard_size": shard_size,
                   "n_items": len(data.items)}
    store = ShardStore(out, fingerprint, keys)
    start = time.perf_counter()
    run_shards(encoder, data, store, layers=chosen, pool=pool, normalize=normalize, batch_size=batch_size,
               shard_size=shard_size, strict=strict, show_progress=progress)
    seconds = time.perf_counter() - start
    shapes = store.shapes()
    count, dim = shapes[keys[0]]
    skipped = store.skipped()
    if count == 0:
        raise InputError(f"{data.source}: no item could be embedded ({len(skipped)} undecodable)")
    provenance = {
        **encoder.provenance(), **settings,
        "layer_indexing": _indexing(encoder), "output_dtype": "float32", "count": count, "dim": dim,
        "keys": keys, "input": data.source, "input_sha256": data.sha256, "input_hash_of": data.hash_of,
        "input_items": data.total, "limit": limit, "skipped": skipped,
        "latentlab_version": __version__, "created": now(),
    }
    files = store.finalize(provenance)
    done_now = len(data.items) - min(len(data.items), store.resumed * shard_size)  # items embedded by this run
    return EmbedReport(files=[str(f) for f in files], sidecar=str(sidecar_path(out)), count=count, dim=dim,
                       layers=chosen if chosen is not None else ["output"], skipped=len(skipped),
                       resumed_shards=store.resumed, seconds=round(seconds, 3),
                       items_per_s=round(done_now / seconds, 2) if seconds > 0 else 0.0, provenance=provenance)


def _indexing(encoder: Encoder) -> str:
    if encoder.spec.kind == "openclip":
        return f"layer i = output of residual block i (0…{encoder.n_layers - 1})"
    return f"transformers hidden_states: 0 = embedding output, i = after block i (0…{encoder.n_layers - 1})"


__all__ = ["embed", "embed_to_file", "load_model", "EmbedReport"]

"""The embedding loop: shards in input order, length-sorted batches inside a shard,
preprocessing of the next batch on a worker thread while the model runs the current one."""
from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..compute import l2_normalize
from ..errors import InputError, LatentlabWarning
from ..progress import progress
from .base import Encoder
from .inputs import InputSet
from .spec import layer_key


def output_keys(layers: list[int] | None) -> list[str]:
    return [layer_key(None)] if layers is None else [layer_key(i) for i in layers]


def run_shards(encoder: Encoder, inputs: InputSet, sink, *, layers: list[int] | None, pool: str | None,
               normalize: bool, batch_size: int, shard_size: int, strict: bool, show_progress: bool) -> None:
    """Embed ``inputs`` shard by shard into ``sink`` (skipping shards the sink already has)."""
    if batch_size < 1:
        raise InputError(f"batch_size {batch_size}: must be at least 1")
    if shard_size < 1:
        raise InputError(f"shard_size {shard_size}: must be at least 1")
    items = inputs.items
    keys = output_keys(layers)
    bar = progress(total=len(items), desc="embed", unit="item") if show_progress else None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="latentlab-prep") as pool_exec:
        for shard, start in enumerate(range(0, len(items), shard_size)):
            chunk = items[start:start + shard_size]
            if sink.done(shard):
                if bar is not None:
                    bar.update(len(chunk))
                continue
            arrays, skipped = _embed_chunk(encoder, chunk, start, keys, layers, pool, normalize,
                                           batch_size, strict, pool_exec, bar)
            sink.save(shard, arrays, skipped)
    if bar is not None:
        bar.close()


def _embed_chunk(encoder, chunk, start, keys, layers, pool, normalize, batch_size, strict, pool_exec, bar):
    # longest first, like sentence-transformers: similar lengths share a batch (less padding)
    # and an out-of-memory error shows on the first batch rather than the last
    order = sorted(range(len(chunk)), key=lambda i: -encoder.length(chunk[i]))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    out: dict[str, np.ndarray] = {}
    good = np.zeros(len(chunk), dtype=bool)
    skipped = []
    pending = pool_exec.submit(encoder.prepare, [chunk[i] for i in batches[0]]) if batches else None
    for b, batch in enumerate(batches):
        prepared = pending.result()
        if b + 1 < len(batches):
            pending = pool_exec.submit(encoder.prepare, [chunk[i] for i in batches[b + 1]])
        for pos, reason in prepared.failed:
            item = chunk[batch[pos]]
            where = f"item {start + batch[pos]} ({item if isinstance(item, str) else type(item).__name__})"
            if strict:
                raise InputError(f"{where}: cannot decode: {reason}")
            warnings.warn(f"{where}: cannot decode, skipped: {reason}", LatentlabWarning)
            skipped.append({"index": start + batch[pos], "item": str(item)[:500], "reason": reason})
        if prepared.ok:
            with torch.inference_mode():
                result = encoder.forward(prepared, layers, pool)
            rows = [batch[p] for p in prepared.ok]
            for key in keys:
                vec = result[key].float()
                if normalize:
                    vec = l2_normalize(vec)
                vec = vec.cpu().numpy()
                if key not in out:
                    out[key] = np.zeros((len(chunk), vec.shape[1]), dtype=np.float32)
                out[key][rows] = vec  # back to input order
            good[rows] = True
        if bar is not None:
            bar.update(len(batch))
    if not out:  # every item of the shard failed to decode: dims unknown, keep empty shards
        return {k: np.zeros((0, 0), dtype=np.float32) for k in keys}, skipped
    return {k: v[good] for k, v in out.items()}, skipped

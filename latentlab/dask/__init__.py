"""Run latentlab's streamed statistics on a Dask cluster (extra ``latentlab[dask]``).

Inside ``with latentlab.dask.DaskEngine("tcp://scheduler:8786"):`` every streamed pass of
gap, linear CKA (biased and debiased), cka-matrix, spectrum, overlap's covariances and the
closed-form fits (lstsq, affine, ridge, Procrustes and the other moment-based aligners) is
split into row ranges — one per shard of a shard folder, or per range of a file — read on
the workers through latentlab's own readers, accumulated there with the same accumulators as
the local pass, merged in a fixed tree and finished on the client by the same functions.
Exact top-k lists and retrieval ranks split the queries into blocks, each scanning the whole
gallery in chunks on a worker; the blocks' results are concatenated in query order. So the
numbers equal the single-machine ones up to float summation order.

Inputs must be readable from every worker under the same path (shared storage); in-memory
arrays are shipped to the cluster. Without an address a local cluster is started. The streamed
resampling passes go through the same engine: linear CKA's bootstrap and the spectrum's
half-sampling (per-group sums over a grouping fixed by the global row index, one lane of tasks
per worker since the sums are G·d²) and CKA's streamed permutation null (each task pairs A's
rows with B's rows π[range]); the resampling of the stored sums then runs on the client.
In-memory resampling (inputs under the memory budget) stays on the client.

>>> import latentlab, latentlab.dask
>>> with latentlab.dask.DaskEngine("tcp://10.0.0.5:8786"):          # doctest: +SKIP
...     res = latentlab.cka("dump/img_emb", "dump/text_emb")
"""
from __future__ import annotations

from .engine import DaskEngine, engine, require_dask

__all__ = ["DaskEngine", "engine", "require_dask"]

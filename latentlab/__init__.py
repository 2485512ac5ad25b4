"""latentlab: post-hoc analysis and stitching of neural embedding spaces.

The public API is imported lazily, so ``import latentlab`` stays cheap::

    import latentlab
    res = latentlab.gap("features_clip.npy::0", "features_clip.npy::1")
    print(res.centroid_distance)
"""
from __future__ import annotations

import importlib
import os as _os
import sys as _sys

if "numpy" not in _sys.modules:
    # OpenBLAS's threads spin for 2^28 cycles (~0.1 s) after each call before they sleep.
    # latentlab alternates OpenBLAS GEMMs with torch kernels on the same cores (latentlab.blas),
    # and the spinning threads slowed the torch kernels between them 2× (top-k selection over
    # 10,000 × 50,000 scores: 1.7 s → 0.8 s with a short spin). A user's own setting wins.
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")
if "torch" not in _sys.modules:
    # The same on torch's side: its OpenMP threads spin after each parallel region and slowed the
    # OpenBLAS GEMMs between torch kernels (exact uniformity at 10,000 × 768: 0.85 s → 0.65 s with a
    # short spin; torch-only work such as fit mlp measured unchanged). A user's own setting wins.
    _os.environ.setdefault("GOMP_SPINCOUNT", "1000")

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "gap": "latentlab.analyze.gap",
    "GapResult": "latentlab.analyze.gap",
    "read_embeddings": "latentlab.io",
    "write_embeddings": "latentlab.io",
    "as_embeddings": "latentlab.io",
    "Embeddings": "latentlab.io",
    "InputError": "latentlab.errors",
    "LatentlabWarning": "latentlab.errors",
    "Estimate": "latentlab.results",
    "uniformity": "latentlab.analyze.uniformity",
    "cka": "latentlab.analyze.cka",
    "cka_matrix": "latentlab.analyze.matrix",
    "overlap": "latentlab.analyze.overlap",
    "spectrum": "latentlab.analyze.spectrum",
    "similarity": "latentlab.analyze.compare",
    "similarity_matrix": "latentlab.analyze.matrix",
    "MEASURES": "latentlab.analyze.registry",
    "bootstrap": "latentlab.stats",
    "fit_aligner": "latentlab.align",
    "load_aligner": "latentlab.align",
    "evaluate_aligner": "latentlab.align",
    "apply_map": "latentlab.align",
    "match": "latentlab.align",
    "embed": "latentlab.loaders",
}
_SUBMODULES = {"analyze", "align", "retrieval", "loaders", "io", "compute", "stats", "knn", "plot", "report",
               "dask"}  # latentlab.dask needs the extra only when used


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"latentlab.{name}")
    raise AttributeError(f"module 'latentlab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API) | _SUBMODULES)


__all__ = ["__version__", *_API]

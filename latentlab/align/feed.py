"""Feeding a trained aligner on its device: where the training pairs live and in which
precision the forward pass runs (used by :mod:`.mlp`).

Mixed precision follows PyTorch's automatic mixed precision recipe (``torch.autocast`` +
``torch.amp.GradScaler``; Micikevicius et al., "Mixed Precision Training", ICLR 2018:
float32 master weights, loss scaling for float16; bfloat16 has float32's exponent range and
needs none — Kalamkar et al., "A Study of BFLOAT16 for Deep Learning Training", 2019).
"""
from __future__ import annotations

import sys
from contextlib import contextmanager

import numpy as np
import torch

from ..compute import Backend
from ..errors import InputError

#: preprocessed pairs (source, target and the target's output coordinates) up to this many
#: bytes live on the device for the whole fit; above it, rows go over batch by batch
RESIDENT_BYTES = 2 << 30
PRECISIONS = ("auto", "float32", "bfloat16", "float16")


def check_precision(precision: str) -> str:
    """``precision`` when it names a policy of :func:`amp_dtype`, else InputError naming the argument."""
    if precision not in PRECISIONS:
        raise InputError(f"`precision` {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return precision


def amp_dtype(device: torch.device, dtype: torch.dtype = torch.float32, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype of the projector's forward pass, or None for none.

    ``auto``: on CUDA with float32 weights, bfloat16 where the GPU computes it natively
    (compute capability ≥ 8: float32's exponent range, so no loss scaling), else float16
    (needs a ``GradScaler``); on CPU none (autocast there is slower than float32 GEMMs on
    most CPUs, and CPU fits are the deterministic reference). float64 fits never autocast.
    An explicit ``bfloat16`` / ``float16`` applies on any device (that is how the CPU tests
    run the mixed-precision path); ``float32`` turns it off."""
    check_precision(precision)
    if dtype == torch.float64 or precision == "float32":
        return None
    if precision != "auto":
        return getattr(torch, precision)
    if device.type != "cuda":
        return None
    try:  # emulated bf16 (pre-Ampere) is slower than float16 + loss scaling
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # older torch: no emulation flag
        native = torch.cuda.get_device_capability(device)[0] >= 8
    return torch.bfloat16 if native else torch.float16


class PairFeed:
    """The training pairs as the fit reads them: ``batch(idx)`` → (preprocessed source,
    preprocessed target, target in output coordinates) for rows ``idx`` (a CPU index tensor), on
    the device. Resident when they fit ``RESIDENT_BYTES`` (preprocessed once, indexed on the
    device); otherwise the raw rows stay on the host (a memory map stays one) and each batch is
    gathered there, pinned when the device is CUDA (so the copy is asynchronous) and
    preprocessed on the device — per-row arithmetic, so both give the same numbers."""

    def __init__(self, Xd: np.ndarray, Yd: np.ndarray, px, py, backend: Backend):
        self.Xd, self.Yd, self.px, self.py, self.backend = Xd, Yd, px, py, backend
        width = Xd.shape[1] + 2 * Yd.shape[1]
        self.resident = len(Xd) * width * backend.itemsize <= RESIDENT_BYTES
        if self.resident:
            self.X = px.apply(backend.tensor(Xd))
            self.Y = py.apply(backend.tensor(Yd))
            self.Yout = py.invert(self.Y)  # targets in the coordinates transform returns (pre_y.head(y))

    def _move(self, rows: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(rows, dtype=torch.empty((), dtype=self.backend.dtype).numpy().dtype))
        if self.backend.device.type == "cuda":
            # pinned (page-locked) staging from torch's caching host allocator, which keeps the
            # buffer until the asynchronous copy has landed
            t = t.pin_memory()
        return t.to(self.backend.device, non_blocking=True)

    def batch(self, idx: torch.Tensor):
        if self.resident:
            i = idx.to(self.backend.device, non_blocking=True)
            return self.X[i], self.Y[i], self.Yout[i]
        rows = idx.numpy()
        x, y = self.px.apply(self._move(self.Xd[rows])), self.py.apply(self._move(self.Yd[rows]))
        return x, y, self.py.invert(y)


@contextmanager
def deterministic_algorithms(enabled: bool = True):
    """``torch.use_deterministic_algorithms(enabled)`` for the duration, restored after.

    Without that function's ``import torch._inductor.config`` (it sets inductor's flag too): the
    import pulls in dynamo and inductor, seconds of start-up on the first fit of a process,
    and nothing here is compiled. Once inductor is loaded, the public function is used."""
    was, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    eager = "torch._inductor.config" not in sys.modules and hasattr(torch._C, "_set_deterministic_algorithms")
    set_ = torch._C._set_deterministic_algorithms if eager else torch.use_deterministic_algorithms
    set_(enabled)
    try:
        yield
    finally:
        set_(was, warn_only=warn_only)


__all__ = ["PairFeed", "amp_dtype", "deterministic_algorithms", "RESIDENT_BYTES", "PRECISIONS"]

"""`fit mlp` on its device: the mixed-precision policy, the batch feed, and fit quality on CUDA.

No GPU is needed for most of it: the autocast path runs on the CPU too (bfloat16 and float16 +
loss scaling, chosen explicitly), and the host-side batch feed that large sets use on CUDA is
forced on the CPU by lowering the resident budget. The ``device`` fixture's CUDA case compares a
CUDA fit (its default mixed precision) with the CPU float32 fit by held-out R@1 — not bitwise:
other kernels, another dropout stream and bf16 products train to a slightly different map.
"""
from __future__ import annotations

import functools
import re
import warnings

import numpy as np
import pytest
import torch

from latentlab.align import evaluate_aligner, load_aligner, make_aligner
from latentlab.align import feed
from latentlab.align.feed import amp_dtype
from latentlab.align.mlp import info_nce
from latentlab.align.structure import structure_loss
from latentlab.compute import Backend
from latentlab.errors import InputError
from tests.align.test_mlp import _tanh_pairs

#: held-out R@1 of a mixed-precision or CUDA fit may differ from the CPU float32 fit by this
#: much: refits with other seeds on this data spread over ±0.008 (0.708–0.724, 500 held-out rows)
R1_TOL = 0.03
OPTS = dict(hidden=64, epochs=10, batch_size=64, lr=3e-3)


@pytest.fixture(scope="module")
def pairs():
    X, Y = _tanh_pairs(1500, 16, 16, 0.5, seed=11, scale=3.0)
    return X, Y, np.arange(1000)


def _fit(X, Y, anchors, device="cpu", precision="auto", **kw):
    al = make_aligner("mlp", device=device, **{**OPTS, **kw})
    al.precision = precision
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return al.fit(X, Y, anchor_indices=anchors)


@pytest.fixture(scope="module")
def reference(pairs):
    """The CPU float32 fit every other precision / device is compared with."""
    X, Y, anchors = pairs
    al = _fit(X, Y, anchors)
    return al, evaluate_aligner(al, X, Y, device="cpu").r_at_1


# ---------------------------------------------------------------------- the policy
def test_amp_dtype_policy(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
    assert amp_dtype(cpu) is None  # CPU fits stay float32: the deterministic reference
    assert amp_dtype(cpu, torch.float32, "bfloat16") is torch.bfloat16
    assert amp_dtype(cpu, torch.float32, "float16") is torch.float16
    assert amp_dtype(cuda, torch.float64) is None and amp_dtype(cuda, torch.float64, "bfloat16") is None
    assert amp_dtype(cuda, torch.float32, "float32") is None
    calls = []

    def native(flag):
        def is_bf16_supported(including_emulation=True):
            calls.append(including_emulation)
            return flag
        return is_bf16_supported

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", native(True))
    assert amp_dtype(cuda) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", native(False))
    assert amp_dtype(cuda) is torch.float16  # pre-Ampere: float16 + loss scaling, not emulated bf16
    assert calls == [False, False]  # emulated bf16 does not count as support
    with pytest.raises(InputError, match="`precision` 'half'"):  # the message fit_aligner gives too
        amp_dtype(cpu, torch.float32, "half")


def test_losses_stay_float32_under_autocast():
    """InfoNCE's logits and STRUCTURE's softmax are computed in float32 even inside an autocast
    region: the same numbers as outside it (bf16 products would move them by ~1e-2)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 16, generator=g), torch.randn(64, 16, generator=g)
    scale = torch.tensor(np.log(1 / 0.07), dtype=torch.float32)
    plain = info_nce(a, b, scale), structure_loss(a, b, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = info_nce(a, b, scale), structure_loss(a, b, 2)
        lowp = torch.nn.functional.cross_entropy(scale.exp() * (a @ b.T), torch.arange(64))  # what it guards
    for p, m in zip(plain, mixed):
        assert m.dtype == torch.float32 and torch.equal(p, m)
    assert abs(float(lowp) - float(torch.nn.functional.cross_entropy(scale.exp() * (a @ b.T).float(),
                                                                      torch.arange(64)))) > 1e-4


# ---------------------------------------------------------------------- the feed
def test_streamed_batches_equal_resident_pairs(pairs, reference, monkeypatch, tmp_path):
    """Above the resident budget the rows stay on the host and go over batch by batch (pinned on
    CUDA): the same fit, bit for bit, also from a memory-mapped file."""
    X, Y, anchors = pairs
    ref, _ = reference
    assert ref.fit_stats_["resident"] is True
    monkeypatch.setattr(feed, "RESIDENT_BYTES", 0)
    np.save(tmp_path / "x.npy", X.astype(np.float32))
    for src in (X, np.load(tmp_path / "x.npy", mmap_mode="r")):
        al = _fit(src, Y, anchors)
        assert al.fit_stats_["resident"] is False
        if src is X:
            assert al.fit_stats_["train_loss"] == ref.fit_stats_["train_loss"]
            assert np.array_equal(al.transform(X), ref.transform(X))
        else:  # float32 on disk: the same rows up to the input rounding
            assert np.abs(al.fit_stats_["best_val_loss"] - ref.fit_stats_["best_val_loss"]) < 1e-3


def test_transform_blocks_account_for_the_hidden_width(pairs, reference):
    """The default transform block leaves room for the hidden activations: budget /
    ((d_in + d_out + hidden) · 8 bytes · 2 copies) rows, not budget / ((d_in + d_out) · 16)."""
    X, _, _ = pairs
    ref, _ = reference
    backend = Backend(torch.device("cpu"), torch.float64, 100_000)
    _, _, blocks = ref._mapped_blocks(X, "source", backend, None)
    assert len(next(blocks)[1]) == 100_000 // ((16 + 16 + 64) * 8 * 2) == 65
    _, _, blocks = ref._mapped_blocks(X, "target", backend, None)  # the target side has no hidden layer
    assert len(next(blocks)[1]) == 100_000 // ((16 + 16) * 8 * 2)


# ---------------------------------------------------------------------- mixed precision and the device
@pytest.mark.parametrize("precision, init_scale", [("bfloat16", None), ("float16", None), ("float16", 2.0**60)])
def test_mixed_precision_fit_on_cpu_matches_float32_quality(pairs, reference, monkeypatch, precision, init_scale):
    """The autocast path on the CPU: bf16, and float16 with loss scaling — also when the scale
    starts far too high, so the first steps overflow and are skipped (the schedule waits)."""
    X, Y, anchors = pairs
    ref, r1 = reference
    if init_scale is not None:
        monkeypatch.setattr(torch.amp, "GradScaler", functools.partial(torch.amp.GradScaler, init_scale=init_scale))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        al = make_aligner("mlp", device="cpu", **OPTS)
        al.precision = precision
        al.fit(X, Y, anchor_indices=anchors)
    label = al.fit_stats_["precision"]
    skipped = int(re.search(r"\((\d+) overflowed", label).group(1)) if precision == "float16" else None
    assert label.startswith(f"{precision} autocast") and ("loss scaling" in label) == (precision == "float16")
    if init_scale is not None:
        assert 30 <= skipped <= 60, label  # one halving per skipped step: 2^60 → 2^16-ish in ~45 steps
    assert not np.array_equal(al.transform(X), ref.transform(X))  # the low-precision products did run
    got = evaluate_aligner(al, X, Y, device="cpu").r_at_1
    print(label, "held-out R@1", got, "float32", r1)
    assert abs(got - r1) <= R1_TOL, (got, r1)


def test_device_fit_quality_matches_the_cpu(device, pairs, reference, monkeypatch, tmp_path):
    """CUDA: its default mixed precision (bf16 autocast, or float16 + loss scaling), resident and
    streamed from pinned host memory, reaches the CPU float32 fit's held-out R@1 within R1_TOL.
    On the CPU the same check runs the bf16 autocast path that CUDA uses."""
    X, Y, anchors = pairs
    ref, r1 = reference
    precision = "auto" if device == "cuda" else "bfloat16"
    al = _fit(X, Y, anchors, device=device, precision=precision)
    assert al.fit_stats_["precision"] != "float32"
    got = evaluate_aligner(al, X, Y, device=device).r_at_1
    assert abs(got - r1) <= R1_TOL, (device, got, r1)
    t = al.map_rows(X, "source")  # transform runs on the device, block by block
    assert t.device.type == torch.device(device).type
    assert np.abs(t.cpu().numpy() - al.transform(X, block_rows=97)).max() <= 1e-12 * float(t.abs().max())
    back = load_aligner(al.save(tmp_path / "m.safetensors")).set_params(device="cpu")
    assert np.abs(back.transform(X) - t.cpu().numpy()).max() <= 1e-10 * float(t.abs().max())
    if device == "cpu":
        return  # the CPU's streamed feed is checked bit for bit above
    monkeypatch.setattr(feed, "RESIDENT_BYTES", 0)
    streamed = _fit(X, Y, anchors, device=device, precision=precision)
    assert streamed.fit_stats_["resident"] is False
    got = evaluate_aligner(streamed, X, Y, device=device).r_at_1
    assert abs(got - r1) <= R1_TOL, (device, "streamed", got, r1)

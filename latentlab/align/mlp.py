"""A trained projector: an MLP from the source into the target space, with a residual linear path.

``f(x) = MLP(x) + x·W_skip + b_skip`` on preprocessed rows (default: standardised with the
training split's statistics), then mapped back into the target's own coordinates. The MLP
has ``layers`` linear layers (``hidden`` units, GELU, dropout after every hidden layer), the
projector heads used to connect frozen unimodal encoders (Zhang et al. 2024, "From Unimodal
to Multimodal"; Gröger et al. 2025). Losses (``loss``):

* ``infonce`` — symmetric InfoNCE over the batch with a learnable temperature as in CLIP
  (Radford et al. 2021): logit scale initialised at log(1/0.07), clamped at 100, on the cosine
  of the mapped rows and the targets in the coordinates ``transform`` returns (what
  ``evaluate`` scores);
* ``mse`` — mean squared error of the preprocessed (standardised) target coordinates, so 1 is
  what predicting the mean scores;
* ``both`` — their sum.

``structure=λ`` adds λ·R(x, f(x)), the STRUCTURE regulariser (:mod:`.structure`) on each
batch, λ warmed up linearly over the first ``WARMUP_FRAC`` of the steps. Training: AdamW
(weight decay on weight matrices only, as CLIP), learning rate warmed up linearly over the same
steps then cosine-decayed to 0, ``epochs`` passes in batches of near-equal size ≥
``batch_size``; a seeded ``val_frac`` of the pairs is held out, the validation loss (the
alignment loss without the regulariser, no dropout) is computed after every epoch, the best
weights are kept and training stops after ``patience`` epochs without a new best.

Start: the MLP's output layer is zero and the linear path is the ridge fit (α by GCV,
:func:`.linear.gcv_scores`) on the training split, so training starts from the best linear map
and the held-out loss of that start competes for "best checkpoint" — a relation that is linear
ends close to ``ridge``, a nonlinear one improves on it.

Seeded and deterministic on CPU (one generator for the split, shuffles and initial weights,
one for dropout; deterministic algorithms while fitting). On CUDA the projector's forward pass
runs under autocast (:func:`amp_dtype`: bfloat16 where the GPU has it, else float16 with a
``GradScaler``; the weights, optimiser state, losses, logits, temperature and the STRUCTURE
softmax stay float32). Pairs that fit :data:`.feed.RESIDENT_BYTES` are moved to the device once;
larger sets stay on the host and each batch goes over on its own (pinned memory on CUDA).
``transform`` runs the saved float64 weights on the device, block by block.

References
----------
Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
ICML 2021 (symmetric InfoNCE, learnable temperature).
Oord, Li & Vinyals, "Representation Learning with Contrastive Predictive Coding", 2018.
Zhang et al., "From Unimodal to Multimodal: Scaling up Projectors to Align Modalities", 2024.
Gröger, Wen, Le & Brbić, "With Limited Data for Multimodal Alignment, Let the STRUCTURE
Guide You", NeurIPS 2025.
Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (AdamW), ICLR 2019; "SGDR" (cosine
schedule), ICLR 2017.
"""
from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from ..compute import Backend, l2_normalize
from ..errors import InputError
from ..io import validate
from ..progress import progress
from .base import DirectAligner, opt, psd_solve, register
from .feed import PairFeed, amp_dtype, deterministic_algorithms
from .linear import ALPHA_GRID, NORMAL_EQUATIONS, gcv_scores
from .preprocess import PairStats
from .structure import structure_loss

LOSSES = ("infonce", "mse", "both")
#: CLIP: temperature 0.07 at the start, logit scale never above 100
LOGIT_SCALE_INIT = math.log(1 / 0.07)
LOGIT_SCALE_MAX = math.log(100.0)
#: share of the scheduled steps over which the learning rate and λ ramp up linearly
WARMUP_FRAC = 0.1
#: (name, shape from (ds, dt, hidden, layers)) of the saved tensors, in forward order
_SHAPES = {
    "skip_W_": lambda ds, dt, h, L: (ds, dt), "skip_b_": lambda ds, dt, h, L: (dt,),
    "in_W_": lambda ds, dt, h, L: (ds, h), "in_b_": lambda ds, dt, h, L: (h,),
    "hid_W_": lambda ds, dt, h, L: (L - 2, h, h), "hid_b_": lambda ds, dt, h, L: (L - 2, h),
    "out_W_": lambda ds, dt, h, L: (h, dt), "out_b_": lambda ds, dt, h, L: (dt,),
}


def forward(p, x: torch.Tensor, *, dropout: float = 0.0, gen: torch.Generator | None = None) -> torch.Tensor:
    """The projector on preprocessed rows ``x``; ``p`` has the tensors of ``_SHAPES`` as
    attributes. Dropout (training only) draws its masks from ``gen``, so a seeded fit repeats."""

    def drop(h):
        if dropout <= 0:
            return h
        keep = torch.rand(h.shape, generator=gen, device=h.device) >= dropout
        return h * keep / (1.0 - dropout)

    h = drop(F.gelu(x @ p.in_W_ + p.in_b_))
    for W, b in zip(p.hid_W_, p.hid_b_):
        h = drop(F.gelu(h @ W + b))
    return h @ p.out_W_ + p.out_b_ + (x @ p.skip_W_ + p.skip_b_)


def info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP): row i of ``a`` and row i of ``b`` are the positives.

    Always in at least float32, also inside an autocast region: the logits are cosines times a
    scale up to 100, and bfloat16's 8-bit mantissa would put an error of ~0.4 on a logit of 100
    — more than the gaps between neighbours the softmax is meant to resolve."""
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    with torch.autocast(a.device.type, enabled=False):
        logits = logit_scale.to(dtype).exp() * (l2_normalize(a.to(dtype)) @ l2_normalize(b.to(dtype)).T)
        labels = torch.arange(len(a), device=a.device)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def _batches(n: int, size: int, order: torch.Tensor | None = None) -> list[torch.Tensor]:
    """``n // size`` (≥ 1) batches of near-equal size ≥ min(size, n): InfoNCE never sees a
    batch of one row (an empty contrast) and every row is used every epoch."""
    idx = order if order is not None else torch.arange(n)
    return list(idx.tensor_split(max(1, n // size)))


@register
class MLPAligner(DirectAligner):
    """Projector MLP with a residual linear path, trained with InfoNCE and/or MSE (+ STRUCTURE)."""

    method = "mlp"
    PRE = {"standardize": True}
    PARAMS = {"hidden": 1024, "layers": 2, "dropout": 0.1, "loss": "both", "epochs": 100, "batch_size": 256,
              "lr": 1e-3, "weight_decay": 0.01, "val_frac": 0.1, "patience": 10, "structure": 0.0,
              "structure_levels": 1, "seed": 0}
    TENSORS = tuple(_SHAPES)
    #: mixed-precision policy of the forward pass (:func:`amp_dtype`); a runtime setting like
    #: ``device``, not a model option, so not in the artifact (``fit_aligner(precision=…)``,
    #: ``fit mlp --precision``)
    precision = "auto"
    underdetermined_solution = "the ridge start, weight decay and early stopping are all that regularise it"

    def __init__(self, *, hidden=1024, layers=2, dropout=0.1, loss="both", epochs=100, batch_size=256, lr=1e-3,
                 weight_decay=0.01, val_frac=0.1, patience=10, structure=0.0, structure_levels=1, seed=0,
                 l2=None, center=None, standardize=None, device="auto", dtype="float32"):
        self.hidden = hidden
        self.layers = layers
        self.dropout = dropout
        self.loss = loss
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_frac = val_frac
        self.patience = patience
        self.structure = structure
        self.structure_levels = structure_levels
        self.seed = seed
        super().__init__(l2=l2, center=center, standardize=standardize, device=device, dtype=dtype)

    # ------------------------------------------------------------------ options
    def _check_params(self, p):
        if p["loss"] not in LOSSES:
            raise InputError(f"{opt('loss', p['loss'])}: expected one of {', '.join(LOSSES)}")
        ints = {"hidden": 1, "layers": 2, "epochs": 1, "batch_size": 2, "patience": 1, "structure_levels": 1, "seed": 0}
        for name, lo in ints.items():
            v = p[name]
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer, float)) or v != int(v) or v < lo:
                raise InputError(f"{opt(name, v)}: must be an integer ≥ {lo}")
            p[name] = int(v)
        # (name, lowest, highest, is the upper bound excluded, what it must be)
        floats = (("lr", 0.0, math.inf, "a number > 0"), ("weight_decay", 0.0, math.inf, "a number ≥ 0"),
                  ("dropout", 0.0, 1.0, "in [0, 1)"), ("val_frac", 0.0, 1.0, "in [0, 1)"),
                  ("structure", 0.0, math.inf, "a number ≥ 0 (the regulariser's weight λ)"))
        for name, lo, hi, need in floats:
            v = p[name]
            try:
                x = float(v)
                ok = not isinstance(v, (bool, np.bool_, str)) and math.isfinite(x) and lo <= x < hi
                ok = ok and (x > 0 if name == "lr" else True)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise InputError(f"{opt(name, v)}: must be {need}")
            p[name] = x
        return p

    @classmethod
    def _artifact_shapes(cls, ds, dt, dc, params):
        return {name: f(ds, dt, int(params["hidden"]), int(params["layers"])) for name, f in _SHAPES.items()}

    def _map_source(self, x, fitted):
        return fitted.pre_y.invert(forward(fitted, fitted.pre_x.apply(x)))

    # ------------------------------------------------------------------ fitting
    def _fit(self, X, Y, backend):
        p = self.params_
        for emb in (X, Y):
            validate(emb)  # training holds every pair in memory: name a NaN/Inf row up front
        n = X.n
        split = torch.Generator().manual_seed(p["seed"])
        order = torch.randperm(n, generator=split)
        n_val = int(round(p["val_frac"] * n)) if p["val_frac"] > 0 else 0
        if (p["val_frac"] > 0 and n_val < 2) or n - n_val < 2:
            raise InputError(f"mlp: {n} pairs are too few for {opt('val_frac', p['val_frac'])}: training and "
                             f"validation need ≥ 2 pairs each ({n - n_val} and {n_val}); give more pairs or "
                             f"`val_frac` 0 (no early stopping)")
        tr, va = np.sort(order[n_val:].numpy()), np.sort(order[:n_val].numpy())
        Xd, Yd = np.asarray(X.data), np.asarray(Y.data)
        stats = PairStats.stream(Xd[tr], Yd[tr], self.pre_x_, self.pre_y_, backend, NORMAL_EQUATIONS)  # fits the preprocessing
        if not stats.finite():
            raise InputError(f"mlp: the pair moments overflowed in {backend.dtype}; rescale the inputs or use `dtype` float64")
        rows = PairFeed(Xd, Yd, self.pre_x_.on(backend), self.pre_y_.on(backend), backend)
        params, alpha = self._init_params(stats, split, backend)
        # deterministic kernels: cheap on the CPU; on CUDA they need a cuBLAS workspace setting
        with deterministic_algorithms(backend.device.type == "cpu" or torch.are_deterministic_algorithms_enabled()):
            curve = self._train(params, rows, torch.as_tensor(tr), torch.as_tensor(va), split, backend)
        seconds = curve.pop("seconds")
        best = curve.pop("best_params")
        for name in _SHAPES:  # the fitted state: float64 numpy, the artifact's form
            setattr(self, name, best[name].to(torch.float64).cpu().numpy())
        h, L = p["hidden"], p["layers"]
        self.fit_stats_ = {
            "architecture": f"{X.dim} → [{' → '.join([str(h)] * (L - 1))}] → {Y.dim} (GELU, dropout {p['dropout']:g}) "
                            f"+ linear {X.dim} → {Y.dim}",
            "n_parameters": int(sum(int(np.prod(f(X.dim, Y.dim, h, L))) for f in _SHAPES.values())),
            "n_train": len(tr), "n_val": len(va), "linear_start_alpha": alpha, "seconds": seconds,
            "pairs_per_second": len(tr) * curve["epochs_run"] / max(seconds, 1e-9), **curve,
        }
        self.n_anchors_ = n

    def _init_params(self, stats: PairStats, gen: torch.Generator, backend: Backend):
        """Float tensors on the device: hidden layers uniform(±1/√fan_in) as torch.nn.Linear,
        output layer 0, linear path = ridge (GCV) on the training split."""
        p = self.params_
        ds, dt = stats.Sxy.shape
        shapes = self._artifact_shapes(ds, dt, dt, p)
        out = {}
        for name, shape in shapes.items():
            fan_in = shape[-2] if name.endswith("W_") else (ds if name == "in_b_" else p["hidden"])
            bound = 1.0 / math.sqrt(fan_in)
            out[name] = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        grid = ALPHA_GRID * max(float(torch.trace(stats.Sxx)) / ds, 1e-300)
        alpha = float(grid[int(torch.argmin(gcv_scores(stats, grid, intercept=self.pre_x_.center)))])
        W, _ = psd_solve(stats.Sxx, stats.Sxy, alpha=alpha, rtol=stats.rtol)
        out["skip_W_"] = W.cpu()
        out["skip_b_"] = torch.zeros(dt, dtype=torch.float64)  # centred sides: the intercept is 0
        out["out_W_"] = torch.zeros(shapes["out_W_"], dtype=torch.float64)
        out["out_b_"] = torch.zeros(dt, dtype=torch.float64)
        return {k: v.to(device=backend.device, dtype=backend.dtype).requires_grad_(True) for k, v in out.items()}, alpha

    def _mapped_blocks(self, X, side, backend, block_rows):
        self._check_fitted()  # before reading the fitted widths below
        if block_rows is None and side == "source":  # the hidden activations share the byte budget
            b = (backend or Backend.make(self.device)).float64()
            width = self.dim_source_ + self.dim_common_ + self.params_["hidden"] * (self.params_["layers"] - 1)
            block_rows = b.block_rows(width, copies=2)
        return super()._mapped_blocks(X, side, backend, block_rows)

    def _train(self, params, rows: PairFeed, tr, va, split, backend) -> dict:
        p = self.params_
        dev = backend.device
        scale = torch.tensor(LOGIT_SCALE_INIT, dtype=backend.dtype, device=dev, requires_grad=True)
        decay = [v for k, v in params.items() if k.endswith("W_")]
        rest = [v for k, v in params.items() if not k.endswith("W_")] + [scale]
        optim = torch.optim.AdamW([{"params": decay, "weight_decay": p["weight_decay"]},
                                   {"params": rest, "weight_decay": 0.0}], lr=p["lr"])
        bs = min(p["batch_size"], len(tr))
        per_epoch = max(1, len(tr) // bs)
        total = p["epochs"] * per_epoch
        warm = max(1, int(WARMUP_FRAC * total))
        ramp = lambda t: min(1.0, (t + 1) / warm)  # noqa: E731
        cosine = lambda t: ramp(t) if t < warm else 0.5 * (1 + math.cos(math.pi * (t - warm) / max(1, total - warm)))  # noqa: E731
        sched = torch.optim.lr_scheduler.LambdaLR(optim, cosine)
        drop_gen = torch.Generator(device=dev).manual_seed(p["seed"] + 1)
        ns = SimpleNamespace(**params)
        px, py = rows.px, rows.py
        amp = amp_dtype(dev, backend.dtype, self.precision)
        # float16's range needs loss scaling (gradients under 6e-8 flush to 0); bfloat16's does not
        scaler = torch.amp.GradScaler(dev.type, enabled=amp == torch.float16)

        def losses(idx, train: bool):
            x, y, yout = rows.batch(idx)
            # only the projector's GEMMs run in the low precision; everything after is float32:
            # the MSE's squared differences, InfoNCE's logits (cosine × up to 100) and its learnable
            # temperature, and STRUCTURE's softmax(·/0.07) are sums and exponentials whose error
            # would swamp the differences the losses measure (bf16 keeps ~3 significant digits)
            with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
                z = forward(ns, x, dropout=p["dropout"] if train else 0.0, gen=drop_gen)
            z = z.to(backend.dtype)
            loss = torch.zeros((), dtype=backend.dtype, device=dev)
            if p["loss"] in ("mse", "both"):
                loss = loss + ((z - y) ** 2).mean()
            if p["loss"] in ("infonce", "both"):
                loss = loss + info_nce(py.invert(z), yout, scale)
            return x, z, loss

        def val_loss() -> float:
            if not len(va):
                return float("nan")
            with torch.no_grad():
                parts = [(len(b), float(losses(va[b], False)[2])) for b in _batches(len(va), bs)]
            return sum(k * v for k, v in parts) / len(va)

        snapshot = lambda: {k: v.detach().clone() for k, v in params.items()}  # noqa: E731
        best_val, best, best_epoch, best_scale = val_loss(), snapshot(), 0, float(scale.detach().exp())
        val_start = best_val
        train_curve, val_curve, struct_curve, bad, step, epoch, skipped = [], [], [], 0, 0, 0, 0
        # the clock starts here: the optimiser's first construction imports torch._dynamo (seconds,
        # once per process), which is start-up, not training throughput
        t0 = time.perf_counter()
        bar = progress(range(1, p["epochs"] + 1), desc="fit mlp", unit="epoch")
        for epoch in bar:
            order = tr[torch.randperm(len(tr), generator=split)]
            # running sums stay on the device: a float() per step would wait for the GPU every batch
            tot = torch.zeros((), dtype=torch.float64, device=dev)
            stot = torch.zeros_like(tot)
            for b in _batches(len(order), bs, order):
                x, z, loss = losses(b, True)
                if p["structure"] > 0:
                    # the source space's own rows against the mapped rows in the target's coordinates
                    reg = structure_loss(px.invert(x), py.invert(z), p["structure_levels"])
                    loss = loss + p["structure"] * min(1.0, (step + 1) / warm) * reg
                    stot += reg.detach().double() * len(b)
                optim.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()  # the identity when the scaler is off
                before = scaler.get_scale() if scaler.is_enabled() else 0.0
                scaler.step(optim)  # skips the step (and lowers the scale) when float16 gradients overflowed
                scaler.update()
                if scaler.is_enabled() and scaler.get_scale() < before:
                    skipped += 1  # the schedule advances with the steps taken, not the steps tried
                else:
                    sched.step()
                step += 1
                with torch.no_grad():
                    scale.clamp_(max=LOGIT_SCALE_MAX)
                tot += loss.detach().double() * len(b)
            train_curve.append(float(tot) / len(tr))
            if p["structure"] > 0:
                struct_curve.append(float(stot) / len(tr))
            v = val_loss()
            val_curve.append(v)
            if not math.isfinite(train_curve[-1]) or (len(va) and not math.isfinite(v)):
                raise InputError(f"mlp: training diverged (loss {train_curve[-1]:.3g} at epoch {epoch}); "
                                 f"lower {opt('lr', p['lr'])} or rescale the inputs")
            bar.set_postfix(train=f"{train_curve[-1]:.4f}", val=f"{v:.4f}", refresh=False)
            if not len(va) or v < best_val:
                best_val, best, best_epoch, best_scale, bad = v, snapshot(), epoch, float(scale.detach().exp()), 0
            else:
                bad += 1
                if bad >= p["patience"]:
                    break
        bar.close()
        out = {"seconds": time.perf_counter() - t0, "precision": str(backend.dtype).removeprefix("torch.") if amp is None else f"{amp}".removeprefix("torch.") + " autocast"
                            + (f" + loss scaling ({skipped} overflowed steps skipped)" if scaler.is_enabled() else ""),
               "resident": rows.resident, "epochs_run": epoch, "best_epoch": best_epoch, "stopped_early": epoch < p["epochs"],
               "val_loss_start": None if not len(va) else val_start,
               "best_val_loss": None if not len(va) else best_val, "logit_scale": best_scale,
               "train_loss": train_curve, "val_loss": val_curve if len(va) else None, "best_params": best}
        if p["structure"] > 0:
            out["structure_loss"] = struct_curve
        return out

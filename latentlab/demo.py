"""The built-in example: a tiny two-tower contrastive model trained on real handwritten digits.

scikit-learn ships 1,797 real 8×8 scans of handwritten digits (UCI "Optical Recognition of
Handwritten Digits"). Each scan gets a caption written from what is in it — the digit's
name and how it was drawn (ink amount, slant, width, measured on the pixels) — e.g.
"a bold seven leaning right, drawn narrow and tall, sitting high". An image tower (MLP on pixels) and a text tower
(mean of token embeddings + MLP) are trained for a few seconds with the symmetric InfoNCE
loss of CLIP (Radford et al., ICML 2021) on 1,200 pairs; the held-out pairs are embedded
with the frozen towers. Like every CLIP-style model, it shows a genuine modality gap
(Liang et al., NeurIPS 2022) — and so does the same model at random initialisation.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEMPLATES = [
    "a {ink} {word} {slant} , drawn {width} and {height} , {place}",
    "the digit {word} written {ink} , {slant} , {height} , {place}",
    "a {width} {height} handwritten {word} {slant} {place}",
    "{ink} ink : the number {word} , {width} , {height} , {place}",
]


@dataclass(frozen=True)
class DigitsExample:
    """Row-paired image and caption embeddings of held-out digits, with labels and captions."""

    images: np.ndarray
    texts: np.ndarray
    labels: np.ndarray
    captions: list[str]
    trained: bool
    train_loss: float | None

    def save(self, folder: str | Path) -> dict[str, Path]:
        """Write ``image.npy``, ``text.npy``, ``labels.npy`` and ``captions.txt`` atomically."""
        from .io import atomic_output, save_array

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"image": folder / "image.npy", "text": folder / "text.npy",
                 "labels": folder / "labels.npy", "captions": folder / "captions.txt"}
        save_array(paths["image"], self.images)
        save_array(paths["text"], self.texts)
        save_array(paths["labels"], self.labels)
        with atomic_output(paths["captions"]) as tmp:
            tmp.write_text("\n".join(self.captions) + "\n")
        return paths


def _describe(images: np.ndarray) -> tuple[list[str], ...]:
    """Ink, slant, width, height and placement words from pixel statistics (data tertiles)."""
    grid_y, grid_x = np.mgrid[0:8, 0:8]
    ink = images.reshape(len(images), -1).sum(1)
    mass = images.reshape(len(images), 8, 8) + 1e-9
    total = mass.sum((1, 2))
    cx, cy = (mass * grid_x).sum((1, 2)) / total, (mass * grid_y).sum((1, 2)) / total
    dx, dy = grid_x[None] - cx[:, None, None], grid_y[None] - cy[:, None, None]
    # a stroke leaning right has ink upper-right and lower-left: negative x·y co-moment
    slant = -(mass * dx * dy).sum((1, 2)) / total
    width = np.sqrt((mass * dx**2).sum((1, 2)) / total)
    height = np.sqrt((mass * dy**2).sum((1, 2)) / total)

    def tertile(values, names):
        lo, hi = np.quantile(values, [1 / 3, 2 / 3])
        return [names[0] if v < lo else names[2] if v > hi else names[1] for v in values]

    return (tertile(ink, ["faint", "plain", "bold"]),
            tertile(slant, ["leaning left", "upright", "leaning right"]),
            tertile(width, ["narrow", "regular", "wide"]),
            tertile(height, ["short", "medium", "tall"]),
            tertile(cy, ["sitting high", "centred", "sitting low"]))


def make_captions(images: np.ndarray, labels: np.ndarray, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    ink, slant, width, height, place = _describe(images)
    return [TEMPLATES[rng.integers(len(TEMPLATES))].format(word=WORDS[y], ink=i, slant=s, width=w, height=h, place=p)
            for y, i, s, w, h, p in zip(labels, ink, slant, width, height, place)]


class _Tower(nn.Module):
    """MLP on pixels, or on the mean of token embeddings (token id 0 is padding)."""

    def __init__(self, d_in: int, d_out: int, vocab: int | None = None):
        super().__init__()
        self.embed = nn.Embedding(vocab + 1, d_in, padding_idx=0) if vocab else None
        self.mlp = nn.Sequential(nn.Linear(d_in, 128), nn.GELU(), nn.Linear(128, d_out))

    def forward(self, x):
        if self.embed is not None:
            mask = (x > 0).unsqueeze(-1).float()
            x = (self.embed(x) * mask).sum(1) / mask.sum(1).clamp_min(1)
        return self.mlp(x)


def _tokenize(captions: list[str], vocab: dict[str, int]) -> torch.Tensor:
    """Padded (n, max_len) token ids, 0 = padding."""
    tokens = [[vocab[t] + 1 for t in cap.split()] for cap in captions]
    out = torch.zeros(len(tokens), max(map(len, tokens)), dtype=torch.long)
    for i, ids in enumerate(tokens):
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def make_digits_example(*, trained: bool = True, dim: int = 64, steps: int = 400, n_train: int = 1200,
                        seed: int = 0, init_seed: int | None = None) -> DigitsExample:
    """Train (or only initialise) the two towers and embed the held-out digits and captions.

    Parameters
    ----------
    trained : ``False`` embeds with the randomly initialised towers (Liang et al., Fig. 1c).
    dim : embedding width; ``steps``: Adam steps at batch size 256; ``n_train``: training pairs.
    seed : captions and the train/test split; ``init_seed`` (default ``seed``): the towers'
        initialisation and batch order — two values give two models of the same held-out items.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.data / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    captions = make_captions(digits.data, labels, seed=seed)
    vocab = {t: i for i, t in enumerate(sorted({t for c in captions for t in c.split()}))}
    order = np.random.default_rng(seed).permutation(len(images))
    train, test = order[:n_train], order[n_train:]

    init_seed = seed if init_seed is None else init_seed
    gen = torch.Generator().manual_seed(init_seed)
    with torch.random.fork_rng():
        torch.manual_seed(init_seed)
        img_tower, txt_tower = _Tower(64, dim), _Tower(64, dim, vocab=len(vocab))
    log_scale = nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))
    loss_value = None
    x_all, t_all = torch.from_numpy(images), _tokenize(captions, vocab)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the towers are tiny: threading costs more than it saves
    try:
        if trained:
            loss_value = _train(img_tower, txt_tower, log_scale, x_all, t_all, train, steps, gen)
        with torch.inference_mode():
            zi = img_tower(x_all[test]).numpy()
            zt = txt_tower(t_all[test]).numpy()
    finally:
        torch.set_num_threads(threads)
    return DigitsExample(images=zi.astype(np.float32), texts=zt.astype(np.float32), labels=labels[test],
                         captions=[captions[i] for i in test], trained=trained, train_loss=loss_value)


def _train(img_tower, txt_tower, log_scale, x_all, t_all, train, steps: int, gen) -> float:
    """Symmetric InfoNCE (CLIP) with a learnable temperature; returns the last batch loss."""
    params = [*img_tower.parameters(), *txt_tower.parameters(), log_scale]
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.01)
    loss = torch.zeros(())
    for _ in range(steps):
        batch = torch.from_numpy(train)[torch.randperm(len(train), generator=gen)[:256]]
        zi = nn.functional.normalize(img_tower(x_all[batch]), dim=1)
        zt = nn.functional.normalize(txt_tower(t_all[batch]), dim=1)
        logits = log_scale.exp().clamp(max=100) * zi @ zt.T
        target = torch.arange(len(batch))
        loss = (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())

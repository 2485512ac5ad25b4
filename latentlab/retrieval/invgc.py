"""InvGC and InvGC with LocalAdj: separate gallery embeddings by inverse graph convolution.

Only the gallery is changed. Rows of the gallery G and of a bank T (training gallery or
training query embeddings) are L2-normalised first (the scores are cosines), W = G·Tᵀ, and,
as in the authors' code (``InvGC_func`` / ``InvGC_LocalADJ_func``):

* InvGC (full adjacency):  G' = l2n(G − (r/|T|)·(W − mean(W))·T), mean(W) the scalar mean
  of all entries of W over the whole gallery;
* LocalAdj:               G' = l2n(G − (r/k)·W_k·T), W_k = W with all but each row's top-k
  entries zeroed, k = int(pool_rate·|T|) in float64 (at least 1).

With both banks the two corrected galleries are averaged and renormalised,
l2n(½G'_gallery + ½G'_query) (rates ``r_gallery``, ``r_query``); with one bank, that one.

Computation, never n × |T|: the full variant uses (W − m·1)·T = G·(TᵀT) − m·1·(1ᵀT), so it
needs only the d × d matrix TᵀT and the column sums of T (float64), O((n + |T|)·d²) instead
of O(n·|T|·d). LocalAdj takes each gallery block's top-k bank rows with the chunked
:func:`latentlab.knn.topk_cosine` and sums the k weighted bank rows with one
``embedding_bag`` call (the reference fills a dense n × |T| mask in a Python loop).

References
----------
Jian & Wang, "InvGC: Robust Cross-Modal Retrieval by Inverse Graph Convolution", Findings
of EMNLP 2023 (code github.com/yimuwangcs/Better_Cross_Modal_Retrieval, InvGC/InvGC.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..blas import matmul
from ..compute import Backend, as_backend, l2_normalize
from ..errors import InputError
from ..io import as_embeddings, require_same_dim
from ..knn import topk_cosine

DEFAULT_POOL_RATE = 0.01
DEFAULT_R = 0.1
#: the Python argument of each bank, for messages (the CLI shows its flag)
BANK_ARGS = {"gallery": "bank_gallery", "query": "bank_queries"}


def pool_size(pool_rate: float, n_bank: int) -> int:
    """k = int(pool_rate · |T|) computed in float64 (0.01 · 1200 = 12), at least 1."""
    check_pool_rate(pool_rate)
    if isinstance(pool_rate, (np.float32, np.float16)):
        # a float32 0.01 is 0.0099999998 in float64 (→ 11 of 1200); recover the decimal typed
        pool_rate = float(str(pool_rate))
    return max(1, int(np.float64(pool_rate) * np.float64(n_bank)))


def check_pool_rate(pool_rate) -> None:
    rate = float(pool_rate)
    if not np.isfinite(rate) or not 0.0 < rate <= 1.0:
        raise InputError(f"pool_rate {pool_rate}: must be in (0, 1]")


@dataclass
class _Bank:
    """What one bank contributes: full → (TᵀT, Σt, mean t); local → normalised rows and k."""

    data: object
    n: int
    local: bool
    gram: torch.Tensor | None = None
    colsum: torch.Tensor | None = None
    rows: torch.Tensor | None = None
    k: int = 0


def _prepare_bank(data, local: bool, pool_rate: float, backend: Backend, name: str = "bank") -> _Bank:
    n, dim = len(data), int(data.shape[1])
    bank = _Bank(data=data, n=n, local=local)
    if local:
        from ..analyze.prep import require_in_memory
        from ..io import Embeddings

        bank.k = pool_size(pool_rate, n)
        require_in_memory([Embeddings(data, name)], backend, f"LocalAdj (`fix` localadj) on `{name}`",
                          hint="use `fix` invgc (the full graph streams), or a random sample of the bank")
        # embedding_bag needs the normalised bank in memory (n × d, the size of the input)
        bank.rows = l2_normalize(backend.tensor(np.asarray(data[:])))
        return bank
    # raw (uncentred) products: the formula needs TᵀT and Σt themselves, so no shift trick
    gram = torch.zeros(dim, dim, dtype=torch.float64, device=backend.device)
    colsum = torch.zeros(dim, dtype=torch.float64, device=backend.device)
    for lo in range(0, n, backend.block_rows(dim, copies=2)):
        t = l2_normalize(backend.tensor(np.asarray(data[lo : lo + backend.block_rows(dim, copies=2)]))).to(torch.float64)
        gram += matmul(t.T, t)
        colsum += t.sum(0)
    bank.gram, bank.colsum = gram, colsum
    return bank


def _gallery_mean(gallery, backend: Backend) -> torch.Tensor:
    dim = int(gallery.shape[1])
    total = torch.zeros(dim, dtype=torch.float64, device=backend.device)
    rows = backend.block_rows(dim, copies=2)
    for lo in range(0, len(gallery), rows):
        total += l2_normalize(backend.tensor(np.asarray(gallery[lo : lo + rows]))).to(torch.float64).sum(0)
    return total / len(gallery)


def _message(g: torch.Tensor, raw: np.ndarray, bank: _Bank, w_mean: float | None, backend: Backend) -> torch.Tensor:
    """The term r multiplies, for a block of gallery rows (``raw``; ``g`` = its normalised
    tensor): (1/|T|)(W − m)T, or (1/k)W_kT for LocalAdj."""
    if not bank.local:
        gd = g.to(torch.float64)
        return ((matmul(gd, bank.gram) - w_mean * bank.colsum) / bank.n).to(g.dtype)
    # topk_cosine reads numpy-like rows (works on any device); it normalises both sides
    values, index = topk_cosine(raw, bank.data, bank.k, backend=backend)
    v = torch.as_tensor(values, device=g.device).to(bank.rows.dtype)
    i = torch.as_tensor(index, device=g.device)
    summed = torch.nn.functional.embedding_bag(i, bank.rows, per_sample_weights=v, mode="sum")
    return (summed / bank.k).to(g.dtype)


class InvGCPlan:
    """Prepared banks for one gallery, so that several rates reuse the expensive part."""

    def __init__(self, gallery, banks: dict[str, object], *, local: bool, pool_rate: float, backend: Backend):
        self.gallery, self.backend, self.local = gallery, backend, local
        self.banks = {name: _prepare_bank(b, local, pool_rate, backend, BANK_ARGS.get(name, name))
                      for name, b in banks.items() if b is not None}
        if not self.banks:
            raise InputError("InvGC needs at least one bank: bank_gallery and/or bank_queries")
        self.w_mean: dict[str, float] = {}
        if not local:  # mean(W) = mean_i ĝ_i · mean_j t̂_j, the scalar mean of all of W
            g_mean = _gallery_mean(gallery, backend)
            self.w_mean = {name: float(g_mean @ b.colsum / b.n) for name, b in self.banks.items()}
        self.rows = max(64, backend.block_rows(int(gallery.shape[1]), copies=8))
        self._messages: dict[str, torch.Tensor] | None = None

    def _fits(self, copies: int = 1) -> bool:
        """``copies`` gallery-sized float matrices fit the memory budget (else they are not held)."""
        from ..analyze.prep import IN_MEMORY_BYTES

        return copies * len(self.gallery) * int(self.gallery.shape[1]) * self.backend.itemsize <= IN_MEMORY_BYTES

    def cache_messages(self) -> None:
        """Keep the (n × d) messages of every bank: a rate sweep then costs one pass per rate.
        Above the memory budget nothing is kept and every rate recomputes them (streamed)."""
        if not self._fits(len(self.banks)):
            return
        out = {name: [] for name in self.banks}
        for lo in range(0, len(self.gallery), self.rows):
            raw = np.asarray(self.gallery[lo : lo + self.rows])
            g = l2_normalize(self.backend.tensor(raw))
            for name, bank in self.banks.items():
                out[name].append(_message(g, raw, bank, self.w_mean.get(name), self.backend))
        self._messages = {name: torch.cat(parts) for name, parts in out.items()}

    def corrected(self, raw: np.ndarray, rates: dict[str, float], where=None) -> torch.Tensor:
        """Corrected rows for the gallery rows ``raw`` (rows ``where`` of the gallery: a slice or
        indices, used to find cached messages). Each row depends only on itself and the banks."""
        g = l2_normalize(self.backend.tensor(raw))
        parts = []
        for name, bank in self.banks.items():
            msg = (self._messages[name][where] if self._messages is not None and where is not None
                   else _message(g, raw, bank, self.w_mean.get(name), self.backend))
            parts.append(l2_normalize(g - float(rates[name]) * msg))
        return parts[0] if len(parts) == 1 else l2_normalize(0.5 * parts[0] + 0.5 * parts[1])

    def apply(self, rates: dict[str, float]):
        """The corrected gallery for rates {'gallery': r_g, 'query': r_q} (float, backend dtype):
        an array when it fits the memory budget, else a :class:`CorrectedGallery` whose rows are
        computed as they are read (retrieval reads the gallery in chunks: nothing n × d is held)."""
        if not self._fits():
            return CorrectedGallery(self, rates)
        n, dim = len(self.gallery), int(self.gallery.shape[1])
        out = np.empty((n, dim), dtype=np.float64 if self.backend.dtype == torch.float64 else np.float32)
        for lo in range(0, n, self.rows):
            raw = np.asarray(self.gallery[lo : lo + self.rows])
            out[lo : lo + len(raw)] = self.corrected(raw, rates, slice(lo, lo + len(raw))).cpu().numpy()
        return out


class CorrectedGallery:
    """The InvGC-corrected gallery as a lazy row source (shape, dtype, row indexing, ``np.asarray``):
    rows are corrected when read, so a gallery larger than memory streams through retrieval."""

    ndim = 2
    lazy_rows = True

    def __init__(self, plan: InvGCPlan, rates: dict[str, float]):
        self.plan, self.rates = plan, dict(rates)
        self.shape = (len(plan.gallery), int(plan.gallery.shape[1]))
        self.dtype = np.dtype(np.float64 if plan.backend.dtype == torch.float64 else np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, slice) and index.indices(len(self))[2] == 1:
            start, stop, _ = index.indices(len(self))
            where = slice(start, max(start, stop))
        else:
            where = np.arange(len(self))[index]
        raw = np.asarray(self.plan.gallery[where])
        if raw.ndim == 1:
            return self.plan.corrected(raw[None], self.rates, where).cpu().numpy()[0]
        return self.plan.corrected(raw, self.rates, where).cpu().numpy()

    def __array__(self, dtype=None, copy=None):
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype, copy=False)


def invgc(gallery, *, bank_gallery=None, bank_queries=None, r_gallery: float = DEFAULT_R,
          r_query: float = DEFAULT_R, local_adj: bool = False, pool_rate: float = DEFAULT_POOL_RATE,
          device="auto", dtype="float32") -> np.ndarray:
    """The InvGC-corrected gallery (Jian & Wang 2023), L2-normalised rows, a new array.

    Parameters
    ----------
    gallery : the test gallery (path, array, tensor or Embeddings); never modified.
    bank_gallery, bank_queries : training gallery / training query embeddings (either or both).
    r_gallery, r_query : propagation rates for the two banks.
    local_adj : use LocalAdj (each gallery row's top-k bank neighbours) instead of the full graph.
    pool_rate : LocalAdj's k = int(pool_rate · |T|) (float64, at least 1); must be in (0, 1].

    Use the result in place of the gallery in any cosine / inner-product retrieval.
    """
    backend = as_backend(device, dtype)
    eg = as_embeddings(gallery, "gallery")
    banks = {}
    for name, b, what in (("gallery", bank_gallery, "bank_gallery"), ("query", bank_queries, "bank_queries")):
        if b is not None:
            eb = as_embeddings(b, what)
            require_same_dim(eb, eg, f"InvGC ({what} vs gallery)")
            banks[name] = eb.data
    from .sweep import check_param  # sweep imports this module

    check_pool_rate(pool_rate)
    r_gallery, r_query = check_param("r_gallery", r_gallery), check_param("r_query", r_query)
    plan = InvGCPlan(eg.data, banks, local=local_adj, pool_rate=pool_rate, backend=backend)
    return np.asarray(plan.apply({"gallery": r_gallery, "query": r_query}))

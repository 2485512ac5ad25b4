"""An interactive joint view of two embedding sets: one self-contained HTML fragment.

Both sets are projected together (exact PCA of the L2-normalised rows, or UMAP — the same
projection as the static figure, :func:`latentlab.plot.data.joint_projection`), with lines
joining true pairs as in Liang et al., "Mind the Gap" (NeurIPS 2022), Fig. 1. Hover shows a
row's label and text; a click lists its ``k`` nearest neighbours in the other set (cosine,
:func:`latentlab.knn.topk_cosine`). Points can be coloured by set, by label or by hubness:
the k-occurrence N_k of a row in the other set's k-NN lists (Radovanović, Nanopoulos &
Ivanović, JMLR 2010, :func:`latentlab.knn.k_occurrence`). Below the plot, the failed
retrievals (true partner not ranked first; ties count against the query,
:func:`latentlab.ranks.true_ranks`) and the worst hubs are listed with their text.

Everything is computed in Python and embedded as JSON; the page needs no server, network or
library (inline vanilla JS drawing SVG), and several views can live in one page (every id
and CSS rule is namespaced by the view's id). All user text reaches the page escaped: HTML
through :func:`html.escape`, the embedded JSON with ``<``, ``>`` and ``&`` as ``\\u003c`` …
(so neither ``</script>`` nor ``<!--`` can end the data block), and the script only ever sets
``textContent``.

    html = joint_view_html("img.npy", "txt.npy", text_b="captions.txt")
    write_joint_view("view.html", "img.npy", "txt.npy", text_b="captions.txt")
"""
from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import InputError

PROJECTIONS = ("pca", "umap")
COLORS = ("set", "label", "hubness")
MAX_TEXT = 300    # characters of a row's text kept in the page: bounds the file size
MAX_LISTED = 50   # rows per failure / hub table
_ID = re.compile(r"[a-z][a-z0-9-]{0,63}")


@dataclass
class JointView:
    """What the view shows: the embedded data, the lists under the plot and its notes."""

    view_id: str
    data: dict
    failures: list = field(default_factory=list)   # per query set: {"set", "query", "gallery", "count", "of", "rows"}
    hubs: list = field(default_factory=list)       # per set: {"set", "name", "skew", "hubs", "k", "rows"}
    notes: list = field(default_factory=list)

    def summary(self) -> dict:
        """Small JSON-able numbers (the CLI's ``--json``)."""
        sets = self.data["sets"]
        return {"projection": self.data["method"], "points_a": len(sets[0]["rows"]), "points_b": len(sets[1]["rows"]),
                "rows_a": self.data["n"][0], "rows_b": self.data["n"][1], "subsampled": self.data["subsampled"],
                "paired": self.data["paired"], "k": self.data["k"],
                "failed": {("a_to_b", "b_to_a")[f["set"]]: f["count"] for f in self.failures},
                "hubness": {"ab"[h["set"]]: {"skew": h["skew"], "hubs": h["hubs"]} for h in self.hubs},
                "notes": list(self.notes)}

    def html(self) -> str:
        """The ``<section>`` fragment with its own ``<style>`` and ``<script>``."""
        return _render(self)

    def page(self, title: str | None = None) -> str:
        """A standalone HTML page holding the fragment."""
        names = self.data["names"]
        title = title or f"{names[0]} and {names[1]}: joint view"
        return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{html.escape(title)}</title><style>body{{margin:1.2rem auto;max-width:76rem;padding:0 1rem;"
                "font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1b1b1b}"
                f"h1{{font-size:1.3rem;margin:.2rem 0 .6rem}}</style></head>\n<body><h1>{html.escape(title)}</h1>\n"
                f"{self.html()}\n</body></html>\n")


def read_view_texts(ea, eb, text_a=None, text_b=None, labels=None):
    """(texts of A, texts of B, labels) read and checked against the row counts of ``ea``/``eb``.

    Labels are one per row of A (shared by B when the sets are paired) or one per row of A then B.
    """
    from ..io.texts import read_texts

    ta = read_texts(text_a, n_rows=ea.n, arg="text_a", what=f"a ({ea.name})") if text_a is not None else None
    tb = read_texts(text_b, n_rows=eb.n, arg="text_b", what=f"b ({eb.name})") if text_b is not None else None
    lab = None
    if labels is not None:
        counts = (ea.n, ea.n + eb.n) if ea.n == eb.n else (ea.n + eb.n,)
        lab = read_texts(labels, n_rows=counts, arg="labels", what="a (one per row; or one per row of a, then b)")
    return ta, tb, lab


def joint_view(a, b, *, text_a=None, text_b=None, labels=None, names=("A", "B"), projection: str = "pca",
               color: str = "set", k: int = 5, max_points: int = 2000, seed: int = 0, device="auto",
               dtype="float32", view_id: str | None = None, projected: dict | None = None) -> JointView:
    """Compute the interactive joint view of ``a`` and ``b`` (paths, arrays or embeddings).

    Parameters
    ----------
    text_a, text_b : one string per row of A / B: a list, or a file (``.txt`` one line per
        row, ``.csv``/``.tsv``/``.parquet`` with ``FILE::COLUMN``, ``.json`` list), see
        :func:`latentlab.io.texts.read_texts`.
    labels : one label per row: n_A values (shared by both sets when they are paired) or
        n_A + n_B values (A's rows, then B's).
    names : display names of the two sets.
    projection : ``pca`` (exact, instant) or ``umap`` (cosine; needs ``latentlab[viz]``).
    color : initial colouring — ``set``, ``label`` or ``hubness`` (switchable in the page).
    k : neighbours listed on click, and the k of the k-occurrence.
    max_points : at most this many points in total; above it each set keeps a seeded sample
        of at most half (the same rows of both when paired) and the page says so.
        Neighbours, ranks and hubness are computed among the shown rows.
    view_id : namespace of the fragment's ids (default: derived from the data).
    projected : a :func:`latentlab.plot.data.joint_projection` of these sets to reuse (the
        report passes its static figure's), so both show the same coordinates; its rows are
        subsampled to ``max_points`` as above. ``projection`` must name its method.
    """
    from ..compute import as_backend
    from ..io import as_embeddings
    from ..knn import clamp_k, hubness, k_occurrence, topk_cosine
    from ..plot.data import joint_projection
    from ..ranks import true_ranks

    _check_args(projection, color, k, max_points, names, view_id)
    ea, eb = as_embeddings(a, "a"), as_embeddings(b, "b")
    if ea.dim != eb.dim:
        raise InputError(f"b: the joint view needs equal widths (cosine across sets): {ea.name} has {ea.dim} "
                         f"columns, {eb.name} has {eb.dim}")
    paired = ea.n == eb.n
    ta, tb, lab = read_view_texts(ea, eb, text_a, text_b, labels)
    lab_a = lab_b = None
    if lab is not None:
        lab_a, lab_b = (lab, lab) if len(lab) == ea.n else (lab[: ea.n], lab[ea.n:])
    if color == "label" and labels is None:
        raise InputError("color 'label' needs labels (one label per row)")

    if projected is None:
        proj = joint_projection(ea.data, eb.data, method=projection, max_points=max_points, seed=seed, paired=paired)
    else:
        proj = _fewer_points(projected, ea.n, eb.n, projection, max_points, seed)
    idx = (np.asarray(proj["index_a"]), np.asarray(proj["index_b"]))
    xa, xb = ea.rows(idx[0]), eb.rows(idx[1])
    backend = as_backend(device, dtype)
    kk = clamp_k(k, min(len(xa), len(xb)), "k")
    sim_ab, nn_ab = topk_cosine(xa, xb, kk, backend=backend)
    sim_ba, nn_ba = topk_cosine(xb, xa, kk, backend=backend)
    occ = (k_occurrence(nn_ba, len(xa)), k_occurrence(nn_ab, len(xb)))   # N_k of A rows, of B rows
    ranks = (true_ranks(xa, xb, backend=backend), true_ranks(xb, xa, backend=backend)) if paired else (None, None)

    name_a, name_b = (str(n) for n in names)
    xy = _unit_box(np.concatenate([proj["a"], proj["b"]]))
    texts, labs = (ta, tb), (lab_a, lab_b)
    categories = sorted({str(v) for v in (lab_a or []) + (lab_b or [])})
    cat_index = {c: i for i, c in enumerate(categories)}
    sets = []
    for s, (rows, nn, sim, xy_s) in enumerate(((idx[0], nn_ab, sim_ab, xy[: len(xa)]),
                                               (idx[1], nn_ba, sim_ba, xy[len(xa):]))):
        sets.append({
            "rows": rows.tolist(), "x": xy_s[:, 0].tolist(), "y": xy_s[:, 1].tolist(),
            "text": [_clip(texts[s][r]) for r in rows] if texts[s] is not None else None,
            "label": [cat_index[str(labs[s][r])] for r in rows] if labs[s] is not None else None,
            "occ": occ[s].tolist(), "nn": nn.tolist(), "sim": np.round(sim.astype(np.float64), 4).tolist(),
            "rank": ranks[s].tolist() if ranks[s] is not None else None,
        })
    notes = []
    if proj["subsampled"]:
        notes.append(f"showing {len(xa)} of {ea.n} rows of {name_a} and {len(xb)} of {eb.n} rows of {name_b} "
                     f"(seeded sample, at most {max_points} points); neighbours, ranks and hubness are computed "
                     f"among the shown rows")
    if not paired:
        notes.append(f"unpaired sets ({ea.n} and {eb.n} rows): no pair lines and no failed-retrieval lists")
    data = {"names": [name_a, name_b], "method": projection.upper(), "paired": paired, "k": kk, "color": color,
            "n": [ea.n, eb.n], "subsampled": bool(proj["subsampled"]), "categories": categories, "sets": sets}
    vid = view_id or "llv-" + hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]
    view = JointView(view_id=vid, data=data, notes=notes)
    for s, (name, other) in enumerate(((name_a, name_b), (name_b, name_a))):
        h = hubness(sets[1 - s]["nn"], len(sets[s]["rows"]))
        order = np.argsort(-occ[s], kind="stable")[:MAX_LISTED]
        view.hubs.append({**h, "set": s, "name": name, "rows": [{"pos": int(p), "row": int(idx[s][p]), "occ": int(occ[s][p]),
                                          "text": _row_text(sets[s], p)} for p in order if occ[s][p] > 0]})
        if ranks[s] is not None:
            bad = np.flatnonzero(ranks[s] > 0)
            bad = bad[np.argsort(-ranks[s][bad], kind="stable")]
            view.failures.append({
                "set": s, "query": name, "gallery": other, "count": int(len(bad)), "of": int(len(ranks[s])),
                "rows": [{"pos": int(p), "row": int(idx[s][p]), "rank": int(ranks[s][p]) + 1,
                          "text": _row_text(sets[s], p), "partner": _row_text(sets[1 - s], p),
                          "top": _row_text(sets[1 - s], int(sets[s]["nn"][p][0])),
                          "top_row": int(idx[1 - s][sets[s]["nn"][p][0]])} for p in bad[:MAX_LISTED]]})
    return view


def joint_view_html(a, b, *, text_a=None, text_b=None, labels=None, names=("A", "B"), projection: str = "pca",
                    color: str = "set", k: int = 5, max_points: int = 2000, seed: int = 0, device="auto",
                    dtype="float32", view_id: str | None = None) -> str:
    """The interactive joint view as a ``<section>`` fragment (see :func:`joint_view`)."""
    return joint_view(a, b, text_a=text_a, text_b=text_b, labels=labels, names=names, projection=projection,
                      color=color, k=k, max_points=max_points, seed=seed, device=device, dtype=dtype,
                      view_id=view_id).html()


def write_joint_view(path, a, b, *, title: str | None = None, **kwargs) -> JointView:
    """Write the view as a standalone HTML page (atomically); returns the :class:`JointView`.

    ``path`` must end in ``.html`` and may not be one of the inputs (``a``, ``b``, and the
    text/label files); ``kwargs`` are those of :func:`joint_view`.
    """
    from ..io import atomic_output
    from ..io.outputs import check_outputs, require_suffix

    require_suffix("path", path, (".html", ".htm"), "the joint view")
    inputs = {"a": a, "b": b}
    for key in ("text_a", "text_b", "labels"):  # only file specs are inputs; a list is not a path
        if isinstance(kwargs.get(key), (str, Path)):
            inputs[key] = kwargs[key]
    check_outputs({"path": path}, {k: v for k, v in inputs.items() if isinstance(v, (str, Path))})
    view = joint_view(a, b, **kwargs)
    with atomic_output(path) as tmp:
        tmp.write_text(view.page(title), encoding="utf-8")
    return view


# --------------------------------------------------------------------------- helpers
def _fewer_points(proj: dict, n_a: int, n_b: int, method: str, max_points: int, seed: int) -> dict:
    """``proj`` (a joint projection of sets of n_a and n_b rows) cut to at most ``max_points``:
    a seeded sample of its rows, the same positions of both sets when paired."""
    from ..plot.data import paired_sample

    if proj["method"] != method or len(proj["a"]) > n_a or len(proj["b"]) > n_b:
        raise InputError(f"projected: a {proj['method']} projection of {len(proj['a'])} and {len(proj['b'])} rows "
                         f"does not fit `projection` {method!r} and sets of {n_a} and {n_b} rows")
    keep_a, keep_b = paired_sample(len(proj["a"]), len(proj["b"]), max_points, seed, proj["paired"])
    ia, ib = np.asarray(proj["index_a"])[keep_a], np.asarray(proj["index_b"])[keep_b]
    return {"a": np.asarray(proj["a"])[keep_a], "b": np.asarray(proj["b"])[keep_b], "index_a": ia, "index_b": ib,
            "paired": proj["paired"], "method": method, "subsampled": len(ia) < n_a or len(ib) < n_b}


def _check_args(projection, color, k, max_points, names, view_id) -> None:
    if projection not in PROJECTIONS:
        raise InputError(f"projection {projection!r}: expected one of {', '.join(PROJECTIONS)}")
    if color not in COLORS:
        raise InputError(f"color {color!r}: expected one of {', '.join(COLORS)}")
    for arg, value, low in (("k", k, 1), ("max_points", max_points, 4)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{arg} {value!r}: must be a whole number ≥ {low}")
    if isinstance(names, str) or len(names) != 2:
        raise InputError(f"names {names!r}: expected two display names (A, B)")
    if view_id is not None and not _ID.fullmatch(view_id):
        raise InputError(f"view_id {view_id!r}: lower-case letters, digits and '-', starting with a letter")


def _unit_box(xy: np.ndarray) -> np.ndarray:
    """Coordinates scaled into [0, 1]² with equal aspect (the plot keeps distances honest)."""
    xy = np.asarray(xy, dtype=np.float64)
    lo, hi = xy.min(0), xy.max(0)
    span = float(max(hi - lo)) or 1.0
    out = (xy - lo) / span + (1 - (hi - lo) / span) / 2   # centre the shorter axis
    return np.round(out, 4)


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _row_text(s: dict, pos: int) -> str:
    return s["text"][pos] if s["text"] is not None else ""


def script_json(obj) -> str:
    """JSON safe inside ``<script>``: no ``</script>``, ``<!--`` or ``]]>`` can appear in it."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def _css(vid: str) -> str:
    css = re.sub(r"/\*.*?\*/", "", _asset("joint_view.css"), flags=re.S)   # comments stay in the source
    return css.replace("#LLV", "#" + vid).strip()


def _render(view: JointView) -> str:
    e, vid, d = html.escape, view.view_id, view.data
    na, nb = (e(n) for n in d["names"])
    has_text = any(s["text"] is not None for s in d["sets"])
    opts = "".join(f'<option value="{c}"{" selected" if c == d["color"] else ""}'
                   f'{" disabled" if c == "label" and not d["categories"] else ""}>{c}</option>' for c in COLORS)
    lines = "" if not d["paired"] else ('<label><input type="checkbox" class="llv-lines" checked> '
                                        'pair lines</label>')
    out = [f'<section class="llv" id="{vid}" aria-label="joint view of {na} and {nb}">',
           f"<style>{_css(vid)}</style>",
           f'<p class="llv-caption">Joint {e(d["method"])} of the L2-normalised rows of <b>{na}</b> (circles) and '
           f'<b>{nb}</b> (squares){", grey lines join true pairs" if d["paired"] else ""}. Hover a point for its '
           f'{"text" if has_text else "row"}; click it for its {d["k"]} nearest neighbours in the other set.</p>',
           '<div class="llv-bar"><label>colour <select class="llv-color">' + opts + "</select></label>"
           '<input type="search" class="llv-search" placeholder="search text or label" aria-label="search">'
           f'{lines}<span class="llv-count"></span></div>']
    out += [f'<p class="llv-note">note: {e(n)}</p>' for n in view.notes]
    out += ['<div class="llv-main"><div class="llv-plotbox"><svg class="llv-plot" viewBox="0 0 1000 1000" '
            'role="img" aria-label="scatter plot"></svg><noscript>The interactive plot needs JavaScript; '
            'the tables below do not.</noscript></div>',
            '<aside class="llv-side"><div class="llv-legend"></div><div class="llv-info">Click a point to list its '
            'nearest neighbours.</div></aside></div>', '<div class="llv-tip" hidden></div>']
    out += _tables(view)
    out += [f'<pre class="llv-autotest" id="{vid}-autotest" hidden></pre>',
            f'<script type="application/json" id="{vid}-data">{script_json(d)}</script>',
            f"<script>{_asset('joint_view.js')}\nlatentlabJointView({json.dumps(vid)});</script>", "</section>"]
    return "\n".join(out)


def _tables(view: JointView) -> list[str]:
    e = html.escape
    out = []
    for f in view.failures:
        q, g, s = f["query"], f["gallery"], f["set"]
        listed = len(f["rows"])
        more = f" (the {listed} worst listed)" if f["count"] > listed else ""
        out.append(f'<details class="llv-list"{" open" if f["count"] else ""}><summary>Failed retrievals '
                   f'{e(q)} → {e(g)}: {f["count"]} of {f["of"]} queries do not rank their partner first{more}'
                   '</summary>')
        if f["rows"]:
            own, other = (view.data["sets"][i]["text"] is not None for i in (s, 1 - s))  # no empty text columns
            head = [f"{e(q)} row", "partner's rank"] + (["text"] if own else []) + (["partner's text"] if other else [])
            out.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in head)
                       + f"<th>retrieved instead ({e(g)} row)</th></tr>")
            for r in f["rows"]:
                cells = [f'<td class="num">{r["row"]}</td><td class="num">{r["rank"]}</td>']
                cells += [f"<td>{e(r['text'])}</td>"] if own else []
                cells += [f"<td>{e(r['partner'])}</td>"] if other else []
                top = f"{e(r['top'])} " if other else ""
                cells.append(f'<td>{top}<span class="llv-dim-text">({r["top_row"]})</span></td>')
                out.append(f'<tr data-set="{s}" data-pos="{r["pos"]}">{"".join(cells)}</tr>')
            out.append("</table>")
        out.append("</details>")
    for h in view.hubs:
        has_text = view.data["sets"][h["set"]]["text"] is not None
        out.append(f'<details class="llv-list"><summary>Worst hubs of {e(h["name"])}: skewness of N<sub>{h["k"]}</sub> '
                   f'{h["skew"]:.2f}, {h["hubs"]} rows in more than {2 * h["k"]} of the other set\'s '
                   f'{h["k"]}-NN lists</summary><table><tr><th>row</th><th>N<sub>{h["k"]}</sub></th>'
                   f'{"<th>text</th>" if has_text else ""}</tr>')
        out += [f'<tr data-set="{h["set"]}" data-pos="{r["pos"]}"><td class="num">{r["row"]}</td><td class="num">'
                f'{r["occ"]}</td>{"<td>" + e(r["text"]) + "</td>" if has_text else ""}</tr>' for r in h["rows"][:20]]
        out.append("</table></details>")
    return out


__all__ = ["JointView", "joint_view", "joint_view_html", "write_joint_view", "script_json"]

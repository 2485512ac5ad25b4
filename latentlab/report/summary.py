"""The report's summary: the few numbers that answer "how far apart, how aligned, how
retrievable, can a map close it", each with a one-line verdict whose thresholds it states.

Each section adds its own items (:func:`item`) with the verdict functions below; the report
lists them in :data:`ORDER`. An item is a plain dict::

    {"key", "label", "value", "ci": {"value": {"low", "high", "level", "method"} | None}, "chance",
     "baseline", "baseline_label", "calibrated", "verdict", "section"}

(the interval sits under ``ci`` keyed by the field it belongs to, as in every result's JSON).

``chance`` is the value expected without shared structure (½ for a balanced probe, 1/n for
R@1, the shuffle quantile τ for CKA — Gröger, Wen & Brbić 2026); ``baseline`` is the value
the number must beat (R@1 without the fix, the identity map), named by ``baseline_label``.
The thresholds are rules of thumb for reading a report at a glance, not tests: every
verdict names the cut it used so a reader can disagree.
"""
from __future__ import annotations

import math

from ..results import Estimate

#: summary keys in reading order: how far apart, how retrievable, how aligned, can a map close it
ORDER = ("gap", "separability", "r_at_1_ab", "r_at_1_ab_fixed", "r_at_1_ba", "r_at_1_ba_fixed", "cka",
         "stitching")

#: centroid distance of L2-normalised sets (0–2): (upper bound, words)
GAP_LEVELS = ((0.1, "no meaningful gap"), (0.3, "a small gap"), (0.6, "a clear gap"), (math.inf, "a large gap"))
#: held-out accuracy of a balanced linear probe (chance ½)
SEPARABILITY_LEVELS = ((0.6, "not linearly separable"), (0.75, "weakly separable"), (0.95, "mostly separable"),
                       (math.inf, "linearly separable: the sets lie in distinct regions"))
#: R@1 (fraction); below CHANCE_FACTOR × chance it is chance
R1_LEVELS = ((0.2, "weak retrieval"), (0.5, "moderate retrieval"),
             (math.inf, "strong retrieval: most queries rank their partner first"))
CHANCE_FACTOR = 5
#: a change of R@1 smaller than this is "no change"
R1_CHANGE = 0.01
#: calibrated similarity (0 = shuffled pairs, 1 = best attainable)
CALIBRATED_LEVELS = ((0.1, "weakly aligned"), (0.3, "moderately aligned"), (math.inf, "strongly aligned"))


def _f(x) -> float | None:
    if x is None:
        return None
    v = float(x.value if isinstance(x, Estimate) else x)
    return v if math.isfinite(v) else None


def _fmt(x: float) -> str:
    return f"{x:.3g}" if x != 0 and abs(x) < 0.01 else f"{x:.2f}"


def _level(value: float, levels) -> tuple[str, str]:
    """(words, the range that gave them) for ``value`` on a ladder of (upper bound, words)."""
    lo = -math.inf
    for hi, words in levels:
        if value < hi:
            cut = (f"< {_fmt(hi)}" if lo == -math.inf else f"≥ {_fmt(lo)}" if hi == math.inf
                   else f"{_fmt(lo)}–{_fmt(hi)}")
            return words, cut
        lo = hi
    raise AssertionError("the last level is unbounded")


def item(key: str, label: str, value, *, section: str, verdict: str, chance=None, baseline=None,
         baseline_label: str | None = None, calibrated=None) -> dict:
    """One summary line; ``value`` may be an :class:`Estimate` (its interval becomes ``ci``)."""
    ci = ({"low": float(value.ci_low), "high": float(value.ci_high), "level": value.level, "method": value.method}
          if isinstance(value, Estimate) and value.ci_low is not None else None)
    return {"key": key, "label": label, "value": _f(value), "ci": {"value": ci}, "chance": _f(chance),
            "baseline": _f(baseline), "baseline_label": baseline_label, "calibrated": _f(calibrated),
            "verdict": verdict, "section": section}


def gap_verdict(distance) -> str:
    words, cut = _level(_f(distance), GAP_LEVELS)
    return f"{words} (centroid distance {cut}, on a 0–2 scale)"


def separability_verdict(accuracy) -> str:
    words, cut = _level(_f(accuracy), SEPARABILITY_LEVELS)
    return f"{words} (probe accuracy {cut}; chance 0.5)"


def r1_verdict(r1, chance: float) -> str:
    v = _f(r1)
    if v < CHANCE_FACTOR * chance:
        return f"retrieval at chance level (R@1 < {CHANCE_FACTOR} × chance {_fmt(chance)})"
    words, cut = _level(v, R1_LEVELS)
    return f"{words} (R@1 {cut})"


def fix_verdict(fixed, baseline, fix: str) -> str:
    change = _f(fixed) - _f(baseline)
    if change >= R1_CHANGE:
        return f"{fix} helps: R@1 +{_fmt(change)} (a change ≥ {R1_CHANGE})"
    if change <= -R1_CHANGE:
        return f"{fix} hurts: R@1 −{_fmt(-change)}; keep plain cosine"
    return f"{fix} changes nothing (R@1 within ±{R1_CHANGE})"


def calibrated_verdict(calibrated, tau) -> str:
    c = _f(calibrated)
    if c is None or c <= 0:
        return f"no better than shuffled pairs (calibrated 0; chance τ {_fmt(_f(tau))})"
    words, cut = _level(c, CALIBRATED_LEVELS)
    return f"{words} (calibrated {_fmt(c)}, {cut}; chance τ {_fmt(_f(tau))})"


def stitching_verdict(best: str, best_r1, reference: str, reference_r1, n_anchors: int, n_held: int) -> str:
    change = _f(best_r1) - _f(reference_r1)
    chance = 1 / n_held
    if max(_f(best_r1), _f(reference_r1)) < CHANCE_FACTOR * chance:
        return (f"nothing retrieves above chance, map or {reference} (R@1 < {CHANCE_FACTOR} × chance {_fmt(chance)}): "
                "no shared structure for a map to use")
    if change >= R1_CHANGE:
        return f"a map closes part of the gap: {best} beats the {reference} by R@1 +{_fmt(change)}"
    return (f"no map beats the {reference} (best: {best}, R@1 {_fmt(_f(best_r1))} vs {_fmt(_f(reference_r1))}); "
            f"with {n_anchors} anchors a fitted map loses more than it aligns — compare raw vectors")


def ordered(items: list[dict]) -> list[dict]:
    rank = {k: i for i, k in enumerate(ORDER)}
    return sorted(items, key=lambda it: rank.get(it["key"], len(ORDER)))


def summary_line(it: dict) -> str:
    """One plain-text line: ``label: value [ci] (chance …) — verdict``."""
    return f"{it['label']}: {value_text(it)} — {it['verdict']}"


def interval(it: dict) -> tuple[float, float] | None:
    """(low, high) of a summary item's interval, or None."""
    ci = it["ci"]["value"]
    return None if ci is None else (ci["low"], ci["high"])


def value_text(it: dict) -> str:
    """The value with its interval and its chance or baseline, as plain text."""
    if it["value"] is None:
        return "undefined"
    text = _fmt(it["value"])
    if interval(it):
        text += " [{}, {}]".format(*map(_fmt, interval(it)))
    ref = reference_text(it)
    return f"{text} ({ref})" if ref else text


def reference_text(it: dict) -> str:
    parts = []
    if it.get("chance") is not None:
        parts.append(f"chance {_fmt(it['chance'])}")
    if it.get("baseline") is not None:
        parts.append(f"{it.get('baseline_label') or 'baseline'} {_fmt(it['baseline'])}")
    return ", ".join(parts)

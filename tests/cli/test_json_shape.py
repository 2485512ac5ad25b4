"""One JSON shape per result: every command's --json has the same keys and the same JSON type
per key with and without --bootstrap; scalars are numbers, intervals live under "ci"; every key
is an identifier."""
import re

import numpy as np
import pytest

KEY = re.compile(r"^[a-z_][a-z0-9_]*$")
#: keys whose values are maps keyed by user-provided names (files, parameters), not by latentlab
USER_KEYED = {"params", "provenance"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("json_shape")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    y = (x @ rng.normal(size=(8, 8)) + 0.5 * rng.normal(size=(40, 8))).astype(np.float32)
    paths = {"x": d / "x.npy", "y": d / "y.npy", "z": d / "z.npy", "dir": d}
    np.save(paths["x"], x), np.save(paths["y"], y), np.save(paths["z"], rng.normal(size=(40, 8)).astype(np.float32))
    return paths


def kind(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return {dict: "object", list: "list", str: "string"}[type(v)]


def bad_keys(obj, path="") -> list[str]:
    """Every key (recursively) that is not an identifier, except inside user-keyed maps."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not KEY.match(k):
                out.append(f"{path}.{k}")
            if k not in USER_KEYED:
                out += bad_keys(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += bad_keys(v, f"{path}[{i}]")
    return out


def shape_diff(a, b, path="") -> list[str]:
    """Where two JSON values differ in keys or type; null matches anything (undefined / not computed)."""
    ka, kb = kind(a), kind(b)
    if "null" in (ka, kb):
        return []
    if ka != kb:
        return [f"{path}: {ka} vs {kb}"]
    if ka == "object" and path.rsplit(".", 1)[-1] not in USER_KEYED:
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in shape_diff(a[k], b[k], f"{path}.{k}")]
    if ka == "list" and a and b:
        return shape_diff(a[0], b[0], f"{path}[0]")
    return []


def scalar_fields_are_numbers(out: dict) -> None:
    """Every field with a "ci" entry is a JSON number (or null, or a list of them for matrices)."""
    if isinstance(out, dict):
        for name in (out.get("ci") or {}):
            assert kind(out[name]) in ("number", "null", "list"), (name, out[name])
        for v in out.values():
            scalar_fields_are_numbers(v)
    elif isinstance(out, list):
        for v in out:
            scalar_fields_are_numbers(v)


BOOTSTRAPPED = {  # command → arguments; each runs with and without --bootstrap
    "cka": lambda p: ["cka", p["x"], p["y"]],
    "cka_rbf": lambda p: ["cka", p["x"], p["y"], "--kernel", "rbf"],
    "cka_matrix": lambda p: ["cka-matrix", p["x"], p["y"], p["z"]],
    "gap": lambda p: ["gap", p["x"], p["y"], "--shift", "0:1:0.5"],
    "overlap": lambda p: ["overlap", p["x"], p["y"]],
    "spectrum": lambda p: ["spectrum", p["x"]],
    "uniformity": lambda p: ["uniformity", p["x"], p["y"]],
    "similarity": lambda p: ["similarity", p["x"], p["y"], "--metric", "linear_cka", "--metric", "mutual_knn"],
}


@pytest.mark.parametrize("name", list(BOOTSTRAPPED))
def test_one_shape_with_and_without_bootstrap(cli, tiny, name):
    args = BOOTSTRAPPED[name](tiny)
    plain = cli.json(*args)
    boot = cli.json(*args, "--bootstrap", "8")
    assert shape_diff(plain, boot) == []
    assert bad_keys(plain) == [] and bad_keys(boot) == []
    scalar_fields_are_numbers(plain), scalar_fields_are_numbers(boot)
    # results with interval-capable fields: one "ci" entry per field, an interval with --bootstrap
    # wherever the value is defined, and null everywhere without
    blocks = [(plain, boot)] if "ci" in plain else list(zip(plain["scores"], boot["scores"]))
    assert blocks and all("ci" in p and set(p["ci"]) == set(b["ci"]) for p, b in blocks)
    for p, b in blocks:
        assert all(v is None for v in p["ci"].values())
        for field, entry in b["ci"].items():
            if p[field] is not None and field != "matrix":
                assert set(entry) == {"low", "high", "level", "method"}, field
                assert entry["low"] - 1e-9 <= b[field] <= entry["high"] + 1e-9, field


def test_cka_interval_is_at_ci_cka(cli, tiny):
    out = cli.json("cka", tiny["x"], tiny["y"], "--bootstrap", "20")
    assert isinstance(out["cka"], float) and out["ci"]["cka"]["low"] <= out["cka"] <= out["ci"]["cka"]["high"]
    assert out["ci"]["cka"]["level"] == 0.95 and "bootstrap" in out["ci"]["cka"]["method"]


def test_other_commands_have_identifier_keys(cli, tiny):
    d = tiny["dir"]
    outs = [
        cli.json("retrieval", tiny["x"], tiny["y"], "--both", "--fix", "csls"),
        cli.json("retrieval", tiny["x"], tiny["y"]),
        cli.json("fit", "procrustes", tiny["x"], tiny["y"], "-o", d / "m.safetensors"),
        cli.json("evaluate", d / "m.safetensors", tiny["x"], tiny["y"]),
        cli.json("apply", d / "m.safetensors", tiny["x"], "-o", d / "mapped.npy"),
        cli.json("match", tiny["x"], tiny["y"], "-o", d / "match.npy"),
    ]
    for out in outs:
        assert bad_keys(out) == [], bad_keys(out)


def test_retrieval_has_one_shape_with_and_without_a_fix(cli, tiny):
    plain = cli.json("retrieval", tiny["x"], tiny["y"], "--both")
    fixed = cli.json("retrieval", tiny["x"], tiny["y"], "--both", "--fix", "csls")
    assert shape_diff(plain, fixed) == [] and set(plain) >= {"a_to_b", "b_to_a"}
    assert plain["a_to_b"]["fixed"] is None and set(fixed["a_to_b"]["fixed"]) == set(fixed["a_to_b"]["baseline"])


@pytest.mark.slow
def test_report_json_has_one_shape_and_identifier_keys(cli, tiny):
    d = tiny["dir"]
    common = ["report", tiny["x"], tiny["y"], "--sections", "gap,cka,overlap,spectrum,retrieval"]
    plain = cli.json(*common, "-o", d / "r1.html", "--bootstrap", "1")
    boot = cli.json(*common, "-o", d / "r2.html", "--bootstrap", "8")
    assert bad_keys(plain["sections"]) == [] and shape_diff(plain["sections"], boot["sections"]) == []

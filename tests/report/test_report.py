"""The HTML report: every section, decodable figures, and the same numbers as the commands."""
import base64
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("matplotlib")

SECTIONS = ["gap", "similarities", "uniformity", "cka", "overlap", "spectrum", "retrieval", "stitching"]


@pytest.fixture(scope="module")
def clip_small(tmp_path_factory, mtg_dir):
    arr = np.load(mtg_dir / "features_clip.npy")[:, :240]
    d = tmp_path_factory.mktemp("rep")
    np.save(d / "img.npy", arr[0])
    np.save(d / "txt.npy", arr[1])
    return d


@pytest.fixture(scope="module")
def report_json(clip_small):
    from click.testing import CliRunner

    from latentlab.cli import cli

    res = CliRunner().invoke(cli, ["report", str(clip_small / "img.npy"), str(clip_small / "txt.npy"),
                                   "-o", str(clip_small / "r.html"), "--markdown", str(clip_small / "r.md"),
                                   "--bootstrap", "20", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_every_section_present_with_decodable_figures(report_json, clip_small):
    from PIL import Image

    html = (clip_small / "r.html").read_text()
    for key in SECTIONS:
        assert f"id='{key}'" in html
        assert "skipped" not in report_json["sections"][key], report_json["sections"][key]
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(images) >= len(SECTIONS)
    for b64 in images:
        with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
            im.verify()
    # nothing is fetched: no src/href/url() to a network address (the view's script names the SVG
    # namespace, "http://www.w3.org/2000/svg", which is an identifier, not a fetch)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?(https?:)?//|@import""", html), \
        "the report must not need the network"
    md = (clip_small / "r.md").read_text()
    assert md.count("![") >= len(SECTIONS) and (clip_small / "r_files" / "gap.png").exists()


def test_numbers_equal_the_individual_commands(report_json, clip_small, cli):
    a, b = str(clip_small / "img.npy"), str(clip_small / "txt.npy")
    sec = report_json["sections"]
    gap = cli.json("gap", a, b, "--shift", "-1:1:0.25", "--bootstrap", "20")
    assert sec["gap"]["numbers"]["centroid_distance"] == pytest.approx(gap["centroid_distance"], abs=1e-12)
    assert isinstance(gap["centroid_distance"], float) and set(gap["ci"]["centroid_distance"]) == {"low", "high", "level", "method"}
    assert sec["gap"]["numbers"]["linear_separability"] == pytest.approx(gap["linear_separability"], abs=1e-12)
    cka = cli.json("cka", a, b, "--bootstrap", "20")
    assert sec["cka"]["numbers"]["cka_linear"] == pytest.approx(cka["cka"], abs=1e-12)
    ret = cli.json("retrieval", a, b, "--both", "--fix", "csls")
    assert sec["retrieval"]["numbers"]["a_to_b"]["baseline"]["r_at_1"] == ret["a_to_b"]["baseline"]["r_at_1"]
    assert sec["retrieval"]["numbers"]["b_to_a"]["fixed"]["r_at_1"] == ret["b_to_a"]["fixed"]["r_at_1"]
    ov = cli.json("overlap", a, b)
    assert sec["overlap"]["numbers"]["mutual_knn"] == pytest.approx(ov["mutual_knn"], abs=1e-12)
    sp = cli.json("spectrum", b)
    assert sec["spectrum"]["numbers"]["b"]["effective_rank"] == pytest.approx(sp["effective_rank"], abs=1e-9)
    # 240 pairs of 512 dims: the regularised setting, ridge first (see test_summary_tables for the rule)
    cmd = next(c for c in sec["stitching"]["commands"] if c.startswith("latentlab fit ridge"))
    fit_args = cmd.split(" && ")[0].split()[1:]
    fit_args[fit_args.index("-o") + 1] = str(clip_small / "ridge.safetensors")
    cli(*fit_args)
    ev = cli.json("evaluate", clip_small / "ridge.safetensors", a, b)
    assert sec["stitching"]["numbers"]["ridge"]["r_at_1"] == pytest.approx(ev["r_at_1"], abs=1e-12)
    assert sec["stitching"]["numbers"]["baselines"]["random_rotation"]["r_at_1"] == pytest.approx(
        ev["baselines"]["random_rotation"]["r_at_1"], abs=1e-12)


def test_sections_that_do_not_apply_say_why(clip_small, mtg_dir):
    from latentlab.report import build_report

    a = np.load(clip_small / "img.npy")
    rep = build_report(a, np.load(clip_small / "txt.npy")[:200], bootstrap=0,
                       sections=["cka", "retrieval", "stitching", "spectrum"])
    reasons = {s.key: s.skipped for s in rep.sections}
    assert "not row-paired" in reasons["cka"] and "not paired" in reasons["retrieval"]
    assert reasons["spectrum"] is None
    other_dim = np.load(clip_small / "txt.npy") @ np.random.default_rng(0).normal(size=(512, 300))
    rep = build_report(a, other_dim, bootstrap=0, sections=["gap", "cka", "retrieval"])
    reasons = {s.key: s.skipped for s in rep.sections}
    assert "different dimensions" in reasons["gap"] and "different dimensions" in reasons["retrieval"]
    assert reasons["cka"] is None  # CKA compares spaces of any dimensions
    assert "Skipped" in rep.html()


def test_unknown_section_is_an_input_error(cli, clip_small):
    res = cli("report", clip_small / "img.npy", clip_small / "txt.npy", "--sections", "gap,nope", ok=False)
    assert res.exit_code == 2 and "unknown nope" in res.stderr


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.browser
def test_report_renders_in_headless_chromium(report_json, clip_small, tmp_path):
    browser = _chromium()
    if not browser:
        pytest.skip("no chromium installed (CI installs Debian's chromium)")
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    url = (clip_small / "r.html").as_uri()
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert all(f'id="{k}"' in dom.stdout for k in SECTIONS)
    assert "Uncaught" not in dom.stderr and "CONSOLE" not in dom.stderr
    run = subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,2000", url],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 5, "the screenshot is blank"


# --------------------------------------------------------------------------- chance, calibration, undefined values
def _row(html: str, key: str) -> str:
    """The HTML table row of ``key`` (the first one)."""
    m = re.search(rf"<tr[^>]*><td>{re.escape(key)}</td>.*?</tr>", html)
    assert m, f"no row {key}"
    return m.group(0)


def test_cka_section_shows_chance_and_calibrated_values(report_json, clip_small, cli):
    sec = report_json["sections"]["cka"]
    cal = sec["numbers"]["calibration"]
    assert set(cal) == {"cka_linear", "cka_debiased"}
    for key, c in cal.items():
        assert set(c) == {"calibrated", "tau", "p_value", "n_permutations", "alpha"}
        assert 0.0 <= c["calibrated"] <= 1.0 and c["n_permutations"] == 100 and c["alpha"] == 0.05
        assert c["tau"] < sec["numbers"][key]
    assert report_json["settings"]["calibrate"] == 100
    # the same numbers as the command the section prints
    ref = cli.json("cka", clip_small / "img.npy", clip_small / "txt.npy", "--calibrate", "100")["calibration"]
    assert cal["cka_linear"]["calibrated"] == pytest.approx(ref["calibrated"], abs=1e-12)
    assert cal["cka_linear"]["tau"] == pytest.approx(ref["tau"], abs=1e-12)
    assert any("--calibrate 100" in c for c in sec["commands"])
    assert re.match(r"Linear CKA 0\.\d+ is (well |just )?above chance \(τ = -?[\d.e-]+\): calibrated 0\.\d+",
                    sec["reading"])
    html = (clip_small / "r.html").read_text()
    row = _row(html, "cka_linear")
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells[0] == "cka_linear" and cells[2] == f"{cal['cka_linear']['tau']:.4f}"
    assert cells[3] == f"{cal['cka_linear']['calibrated']:.4f}"
    assert ">chance τ</th>" in html and ">calibrated</th>" in html
    md = (clip_small / "r.md").read_text()
    assert "| quantity | value | chance τ | calibrated | p |" in md
    # overlap: overlap beside overlap_chance, mutual_knn beside its chance and calibration
    ov = report_json["sections"]["overlap"]["numbers"]
    assert 0 < ov["overlap_chance"] < 1 and 0 < ov["mutual_knn_chance"] < 0.1
    assert 0.0 <= ov["calibration"]["mutual_knn"]["calibrated"] <= 1.0
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", _row(html, "overlap"))
    assert cells[2] == f"{ov['overlap_chance']:.4f}"
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", _row(html, "mutual_knn"))
    assert cells[2:5] == [f"{ov['mutual_knn_chance']:.4f}", f"{ov['calibration']['mutual_knn']['tau']:.4f}",
                          f"{ov['calibration']['mutual_knn']['calibrated']:.4f}"]
    assert "<td>overlap_chance</td>" not in html and "<td>calibration." not in html
    if not ov["forced_zero_angles"]:
        assert "<td>forced_zero_angles</td>" not in html


def test_calibrated_cka_of_a_rotated_copy_and_of_independent_inputs(clip_pair):
    from latentlab.report import build_report

    x = clip_pair[0][:300, :64]
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(64, 64)))
    noise = np.random.default_rng(2).normal(size=x.shape)
    cal = {}
    for name, y in (("rotated", x @ q), ("independent", noise)):
        rep = build_report(x, y, sections=["cka"], bootstrap=0, calibrate=50)
        (sec,) = rep.sections
        assert sec.skipped is None
        cal[name] = sec.numbers["calibration"]
        for c in cal[name].values():
            assert 0.0 <= c["calibrated"] <= 1.0 and c["n_permutations"] == 50
        if name == "independent":
            assert "within chance" in sec.reading or "just above chance" in sec.reading
    assert cal["rotated"]["cka_linear"]["calibrated"] > 0.5 and cal["rotated"]["cka_debiased"]["calibrated"] > 0.5
    assert cal["independent"]["cka_linear"]["calibrated"] < 0.05
    assert cal["independent"]["cka_debiased"]["calibrated"] < 0.05
    rep = build_report(x, x @ q, sections=["cka"], bootstrap=0, calibrate=0)
    assert "calibration" not in rep.sections[0].numbers and "chance τ" not in rep.html()
    assert rep.to_dict()["settings"]["calibrate"] == 0


def test_pwcca_at_n_below_d_is_undefined_not_a_number(mtg_dir, tmp_path, cli):
    arr = np.load(mtg_dir / "features_clip.npy")[:, :150]  # 150 rows of 512 dims: CCA is degenerate
    np.save(tmp_path / "a.npy", arr[0])
    np.save(tmp_path / "b.npy", arr[1])
    out = cli.json("report", tmp_path / "a.npy", tmp_path / "b.npy", "--sections", "overlap",
                   "--calibrate", "20", "--bootstrap", "0", "-o", tmp_path / "r.html", "--markdown", tmp_path / "r.md")
    sec = out["sections"]["overlap"]
    assert sec["numbers"]["pwcca"] is None and sec["numbers"]["svcca"] is None  # null in JSON
    reason = next(n for n in sec["notes"] if n.startswith("pwcca undefined"))
    assert "n ≤ d" in reason
    assert "pwcca" not in sec["numbers"].get("calibration", {})
    assert "undefined" in sec["reading"]
    html = (tmp_path / "r.html").read_text()
    row = _row(html, "pwcca")
    assert row.startswith("<tr class='undefined'>")
    cell = re.search(r"<td class='num undefined' title='([^']*)'>undefined<sup>(\d+)</sup></td>", row)
    assert cell, row
    assert cell.group(1) == reason.split(":", 1)[1].strip().replace("'", "&#x27;")
    assert not re.search(r">\s*-?\d+\.\d+", row), "an undefined value must not show a number"
    assert re.search(rf"<p class='footnote'><sup>{cell.group(2)}</sup> pwcca undefined: ", html)
    assert "td.undefined" in html and "#999" in html
    md = (tmp_path / "r.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("| pwcca |"))
    assert line.startswith("| pwcca | — (undefined: ranks ") and "n ≤ d" in line
    assert not re.search(r"\| -?\d+\.\d+ \|", line)
    assert f"note: {reason}" not in md  # the reason is in the table, not repeated as a note


def test_renderer_greys_every_undefined_value_with_the_reason_from_the_notes():
    from latentlab.report import Report
    from latentlab.report.render import table_rows
    from latentlab.report.sections import Section
    from latentlab.results import Estimate

    s = Section("x", "X", reading="one\ntwo", numbers={
        "foo": None, "bar": float("nan"), "A": {"baz": Estimate(float("nan"), float("nan"), float("nan")),
                                               "qux": 1.5, "qux_chance": 0.5},
        "lone": None, "bootstrap": None, "param": 2.0, "calibration": {"A.qux": {
            "calibrated": 0.25, "tau": 0.75, "p_value": 0.01, "n_permutations": 99, "alpha": 0.05}}},
        notes=["foo undefined: no rows", "bar and baz undefined: constant input", "foobar is fine"], hide=["param"])
    rows = {r.key: r for r in table_rows(s)}
    assert set(rows) == {"foo", "bar", "A.baz", "A.qux", "lone"}  # bootstrap: None is "not requested"; param hidden
    assert rows["foo"].reason == "no rows" and rows["bar"].reason == rows["A.baz"].reason == "constant input"
    assert rows["lone"].undefined and rows["lone"].reason is None
    assert rows["A.qux"].chance == 0.5 and rows["A.qux"].cal["calibrated"] == 0.25
    rep = Report(inputs={"a": {"name": "a", "spec": "a.npy", "n": 3, "dim": 2, "provenance": {}},
                         "b": {"name": "b", "spec": "b.npy", "n": 3, "dim": 2, "provenance": {}}, "paired": True},
                 sections=[s], settings={"seed": 0, "dtype": "float32"})
    html = rep.html()
    assert html.count("<td class='num undefined'") == 4 and "title='no value for these inputs'" in html
    assert "<sup>2</sup> bar, A.baz undefined: constant input" in html
    assert not re.search(r"\bnan\b", html.lower())
    assert "note: foo undefined" not in html and "note: foobar is fine" in html
    md = rep.markdown()
    assert "| foo | — (undefined: no rows) |" in md and "| A.baz | — (undefined: constant input) |" in md
    assert "| lone | — (undefined) |" in md and "| A.qux | 1.5000 | 0.5000 | 0.7500 | 0.2500 | 0.0100 |" in md
    assert "> one\n>\n> two" in md
    assert rep.to_dict()["sections"]["x"]["numbers"]["bar"] is None


def test_a_constant_input_reads_undefined_with_its_reason():
    from latentlab.report import build_report
    from latentlab.report.render import cell_reason, is_undefined, table_rows, undefined_reason

    a, b = np.ones((60, 16)), np.random.default_rng(0).normal(size=(60, 16))
    rep = build_report(a, b, bootstrap=0, calibrate=20, sections=["cka", "overlap", "spectrum"], strict=True)
    data = rep.to_dict()["sections"]
    assert data["cka"]["numbers"]["cka_linear"] is None and data["overlap"]["numbers"]["overlap"] is None
    assert data["spectrum"]["numbers"]["a"]["effective_rank"] is None
    assert data["spectrum"]["numbers"]["b"]["effective_rank"] is not None
    for s in rep.sections:
        undefined = [r.reason for r in table_rows(s) if r.undefined]
        undefined += [cell_reason(t, i, j, s.notes) for t in s.tables for i, row in enumerate(t.rows)
                      for j, v in enumerate(row[1:], start=1) if not isinstance(v, str) and is_undefined(v)]
        assert undefined and all("constant" in r for r in undefined), s.key
    html = rep.html()
    assert "<tr class='undefined'><td>cka_linear</td>" in html
    spectra = re.search(r"<caption>Spectrum and hubness of each set</caption>.*?</table>", html, re.S).group(0)
    row = re.search(r"<tr><td>effective_rank</td>.*?</tr>", spectra).group(0)
    assert re.search(r"<td class='num undefined' title='A: [^']*constant[^']*'>undefined", row), row
    assert row.count("undefined<") == 1  # B's effective rank is a number
    # a note about no key in particular is the reason of every undefined value; "A: …" goes to A's rows
    notes = ["A: every column is constant; the spectrum is undefined", "B: every column is constant; the spectrum is undefined"]
    assert undefined_reason("B.hubs", notes)[0] == notes[1] and undefined_reason("A.hubs", notes)[0] == notes[0]
    assert undefined_reason("x", ["ranks: fine"]) == (None, None)


def test_too_few_shufflings_are_flagged(clip_pair):
    from latentlab.report import build_report

    x = clip_pair[0][:100, :16]
    rep = build_report(x, np.ascontiguousarray(x[:, ::-1]), sections=["cka"], bootstrap=0, calibrate=10)
    assert any("--calibrate 10 < 19" in n for n in rep.sections[0].notes)
    assert rep.sections[0].numbers["calibration"]["cka_linear"]["calibrated"] == 0.0

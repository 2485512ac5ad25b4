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
    assert "http://" not in html and "https://" not in html, "the report must not need the network"
    md = (clip_small / "r.md").read_text()
    assert md.count("![") >= len(SECTIONS) and (clip_small / "r_files" / "gap.png").exists()


def test_numbers_equal_the_individual_commands(report_json, clip_small, cli):
    a, b = str(clip_small / "img.npy"), str(clip_small / "txt.npy")
    sec = report_json["sections"]
    gap = cli.json("gap", a, b, "--shift", "-1:1:0.25", "--bootstrap", "20")
    assert sec["gap"]["numbers"]["centroid_distance"] == pytest.approx(gap["centroid_distance"], abs=1e-12)
    assert set(gap["centroid_distance"]) == {"value", "ci_low", "ci_high"}
    assert sec["gap"]["numbers"]["linear_separability"] == pytest.approx(gap["linear_separability"], abs=1e-12)
    cka = cli.json("cka", a, b, "--bootstrap", "20")
    assert sec["cka"]["numbers"]["cka_linear"] == pytest.approx(cka["cka"], abs=1e-12)
    ret = cli.json("retrieval", a, b, "--both", "--fix", "csls")
    assert sec["retrieval"]["numbers"]["A→B"]["baseline"]["r_at_1"] == ret["baseline"]["r_at_1"]
    assert sec["retrieval"]["numbers"]["B→A"]["fixed"]["r_at_1"] == ret["reverse"]["fixed"]["r_at_1"]
    ov = cli.json("overlap", a, b)
    assert sec["overlap"]["numbers"]["mutual_knn"] == pytest.approx(ov["mutual_knn"], abs=1e-12)
    sp = cli.json("spectrum", b)
    assert sec["spectrum"]["numbers"]["B"]["effective_rank"] == pytest.approx(sp["effective_rank"], abs=1e-9)
    cmd = next(c for c in sec["stitching"]["commands"] if c.startswith("latentlab fit procrustes"))
    fit_args = cmd.split(" && ")[0].split()[1:]
    fit_args[fit_args.index("-o") + 1] = str(clip_small / "procrustes.safetensors")
    cli(*fit_args)
    ev = cli.json("evaluate", clip_small / "procrustes.safetensors", a, b)
    assert sec["stitching"]["numbers"]["procrustes"]["r_at_1"] == pytest.approx(ev["r_at_1"], abs=1e-12)
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

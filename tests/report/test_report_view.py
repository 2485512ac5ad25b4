"""The interactive joint view inside the report: the same self-contained file holds it, hover
text comes from --text-a/--text-b, texts are escaped, and --compare refuses per-pair texts."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 8)).astype(np.float32)
    b = (a + 0.5 * rng.normal(size=a.shape)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    (tmp_path / "ta.txt").write_text("".join(f"<img src=x onerror=alert({i})> item {i}\n" for i in range(40)))
    (tmp_path / "tb.txt").write_text("".join(f"caption {i}\n" for i in range(40)))
    return tmp_path


def test_report_holds_the_interactive_view_with_escaped_hover_text(cli, pair):
    out = pair / "r.html"
    data = cli.json("report", pair / "a.npy", pair / "b.npy", "--text-a", pair / "ta.txt", "--text-b", pair / "tb.txt",
                    "--sections", "gap,view", "--bootstrap", "0", "--calibrate", "0", "-o", out)
    view = data["sections"]["view"]["numbers"]
    assert view["points_a"] == view["points_b"] == 40 and view["paired"]
    html = out.read_text()
    assert "<script" in html and "Interactive joint view" in html
    assert "<img src=x" not in html  # the caption is data, never markup
    assert "caption 7" in html and "item 7" in html
    md = pair / "r.md"
    cli("report", pair / "a.npy", pair / "b.npy", "--sections", "view", "--bootstrap", "0", "--calibrate", "0",
        "-o", pair / "r2.html", "--markdown", md)
    assert "open the HTML report" in md.read_text()


def test_report_text_file_row_count_and_compare_are_refused_naming_the_option(cli, pair):
    (pair / "short.txt").write_text("one\ntwo\n")
    res = cli("report", pair / "a.npy", pair / "b.npy", "--text-a", pair / "short.txt", "--sections", "view",
              "--bootstrap", "0", "--calibrate", "0", "-o", pair / "r.html", ok=False)
    assert res.exit_code == 2 and "--text-a" in res.stderr and "short.txt" in res.stderr
    assert not (pair / "r.html").exists()
    res = cli("report", "--compare", f"x:{pair / 'a.npy'},{pair / 'b.npy'}", f"y:{pair / 'b.npy'},{pair / 'a.npy'}",
              "--text-a", pair / "ta.txt", "-o", pair / "c.html", ok=False)
    assert res.exit_code == 2 and "--text-a" in res.stderr and "--compare" in res.stderr


def _chromium():
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.browser
@pytest.mark.slow
def test_clip_and_its_random_twin_side_by_side_in_headless_chromium(mtg_dir, tmp_path):
    """Issue 12's check: the CLIP dump and its random-init twin in one --compare report, opened in
    Chromium: the summary is there, no flattened key is, and each run's view answers a scripted hover."""
    import html as html_mod
    import re
    import subprocess

    from latentlab.report import build_comparison

    browser = _chromium()
    if not browser:
        pytest.skip("no chromium installed (CI installs Debian's chromium)")
    trained, random = mtg_dir / "features_clip.npy", mtg_dir / "features_clip_random.npy"
    cmp = build_comparison([f"trained:{trained}::0,{trained}::1", f"random:{random}::0,{random}::1"],
                           sections=["gap", "view", "cka", "retrieval"], bootstrap=10, calibrate=19)
    out = tmp_path / "cmp.html"
    cmp.write_html(out)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([browser, *flags, "--dump-dom", out.as_uri() + "#llv-autotest=a:7"],
                         capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Uncaught" not in dom.stderr
    page = dom.stdout
    assert 'id="summary"' in page and "trained" in page and "random" in page
    text = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    assert "[0]." not in text and ".baseline." not in text
    hovers = re.findall(r'<pre class="llv-autotest" id="[^"]+-autotest">(.*?)</pre>', page, re.S)
    assert len(hovers) == 2, "each run's view answers the scripted hover"
    for h in hovers:
        tooltip, clicked = html_mod.unescape(h).split("\nclicked: ")
        assert re.match(r"tooltip: \S.* row 7\b", tooltip) and clicked.count("· row ") == 5

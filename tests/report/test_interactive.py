"""The interactive joint view (report/interactive.py), its text inputs (io/texts.py) and `latentlab view`."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from latentlab.errors import InputError
from latentlab.io.texts import read_texts
from latentlab.report.interactive import joint_view, joint_view_html, script_json, write_joint_view

XSS = "<img src=x onerror=alert(1)> </script><!-- caption"


def _pair(n=40, d=8, seed=0, noise=0.8):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d)).astype(np.float32)
    return a, (a + noise * rng.normal(size=(n, d))).astype(np.float32)


def _data(fragment: str) -> dict:
    m = re.search(r'<script type="application/json" id="([^"]+)-data">(.*?)</script>', fragment, re.S)
    assert m, "no data block"
    return json.loads(m.group(2))


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --------------------------------------------------------------------------- the fragment
def test_fragment_holds_the_points_and_escapes_every_text():
    a, b = _pair()
    texts = [f"caption {i}" for i in range(len(b))]
    texts[3] = XSS
    frag = joint_view_html(a, b, text_b=texts, labels=[f"c{i % 3}" for i in range(len(a))], names=("img", "<b>txt"))
    data = _data(frag)
    assert [len(s["rows"]) for s in data["sets"]] == [40, 40]
    xy = np.array([data["sets"][0]["x"], data["sets"][0]["y"]])
    assert xy.min() >= 0 and xy.max() <= 1
    assert data["sets"][1]["text"][3] == XSS            # the JSON round-trips the exact text …
    assert XSS not in frag and "<img" not in frag         # … but it is never raw HTML in the page
    assert "&lt;img src=x onerror=alert(1)&gt;" in frag  # the tables escape it
    assert "<b>txt" not in frag and "&lt;b&gt;txt" in frag
    block = frag.split('-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block and ">" not in block          # no </script> or <!-- can end the data block
    assert data["categories"] == ["c0", "c1", "c2"]


def test_script_json_escapes_what_would_end_a_script():
    text = script_json({"t": "</script><!-- ]]> & \u2028"})
    assert "</" not in text and "<!--" not in text and "\u2028" not in text
    assert json.loads(text) == {"t": "</script><!-- ]]> & \u2028"}


def test_two_views_in_one_page_have_their_own_ids_and_styles():
    a, b = _pair()
    f1, f2 = joint_view_html(a, b), joint_view_html(a[::-1], b[::-1])
    ids1, ids2 = (set(re.findall(r'\bid="([^"]+)"', f)) for f in (f1, f2))
    assert ids1 and ids2 and not ids1 & ids2
    for frag, ids in ((f1, ids1), (f2, ids2)):
        vid = re.search(r'<section class="llv" id="([^"]+)"', frag).group(1)
        assert all(i == vid or i.startswith(vid + "-") for i in ids)
        css = frag.split("<style>", 1)[1].split("</style>", 1)[0]
        rules = [r.split("{", 1)[0].strip() for r in css.split("}") if "{" in r]
        assert rules and all(sel.startswith(f"#{vid}") for r in rules for sel in r.split(","))
        assert f"latentlabJointView({json.dumps(vid)})" in frag
    assert 'id="my-view"' in joint_view_html(a, b, view_id="my-view")
    with pytest.raises(InputError, match="view_id"):
        joint_view(a, b, view_id='x" onload="y')


def test_neighbours_ranks_and_hubness_match_brute_force():
    a, b = _pair(n=60, d=6, seed=3, noise=1.2)
    view = joint_view(a, b, k=4)
    sims = _unit(a.astype(np.float64)) @ _unit(b.astype(np.float64)).T
    for s, mat in ((0, sims), (1, sims.T)):
        got = view.data["sets"][s]
        want = np.argsort(-mat, axis=1, kind="stable")[:, :4]
        np.testing.assert_array_equal(np.array(got["nn"]), want)
        np.testing.assert_allclose(np.array(got["sim"]), np.take_along_axis(mat, want, 1), atol=1e-4)
        # rank of the partner: other rows scoring at least as high (ties count against)
        np.testing.assert_array_equal(got["rank"], (mat >= np.diag(mat)[:, None]).sum(1) - 1)
        # k-occurrence of this set's rows in the other set's lists
        other = np.argsort(-mat.T, axis=1, kind="stable")[:, :4]
        np.testing.assert_array_equal(got["occ"], np.bincount(other.ravel(), minlength=60))
    fails = {f["set"]: f for f in view.failures}
    assert fails[0]["count"] == int((np.array(view.data["sets"][0]["rank"]) > 0).sum()) > 0
    worst = fails[0]["rows"][0]
    assert worst["rank"] == max(view.data["sets"][0]["rank"]) + 1  # listed worst first, 1-based
    assert view.summary()["failed"] == {"a_to_b": fails[0]["count"], "b_to_a": fails[1]["count"]}


def test_subsampling_keeps_at_most_max_points_and_says_so():
    a, b = _pair(n=300)
    view = joint_view(a, b, max_points=100, seed=1)
    sets = view.data["sets"]
    assert len(sets[0]["rows"]) + len(sets[1]["rows"]) <= 100
    assert sets[0]["rows"] == sets[1]["rows"]          # paired: the same rows of both sets
    assert view.data["subsampled"] and "showing 50 of 300 rows" in view.notes[0]
    assert "showing 50 of 300" in view.html()
    full = joint_view(a[:40], b[:40])
    assert not full.data["subsampled"] and not full.notes


def test_a_given_projection_is_reused_cut_to_max_points():
    from latentlab.plot.data import joint_projection

    a, b = _pair(n=300)
    proj = joint_projection(a, b, method="pca", max_points=400, seed=0)
    view = joint_view(a, b, max_points=100, seed=1, projected=proj)
    sets = view.data["sets"]
    assert len(sets[0]["rows"]) == 50 and sets[0]["rows"] == sets[1]["rows"]
    # the shown points keep the given coordinates (up to the view's one affine box scaling)
    pos = {r: i for i, r in enumerate(proj["index_a"])}
    given = np.array([proj["a"][pos[r]] for r in sets[0]["rows"]])
    shown = np.c_[sets[0]["x"], sets[0]["y"]]
    fit = np.linalg.lstsq(np.c_[given, np.ones(len(given))], shown, rcond=None)
    assert np.abs(np.c_[given, np.ones(len(given))] @ fit[0] - shown).max() < 1e-3
    with pytest.raises(InputError, match="projected"):
        joint_view(a, b, projection="umap", projected=proj)


def test_report_projects_both_sets_once(monkeypatch):
    import latentlab.plot.data as plot_data
    from latentlab.report import build_report

    calls = []
    real = plot_data.joint_projection
    monkeypatch.setattr(plot_data, "joint_projection", lambda *a, **k: calls.append(1) or real(*a, **k))
    a, b = _pair(n=60)
    build_report(a, b, sections=["gap", "view"], bootstrap=0, calibrate=0)
    assert len(calls) == 1


def test_unpaired_sets_have_no_pair_lists_and_bad_arguments_name_themselves():
    a, b = _pair()
    view = joint_view(a, b[:25], text_b=[str(i) for i in range(25)])
    assert not view.data["paired"] and not view.failures and view.data["sets"][0]["rank"] is None
    for kwargs, arg in (({"k": 0}, "k"), ({"projection": "tsne"}, "projection"), ({"color": "x"}, "color"),
                        ({"max_points": 2}, "max_points"), ({"color": "label"}, "color"),
                        ({"text_a": ["x"] * 3}, "text_a"), ({"labels": ["x"] * 7}, "labels")):
        with pytest.raises(InputError, match=rf"^{arg}\b"):
            joint_view(a, b, **kwargs)
    with pytest.raises(InputError, match="equal widths"):
        joint_view(a, b[:, :4])


def test_labels_can_be_shared_or_given_per_set():
    a, b = _pair(n=10)
    shared = joint_view(a, b, labels=["x"] * 5 + ["y"] * 5).data
    assert shared["sets"][0]["label"] == shared["sets"][1]["label"]
    split = joint_view(a, b, labels=["x"] * 10 + ["z"] * 10).data
    assert split["categories"] == ["x", "z"] and set(split["sets"][1]["label"]) == {1}


# --------------------------------------------------------------------------- text files
def test_read_texts_formats(tmp_path):
    (tmp_path / "t.txt").write_text("a\nb <c>\n", encoding="utf-8")
    assert read_texts(tmp_path / "t.txt", n_rows=2) == ["a", "b <c>"]
    (tmp_path / "t.csv").write_text('id,caption\n1,"x, y"\n2,z\n', encoding="utf-8")
    assert read_texts(f"{tmp_path / 't.csv'}::caption") == ["x, y", "z"]
    (tmp_path / "t.tsv").write_text("only\nq\nr\n", encoding="utf-8")
    assert read_texts(tmp_path / "t.tsv") == ["q", "r"]      # one column: no selector needed
    (tmp_path / "t.json").write_text('["p", 3, null]', encoding="utf-8")
    assert read_texts(tmp_path / "t.json") == ["p", "3", ""]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"label": ["u", "v"], "n": [1, 2]}), tmp_path / "t.parquet")
    assert read_texts(f"{tmp_path / 't.parquet'}::label") == ["u", "v"]
    for spec, msg in ((f"{tmp_path / 't.csv'}", "2 columns; pick one"), (f"{tmp_path / 't.csv'}::nope", "no such column"),
                      (f"{tmp_path / 't.txt'}::x", "has no columns"), (str(tmp_path / "missing.txt"), "no such file"),
                      (str(tmp_path / "t.npy"), "no such file")):
        with pytest.raises(InputError, match=msg):
            read_texts(spec, arg="labels")
    (tmp_path / "d.json").write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(InputError, match=r"^text_a .*expected a JSON list"):
        read_texts(tmp_path / "d.json", arg="text_a")
    with pytest.raises(InputError, match=r"^labels .*2 rows, but the set has 5"):
        read_texts(tmp_path / "t.txt", n_rows=5, arg="labels")


# --------------------------------------------------------------------------- CLI
@pytest.fixture
def files(tmp_path):
    a, b = _pair(n=30)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    caps = [f"caption {i}" for i in range(30)]
    caps[3] = XSS
    (tmp_path / "caps.txt").write_text("\n".join(caps) + "\n", encoding="utf-8")
    (tmp_path / "short.txt").write_text("one\ntwo\n", encoding="utf-8")
    return tmp_path


def test_cli_view_writes_a_page_and_reports_json(cli, files):
    out = files / "view.html"
    res = cli.json("view", files / "a.npy", files / "b.npy", "--text-b", files / "caps.txt", "-o", out,
                   "--color", "hubness", "--k", "3")
    assert res["view"] == str(out) and res["points_a"] == 30 and res["k"] == 3 and "a_to_b" in res["failed"]
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and _data(page)["color"] == "hubness"
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page  # offline
    text = cli("view", files / "a.npy", files / "b.npy", "-o", out).stdout
    assert "wrote" in text and "partners not ranked first" in text


def test_cli_view_text_file_with_wrong_row_count_exits_2_naming_it(cli, files):
    res = cli("view", files / "a.npy", files / "b.npy", "--text-a", files / "short.txt", "-o", files / "v.html", ok=False)
    assert res.exit_code == 2 and res.stdout == ""
    line = res.stderr.strip()
    assert line.startswith("error: --text-a ") and "short.txt" in line and "2 rows" in line and "\n" not in line
    assert not (files / "v.html").exists()


def test_cli_view_refuses_bad_outputs(cli, files):
    res = cli("view", files / "a.npy", files / "b.npy", "-o", files / "v.png", ok=False)
    assert res.exit_code == 2 and "error: -o" in res.stderr
    (files / "t.html").write_text("x")
    with pytest.raises(InputError, match="is also the input"):
        write_joint_view(files / "t.html", files / "a.npy", files / "b.npy", text_a=str(files / "t.html"))
    res = cli("view", files / "a.npy", files / "b.npy", "--color", "label", "-o", files / "v.html", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error: --color")


# --------------------------------------------------------------------------- in a real browser
def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.browser
def test_view_hovers_and_clicks_in_headless_chromium(files, tmp_path):
    browser = _chromium()
    if not browser:
        pytest.skip("no chromium installed (CI installs Debian's chromium)")
    out = files / "view.html"
    write_joint_view(out, files / "a.npy", files / "b.npy", text_b=str(files / "caps.txt"), names=("img", "txt"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    url = out.as_uri() + "#llv-autotest=b:3"   # the page hovers, then clicks, row 3 of B
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Uncaught" not in dom.stderr and "CONSOLE" not in dom.stderr
    m = re.search(r'<pre class="llv-autotest" id="[^"]+-autotest">(.*?)</pre>', dom.stdout, re.S)
    assert m, "the autotest hook did not run"
    report = html.unescape(m.group(1))
    tooltip, clicked = report.split("\nclicked: ")
    assert tooltip.startswith("tooltip: txt row 3 | " + XSS + " | in ")   # the caption, shown as text
    assert "Nearest img rows (cosine):" in clicked and clicked.count("· row ") == 5
    assert "<img" not in dom.stdout.split("llv-autotest")[0].split("<body>", 1)[1]  # no element was injected
    shot = tmp_path / "view.png"
    run = subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,1000", url],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB")).astype(int)
    blue = (np.abs(pixels - [0, 114, 178]).sum(-1) < 40).sum()     # A's points (Okabe-Ito blue)
    orange = (np.abs(pixels - [230, 159, 0]).sum(-1) < 40).sum()   # B's points
    assert blue > 200 and orange > 200, "the points were not drawn"

"""The report read at a glance: the summary, real tables (no flattened keys), stitching in a
valid setting, and the comparison mode — on small real CLIP slices so each test is fast."""
import json
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")

ITEM_KEYS = {"key", "label", "value", "ci", "chance", "baseline", "baseline_label", "calibrated", "verdict", "section"}
FAST = dict(bootstrap=10, calibrate=19, sections=["gap", "cka", "retrieval", "stitching"])


@pytest.fixture(scope="module")
def small(clip_pair):
    """200 CLIP pairs in their first 32 dims: small enough for an unregularised stitching map."""
    return clip_pair[0][:200, :32], clip_pair[1][:200, :32]


@pytest.fixture(scope="module")
def rep(small):
    from latentlab.report import build_report

    return build_report(*small, strict=True, **FAST)


def test_summary_has_every_number_with_a_verdict_and_a_link(rep):
    from latentlab.report.summary import ORDER

    items = rep.summary()
    assert [it["key"] for it in items] == list(ORDER)
    sections = {s.key: s for s in rep.sections}
    for it in items:
        assert set(it) == ITEM_KEYS and it["section"] in sections and it["verdict"]
        assert it["value"] is not None and np.isfinite(it["value"])
    by = {it["key"]: it for it in items}
    gap = sections["gap"].numbers["centroid_distance"]
    assert by["gap"]["value"] == pytest.approx(float(gap)) and by["gap"]["ci"]["value"]["low"] <= by["gap"]["value"] <= by["gap"]["ci"]["value"]["high"]
    assert by["separability"]["chance"] == 0.5
    ret = sections["retrieval"]
    assert by["r_at_1_ab"]["chance"] == pytest.approx(1 / 200)
    assert by["r_at_1_ab_fixed"]["baseline"] == by["r_at_1_ab"]["value"]
    cal = sections["cka"].numbers["calibration"]["cka_linear"]
    assert by["cka"]["calibrated"] == pytest.approx(cal["calibrated"]) and by["cka"]["chance"] == pytest.approx(cal["tau"])
    ident = sections["stitching"].numbers["baselines"]["identity"]["r_at_1"]
    assert by["stitching"]["baseline"] == pytest.approx(ident) and by["stitching"]["baseline_label"] == "identity"
    assert ret.summary and rep.to_dict()["summary"] == json.loads(json.dumps(items))
    html = rep.html()
    assert html.index("id='summary'") < html.index("id='gap'")
    for it in items:
        assert f"<a href='#{it['section']}'>" in html
    md = rep.markdown()
    assert "## Summary" in md and "(#modality-gap)" in md and "(#stitching-maps)" in md


def test_verdicts_follow_their_stated_thresholds():
    from latentlab.report.summary import (calibrated_verdict, fix_verdict, gap_verdict, r1_verdict,
                                          separability_verdict, stitching_verdict)

    assert gap_verdict(0.05).startswith("no meaningful gap") and gap_verdict(0.85).startswith("a large gap (")
    assert "≥ 0.60" in gap_verdict(0.85) and "0.30–0.60" in gap_verdict(0.4)
    assert separability_verdict(0.5).startswith("not linearly separable") and "≥ 0.95" in separability_verdict(1.0)
    assert r1_verdict(0.009, 0.002).startswith("retrieval at chance level") and r1_verdict(0.011, 0.002).startswith("weak")
    assert r1_verdict(0.55, 0.002).startswith("strong retrieval")
    assert fix_verdict(0.62, 0.55, "CSLS").startswith("CSLS helps: R@1 +0.07")
    assert fix_verdict(0.555, 0.55, "CSLS").startswith("CSLS changes nothing")
    assert fix_verdict(0.50, 0.55, "CSLS").startswith("CSLS hurts")
    assert calibrated_verdict(0.0, 0.05).startswith("no better than shuffled pairs")
    assert calibrated_verdict(0.6, 0.05).startswith("strongly aligned (calibrated 0.60")
    assert stitching_verdict("ridge", 0.2, "identity map", 0.66, 250, 250).startswith("no map beats the identity map")
    assert stitching_verdict("ridge", 0.9, "identity map", 0.1, 250, 250).startswith("a map closes part of the gap")
    assert stitching_verdict("ridge", 0.004, "identity map", 0.008, 250, 250).startswith("nothing retrieves above chance")


FLATTENED = re.compile(r"\[\d+\]\.|\.baseline\.|\.fixed\.|\w\.(r_at_|mean|std|delta|dim|effective_rank)")


@pytest.mark.slow
def test_no_flattened_keys_in_html_or_markdown(clip_pair):
    from latentlab.report import build_report

    x, y = clip_pair[0][:150, :48], clip_pair[1][:150, :48]
    full = build_report(x, y, bootstrap=10, calibrate=19, strict=True)
    html, md = full.html(), full.markdown()
    html = re.sub(r"<script.*?</script>", "", html, flags=re.S)  # the view's code indexes arrays; tables are checked
    for text in (html, md):
        assert "[0]." not in text and ".baseline." not in text
        assert not FLATTENED.search(re.sub(r"data:image/png;base64,[^'\")]+", "", text))
    first_cells = re.findall(r"<tr[^>]*><td>([^<]*)</td>", html)
    assert first_cells and not [c for c in first_cells if re.fullmatch(r"[A-Za-z_][\w ]*\.[A-Za-z_][\w.]*", c)]
    sections = {s.key: s for s in full.sections}
    tables = {t.key: t for s in full.sections for t in s.tables}
    assert [r[0] for r in tables["shift"].rows] == [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0]
    assert tables["shift"].columns[:3] == ["δ", "centroid distance", "R@1 A→B"]
    assert tables["retrieval"].columns == ["metric", "A→B", "A→B + CSLS", "B→A", "B→A + CSLS"]
    assert [r[0] for r in tables["retrieval"].rows][:4] == ["R@1", "R@5", "R@10", "MRR"]
    assert tables["stitching"].columns == ["method", "R@1", "R@5", "MRR", "R@1 vs identity"]
    assert tables["top_dimensions"].columns[0] == "dim" and len(tables["top_dimensions"].rows) == 5
    # the same numbers as the section's JSON, now in the table
    ab = sections["retrieval"].to_dict()["numbers"]
    r1 = next(r for r in tables["retrieval"].rows if r[0] == "R@1")
    assert json.dumps(ab).count(repr(r1[1])) >= 1
    assert "<caption>Retrieval of the true partner, both ways, without and with CSLS</caption>" in html
    assert "**Embedding shift along the gap" in md and "| δ | centroid distance | R@1 A→B |" in md


def test_stitching_setting_rule():
    from latentlab.report.sections import stitch_setting

    clip = stitch_setting(500, 512, 512)  # the CLIP dump: too few pairs for 2 anchors per dimension
    assert clip["setting"] == "regularised" and clip["anchors"] == 250 and clip["held_out"] == 250
    methods = [m for _, m, _ in clip["methods"]]
    assert "procrustes" not in methods and "lst" not in methods and methods[0] == "ridge"
    assert clip["methods"][0][2] == {"alpha": "auto", "alpha_cv": "loo"} and clip["methods"][1][2]["rank"] == 62
    assert "1024 anchors" in clip["why"]
    big = stitch_setting(2000, 256, 256)
    assert big["setting"] == "unregularised" and big["anchors"] == 1000 and "procrustes" in [m for _, m, _ in big["methods"]]
    tight = stitch_setting(700, 256, 128)  # 2·256 = 512 anchors fit while 140 stay held out
    assert tight["setting"] == "unregularised" and tight["anchors"] == 512 and tight["held_out"] == 188


def test_stitching_says_when_no_map_beats_the_identity_and_when_one_does(clip_pair):
    from latentlab.report import build_report

    x = clip_pair[0][:300, :16]
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(16, 16)))
    same = build_report(x, x, sections=["stitching"], bootstrap=0, calibrate=0, strict=True)
    (s,) = same.sections
    assert s.numbers["setting"] == "unregularised" and s.numbers["anchors"] == 150
    assert s.reading.startswith("No map beats the identity map") and "Setting (unregularised)" in s.reading
    rotated = build_report(x, x @ q, sections=["stitching"], bootstrap=0, calibrate=0, strict=True)
    (s,) = rotated.sections
    assert s.reading.startswith("A map closes part of the gap: ") and s.summary[0]["value"] > 0.9
    wide = build_report(clip_pair[0][:120, :128], clip_pair[1][:120, :128], sections=["stitching"], bootstrap=0,
                        calibrate=0, strict=True)
    (s,) = wide.sections
    assert s.numbers["setting"] == "regularised" and "procrustes" not in s.numbers
    assert not any("fewer anchors than dimensions" in n for n in s.notes)
    assert "Setting (regularised): 120 pairs cannot give 2 × 128 = 256 anchors" in s.reading


def test_cli_prints_the_summary_and_json_has_it(cli, tmp_path, small):
    np.save(tmp_path / "a.npy", small[0])
    np.save(tmp_path / "b.npy", small[1])
    args = [tmp_path / "a.npy", tmp_path / "b.npy", "-o", tmp_path / "r.html", "--sections", "gap,retrieval",
            "--bootstrap", "0", "--calibrate", "0"]
    out = cli("report", *args).stdout.splitlines()
    assert out[0].startswith("wrote ") and out[1] == "summary:"
    assert out[2].startswith("  Modality gap (centroid distance): ") and " — a " in out[2]
    assert any(line.startswith("  R@1 a.npy→b.npy + CSLS: ") for line in out)
    data = cli.json("report", *args)
    assert [it["key"] for it in data["summary"]][:3] == ["gap", "separability", "r_at_1_ab"]


@pytest.mark.slow
def test_compare_mode_side_by_side(cli, tmp_path, clip_pair, mtg_dir):
    rnd = np.load(mtg_dir / "features_clip_random.npy")[:, :120, :24]
    np.save(tmp_path / "trained.npy", np.stack([clip_pair[0][:120, :24], clip_pair[1][:120, :24]]))
    np.save(tmp_path / "random.npy", rnd)
    t, r = tmp_path / "trained.npy", tmp_path / "random.npy"
    runs = [f"trained:{t}::0,{t}::1", f"random:{r}::0,{r}::1"]
    common = ["--sections", "gap,cka,retrieval", "--bootstrap", "10", "--calibrate", "19", "--name-a", "image",
              "--name-b", "text"]
    res = cli("report", "--compare", *runs, "-o", tmp_path / "cmp.html", "--markdown", tmp_path / "cmp.md", *common)
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"wrote {tmp_path / 'cmp.html'} (6 sections in 2 runs")
    i = lines.index("  R@1 image→text:")
    assert lines[i + 1].startswith("    trained  ") and lines[i + 2].startswith("    random   ")
    assert "retrieval at chance level" in lines[i + 2]
    html = (tmp_path / "cmp.html").read_text()
    assert "<tr><th>quantity</th><th>trained</th><th>random</th></tr>" in html
    assert html.count("<div class='runs'>") == 3 and html.count("<h3>trained</h3>") == 3
    assert "[0]." not in html and ".baseline." not in html
    md = (tmp_path / "cmp.md").read_text()
    assert "| quantity | trained | random |" in md and "### random: Retrieval both ways" in md
    assert (tmp_path / "cmp_files" / "random-gap.png").exists()
    data = cli.json("report", "--compare", *runs, "-o", tmp_path / "cmp2.html", *common[2:], "--sections", "cka")
    assert set(data["summary"]) == {"trained", "random"} and set(data["runs"]) == {"trained", "random"}
    ca = {it["key"]: it for it in data["summary"]["trained"]}["cka"]
    cr = {it["key"]: it for it in data["summary"]["random"]}["cka"]
    assert ca["value"] > 0.3 > cr["value"]
    bad = cli("report", "--compare", f"{t}::0,{t}::1", runs[1], "-o", tmp_path / "x.html", ok=False)
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --compare ") and "NAME:A,B" in bad.stderr
    one = cli("report", "--compare", runs[0], "-o", tmp_path / "x.html", ok=False)
    assert one.exit_code == 2 and "two or more" in one.stderr
    plain = cli("report", str(t) + "::0", "-o", tmp_path / "x.html", ok=False)
    assert plain.exit_code == 2 and "two inputs A B" in plain.stderr


def test_build_comparison_python_api(clip_pair):
    from latentlab.errors import InputError
    from latentlab.report import build_comparison

    x, y = clip_pair[0][:80, :16], clip_pair[1][:80, :16]
    cmp = build_comparison({"one": (x, y), "two": (y, x)}, sections=["gap"], bootstrap=0, calibrate=0)
    assert list(cmp.summary()) == ["one", "two"]
    rows = cmp.summary_rows()
    assert [r["key"] for r in rows] == ["gap", "separability"]
    assert rows[0]["values"]["one"]["value"] == pytest.approx(rows[0]["values"]["two"]["value"])  # the gap is symmetric
    with pytest.raises(InputError, match="at least two"):
        build_comparison({"one": (x, y)})
    with pytest.raises(InputError, match="compare"):
        build_comparison(["nocolon"])

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

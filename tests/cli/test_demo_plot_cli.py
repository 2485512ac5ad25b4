"""`latentlab demo` and `latentlab plot KIND`: real data in, valid figures out."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")


@pytest.mark.slow
def test_demo_digits_writes_report_and_real_embeddings(cli, tmp_path):
    out = cli.json("demo", "-o", tmp_path / "d", "--bootstrap", "10")
    assert (tmp_path / "d" / "report.html").exists()
    img, txt = np.load(tmp_path / "d" / "image.npy"), np.load(tmp_path / "d" / "text.npy")
    assert img.shape == txt.shape == (597, 64)
    # a genuine modality gap, larger still at random initialisation (Liang et al. 2022)
    assert 0.05 < out["centroid_distance"] < out["gap_at_random_init"]
    assert out["sections"]["retrieval"]["numbers"]["a_to_b"]["baseline"]["r_at_10"] > 0.3  # trained, far above chance


def test_demo_clip_example(cli, tmp_path):
    out = cli.json("demo", "--example", "clip", "-o", tmp_path, "--bootstrap", "0")
    assert out["centroid_distance"] == pytest.approx(0.8514, abs=2e-3)  # float16 copy of the CLIP dump


@pytest.mark.parametrize("kind,extra", [("joint", []), ("sims", []), ("angles", ["--rank", "8"]),
                                        ("shift", ["--shift", "-0.5:0.5:0.5"]), ("retrieval", ["--fix", "csls"]),
                                        ("spectrum", []), ("cka", [])])
@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_plot_kinds_render(cli, clip_pair, tmp_path, kind, extra, fmt):
    from PIL import Image

    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, clip_pair[0][:150])
    np.save(b, clip_pair[1][:150])
    out = tmp_path / f"{kind}.{fmt}"
    res = cli.json("plot", kind, a, b, "-o", out, *extra)
    assert res["figure"] == str(out) and out.stat().st_size > 1000
    if fmt == "png":
        with Image.open(out) as im:
            im.verify()
    else:
        assert "</svg>" in out.read_text()


def test_plot_errors(cli, tmp_path):
    np.save(tmp_path / "a.npy", np.ones((5, 3)))
    res = cli("plot", "sims", tmp_path / "a.npy", tmp_path / "missing.npy", "-o", tmp_path / "x.png", ok=False)
    assert res.exit_code == 2 and "missing.npy: no such file" in res.stderr
    res = cli("plot", "joint", tmp_path / "a.npy", tmp_path / "a.npy", "-o", tmp_path / "x.gif", ok=False)
    assert res.exit_code == 2 and "x.gif" in res.stderr

"""The CLI's error contract: one line per failure, exit 1 for bugs, exit 2 for the user's input or memory,
only latentlab's own warnings shown, and report files that carry no HTML from input names."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import latentlab.analyze.gap as gap_mod  # the gap command imports gap() from here when it runs
from latentlab.errors import LatentlabWarning


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(0)
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, rng.standard_normal((40, 8)).astype(np.float32))
    np.save(b, rng.standard_normal((40, 8)).astype(np.float32))
    return str(a), str(b)


def _raise(exc):
    def fake(*args, **kwargs):
        raise exc

    return fake


def test_unexpected_exception_is_one_line_internal_error(cli, pair, monkeypatch):
    monkeypatch.setattr(gap_mod, "gap", _raise(RuntimeError("boom")))
    res = cli("gap", *pair, "--no-probe", ok=False)
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: internal error (RuntimeError: boom)")
    assert "issue tracker" in lines[0] and "--debug" in lines[0]
    assert "Traceback" not in res.output

    res = cli("gap", *pair, "--no-probe", "--debug", ok=False)
    assert res.exit_code == 1
    assert "Traceback (most recent call last)" in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("error: internal error (RuntimeError: boom)")


def test_input_error_keeps_exit_2(cli, pair, tmp_path):
    res = cli("gap", pair[0], str(tmp_path / "missing.npy"), ok=False)
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and "internal error" not in res.stderr


def test_memory_error_is_one_line_exit_2(cli, pair, monkeypatch):
    monkeypatch.setattr(gap_mod, "gap", _raise(MemoryError()))
    res = cli("gap", *pair, "--no-probe", ok=False)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: out of memory") and "--sample" in lines[0]
    assert "Traceback" not in res.output


def test_errors_outside_a_command_body_are_one_line(capsys):
    from latentlab.cli.main import LatentlabGroup

    group = LatentlabGroup("g")

    @group.command("bad")
    def bad():
        raise ValueError("oops")

    with pytest.raises(SystemExit) as exit_info:
        group.main(["bad"], prog_name="g")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("error: internal error (ValueError: oops)")


def test_only_latentlab_warnings_are_shown(cli, pair, monkeypatch):
    real_gap = gap_mod.gap

    def noisy_gap(*args, **kwargs):
        np.log(np.zeros(1))  # numpy: "divide by zero encountered in log"
        warnings.warn("invalid value encountered in divide", RuntimeWarning)
        warnings.warn("You are using `torch.load` with `weights_only=False`", FutureWarning)
        warnings.warn("a third-party user warning", UserWarning)
        warnings.warn("a caveat for the user", LatentlabWarning)
        return real_gap(*args, **kwargs)

    monkeypatch.setattr(gap_mod, "gap", noisy_gap)
    res = cli("gap", *pair, "--no-probe")
    assert [x for x in res.stderr.splitlines() if x.strip()] == ["warning: a caveat for the user"]

    res = cli("gap", *pair, "--no-probe", "--debug")
    for text in ("divide by zero", "invalid value", "torch.load", "third-party", "a caveat for the user"):
        assert text in res.stderr


def test_report_escapes_input_names(cli, tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(1)
    name = "<img src=x onerror=alert(1)>.npy"
    try:
        evil = tmp_path / name
        np.save(evil, rng.standard_normal((60, 6)).astype(np.float32))
    except OSError:
        name = "a<b>.npy"
        evil = tmp_path / name
        np.save(evil, rng.standard_normal((60, 6)).astype(np.float32))
    other = tmp_path / "b|`x`.npy"
    np.save(other, rng.standard_normal((60, 6)).astype(np.float32))
    md, out = tmp_path / "out.md", tmp_path / "out.html"
    cli("report", evil, other, "-o", out, "--markdown", md, "--sections", "gap,stitching")

    html_text = out.read_text()
    assert "<img src=x" not in html_text

    text = md.read_text()
    # the reproduce commands stay verbatim (to be copied) inside fenced code blocks, which are never HTML
    outside, fenced = [], []
    in_block = None
    for line in text.splitlines():
        fence = re.match(r"^(`{3,})", line)
        if in_block is None and fence:
            in_block = fence.group(1)
        elif in_block is not None and line.strip() == in_block:
            in_block = None
        else:
            (fenced if in_block else outside).append(line)
    assert in_block is None, "a code block was left open"
    prose = "\n".join(outside)
    stem = name[: -len(".npy")]
    assert "<img" not in prose and "<b>" not in prose
    assert "<" not in prose.replace("&lt;", ""), [x for x in outside if "<" in x]
    assert "&lt;" in prose  # the name is still shown, escaped
    assert any(stem in x for x in fenced)  # and the commands still name the real file
    for line in outside:  # table rows keep their columns: no unescaped pipe from the name
        if line.startswith("| ") and "b" in line and "x" in line:
            assert "b|" not in re.sub(r"\\\|", "", line)

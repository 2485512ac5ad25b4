"""Issue 11, "litter": a map is written through latentlab's own temporary name only, so a run
killed mid-write leaves nothing the next ``fit -o`` of the same map cannot recognise and remove."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from latentlab.align import fit_aligner, load_aligner

# Dies (no finally, no cleanup: as SIGKILL) at the moment the finished temporary would be renamed.
KILLED_FIT = """
import os, sys
import numpy as np
import latentlab.io.writers as writers
from latentlab.align import fit_aligner

def die(src, dst):
    os._exit(9)

writers.os.replace = die
rng = np.random.default_rng(0)
X = rng.standard_normal((40, 4))
fit_aligner("procrustes", X, X @ np.linalg.qr(rng.standard_normal((4, 4)))[0]).save(sys.argv[1])
"""

OUR_TEMP = re.compile(r"\.map\.[0-9a-f]{8}\.tmp\.safetensors")


@pytest.mark.slow  # a fresh interpreter importing torch: several seconds on a busy machine
def test_killed_fit_leaves_only_our_temporary_and_the_next_fit_removes_it(tmp_path, cli):
    target = tmp_path / "map.safetensors"
    proc = subprocess.run([sys.executable, "-c", KILLED_FIT, str(target)], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    left = sorted(p.name for p in tmp_path.iterdir())
    temps = [n for n in left if OUR_TEMP.fullmatch(n)]
    # the whole map sat in our temporary (no library-made temporary anywhere), the lock file is
    # stale and harmless (the kernel dropped the flock with the process)
    assert len(temps) == 1 and set(left) == {temps[0], ".map.safetensors.lock"}, left
    assert load_aligner(tmp_path / temps[0]).method == "procrustes"

    rng = np.random.default_rng(1)
    np.save(tmp_path / "a.npy", rng.standard_normal((16, 4)).astype(np.float32))
    np.save(tmp_path / "b.npy", rng.standard_normal((16, 4)).astype(np.float32))
    (tmp_path / ".other.0a1b2c3d.tmp.safetensors").write_bytes(b"another output's temporary")
    cli("fit", "procrustes", tmp_path / "a.npy", tmp_path / "b.npy", "-o", target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.0a1b2c3d.tmp.safetensors", "a.npy", "b.npy",
                                                          "map.safetensors"]
    assert load_aligner(target).method == "procrustes"


def test_map_bytes_go_only_through_our_temporary(tmp_path, monkeypatch):
    """Fast in-process check of the same contract: no safetensors writer is used, and at the
    rename the whole map sits in our temporary, the only new file beside the target."""
    import safetensors.numpy
    import safetensors.torch

    import latentlab.io.writers as writers

    def forbidden(*args, **kwargs):
        raise AssertionError("safetensors' save_file makes temporaries of its own")

    monkeypatch.setattr(safetensors.numpy, "save_file", forbidden)
    monkeypatch.setattr(safetensors.torch, "save_file", forbidden)
    real_replace, seen = writers.os.replace, []

    def replace(src, dst):
        seen.append((sorted(p.name for p in tmp_path.iterdir()), (tmp_path / src).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(writers.os, "replace", replace)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4))
    fit_aligner("ridge", X, X[:, ::-1], alpha=0.1).save(tmp_path / "map.safetensors")
    [(names, data)] = seen
    assert len(names) == 2 and OUR_TEMP.fullmatch(names[0]) and names[1] == ".map.safetensors.lock", names
    assert data == (tmp_path / "map.safetensors").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.safetensors"]


def test_next_fit_removes_a_leftover_temporary(tmp_path, cli):
    """The CLI path without the kill (fast): a killed run's temporary of the map is removed by
    the next ``fit -o`` of the same map; other outputs' temporaries stay."""
    rng = np.random.default_rng(1)
    np.save(tmp_path / "a.npy", rng.standard_normal((16, 4)).astype(np.float32))
    np.save(tmp_path / "b.npy", rng.standard_normal((16, 4)).astype(np.float32))
    (tmp_path / ".map.0123abcd.tmp.safetensors").write_bytes(b"\0" * 4096)
    (tmp_path / ".mapx.0123abcd.tmp.safetensors").write_bytes(b"another output's temporary")
    cli("fit", "procrustes", tmp_path / "a.npy", tmp_path / "b.npy", "-o", tmp_path / "map.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mapx.0123abcd.tmp.safetensors", "a.npy", "b.npy",
                                                          "map.safetensors"]

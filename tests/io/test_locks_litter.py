"""Issue 11, "concurrency and litter": one writer per output (flock), and temporaries a killed
run left are removed by the next run that writes the same output — only ours, only for it."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from latentlab.errors import InputError
from latentlab.io import save_array, write_embeddings
from latentlab.io.writers import atomic_output, output_lock

HOLD = """
import sys, time
from latentlab.io.writers import output_lock
with output_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of tmp_path/out.npy (killed with SIGKILL afterwards)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "out.npy")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_second_writer_is_refused_with_the_pid(tmp_path, holder):
    with pytest.raises(InputError, match=rf"out.npy is being written by another latentlab process \(pid {holder.pid}\)"):
        save_array(tmp_path / "out.npy", np.zeros(3))
    assert not (tmp_path / "out.npy").exists()
    save_array(tmp_path / "other.npy", np.zeros(3))  # another output is not blocked


def test_lock_dies_with_a_killed_holder(tmp_path, holder):
    holder.kill()  # SIGKILL: no cleanup code runs, the kernel drops the flock
    holder.wait()
    save_array(tmp_path / "out.npy", np.zeros(3))
    assert np.load(tmp_path / "out.npy").shape == (3,)
    assert not (tmp_path / ".out.npy.lock").exists()  # the holder removes its lock file


def test_lock_is_reentrant_in_one_process(tmp_path):
    with output_lock(tmp_path / "out.npy"):
        save_array(tmp_path / "out.npy", np.ones(2))  # embed holds OUT's lock and writes OUT itself
    assert not (tmp_path / ".out.npy.lock").exists()


@pytest.mark.parametrize("target,leftover", [
    ("fin.npy", ".fin.0a1b2c3d.tmp.npy"),          # embed's final array
    ("r.html", ".r.deadbeef.tmp.html"),             # report
    ("map.safetensors", ".map.12345678.tmp.safetensors"),  # fit
])
def test_leftover_temporaries_are_removed_by_the_next_write(tmp_path, target, leftover):
    (tmp_path / leftover).write_bytes(b"half-written by a killed run")
    keep = [".fin.0a1b2c3d.tmp.npz", ".other.0a1b2c3d.tmp.npy", ".fin.nothex!.tmp.npy", "fin.npy.bak"]
    for name in keep:  # other outputs' temporaries and names not ours stay
        (tmp_path / name).write_bytes(b"x")
    with atomic_output(tmp_path / target) as tmp:
        tmp.write_bytes(b"new")
    assert not (tmp_path / leftover).exists()
    assert (tmp_path / target).read_bytes() == b"new"
    for name in keep:
        assert (tmp_path / name).exists(), name


def test_output_naming_a_folder(tmp_path):
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        write_embeddings(tmp_path / "d.npy", np.zeros((2, 2)))


def test_embed_parts_symlink_refused(tmp_path):
    from latentlab.loaders.writer import ShardStore

    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "out.npy.parts")
    with pytest.raises(InputError, match=r"out.npy.parts: exists and is not a folder latentlab made"):
        ShardStore(tmp_path / "out.npy", {"model": "m"}, ["embeddings"])
    assert os.listdir(tmp_path / "elsewhere") == []


def test_second_embed_on_one_output_is_refused(tmp_path, holder):
    from latentlab.loaders.writer import ShardStore

    with pytest.raises(InputError, match=rf"is being written by another latentlab process \(pid {holder.pid}\)"):
        ShardStore(tmp_path / "out.npy", {"model": "m"}, ["embeddings"])
    assert not (tmp_path / "out.npy.parts").exists()  # refused before touching the parts folder

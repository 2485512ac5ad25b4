"""Hub names offline (cache check without torch) and normalisation recorded in the sidecar."""
from __future__ import annotations

import json

import pytest

from latentlab.errors import InputError
from latentlab.loaders import hub
from latentlab.loaders.spec import parse_layers, parse_spec


def test_offline_env_and_unreachable_hub_give_a_reason(monkeypatch):
    spec = parse_spec("hf:org/model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.offline_reason(spec) == "HF_HUB_OFFLINE is set"
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: connection refused at once
    assert "could not be reached" in hub.offline_reason(spec)


def test_cache_lookup_finds_a_snapshot(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = parse_spec("st:all-MiniLM-L6-v2")
    with pytest.raises(InputError, match="not in the local cache: pass a local folder"):
        hub.require_available(spec)
    (tmp_path / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2" / "snapshots" / "abc").mkdir(parents=True)
    hub.require_available(spec)  # bare st names resolve in sentence-transformers' organisation


def test_local_folder_never_probes(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: pytest.fail("probed the hub for a local folder"))
    assert hub.offline_reason(parse_spec(f"hf:{tmp_path}")) is None


def test_empty_layers_is_an_error():
    with pytest.raises(InputError, match="^layers ''"):
        parse_layers("")
    assert parse_layers(None) is None and parse_layers("output") is None


@pytest.mark.models
def test_sidecar_records_the_models_own_normalisation(minilm_dir, tmp_path):
    import numpy as np

    from latentlab.loaders import embed_to_file

    (tmp_path / "s.txt").write_text("a cat\nthe quick brown fox\n")
    embed_to_file(f"st:{minilm_dir}", tmp_path / "s.txt", tmp_path / "e.npy", progress=False)
    side = json.loads((tmp_path / "e.json").read_text())
    assert "Normalize" in side["pipeline"]  # the packaged all-MiniLM-L6-v2 ends in a Normalize module
    assert side["normalize"] is True and "Normalize" in side["normalized_by"]
    np.testing.assert_allclose(np.linalg.norm(np.load(tmp_path / "e.npy"), axis=1), 1.0, atol=1e-5)
    embed_to_file(f"st:{minilm_dir}", tmp_path / "s.txt", tmp_path / "h.npy", layers="-1", progress=False)
    side = json.loads((tmp_path / "h.json").read_text())
    assert side["normalize"] is False and side["normalized_by"] is None  # pooled hidden states skip Normalize

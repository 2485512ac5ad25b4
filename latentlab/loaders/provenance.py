"""What identifies a model and a run: weight-file hashes, hub revisions, the sidecar record."""
from __future__ import annotations

import datetime as _dt
import hashlib
import re
from pathlib import Path

from .inputs import file_sha256

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".npz", ".msgpack", ".h5")


def weights_sha256(path: Path) -> str | None:
    """sha256 over (relative name, file sha256) of every weight file under ``path`` (or of the file)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES)
    if not files:
        return None
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.relative_to(path).as_posix()}\t{file_sha256(f)}\n".encode())
    return digest.hexdigest()


def hub_revision(path_or_config) -> str | None:
    """The commit of a hub-cache snapshot (``…/snapshots/<40 hex>/…``) or a config's ``_commit_hash``."""
    commit = getattr(path_or_config, "_commit_hash", None)
    if commit:
        return str(commit)
    match = re.search(r"snapshots[/\\]([0-9a-f]{40})", str(path_or_config))
    return match.group(1) if match else None


def model_identity(spec, resolved: str | Path | None = None, config=None) -> dict:
    """``model_revision`` for hub models, ``model_sha256`` of the weights for local ones."""
    ident: dict = {"model": spec.text}
    if spec.local is not None:
        ident["model_path"] = str(spec.local)
        ident["model_sha256"] = weights_sha256(spec.local)
    else:
        ident["model_revision"] = hub_revision(config) or (hub_revision(resolved) if resolved else None)
    return ident


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()

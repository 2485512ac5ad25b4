"""Model specs (``hf:``, ``st:``, ``openclip:``) and layer selections, parsed without any model library."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

PREFIXES = ("hf", "st", "openclip")
SPEC_HELP = "hf:NAME_OR_PATH, st:NAME_OR_PATH or openclip:ARCH:PRETRAINED_OR_PATH"
# option values the CLI offers: kept here, free of torch, so ``latentlab --help`` never imports it
MODEL_DTYPES = ("float32", "float64", "float16", "bfloat16")
POOLS = ("mean", "cls", "last", "max")
DEFAULT_SHARD_SIZE = 4096


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec.

    ``name`` is the hub name or local path (``hf``/``st``) or the open_clip architecture;
    ``pretrained`` is open_clip's pretrained tag or weights file; ``local`` is the resolved
    local folder or file when the spec names one (then loading never touches the network).
    """

    kind: str
    name: str
    text: str
    pretrained: str | None = None
    local: Path | None = None


def parse_spec(spec: str) -> ModelSpec:
    """Parse ``hf:…``, ``st:…`` or ``openclip:ARCH:PRETRAINED_OR_PATH``; check local paths exist."""
    kind, sep, rest = str(spec).partition(":")
    if not sep or kind not in PREFIXES:
        raise InputError(f"unknown model spec {spec!r}: expected {SPEC_HELP}")
    if not rest:
        raise InputError(f"model spec {spec!r} names no model: expected {SPEC_HELP}")
    if kind in ("hf", "st"):
        return ModelSpec(kind, rest, spec, local=_local_path(rest, "model folder"))
    # open_clip: the architecture may itself carry a schema ("hf-hub:org/repo", "local-dir:/x")
    for schema in ("hf-hub:", "local-dir:"):
        if rest.startswith(schema):
            target = rest[len(schema):]
            local = _local_path(target, "model folder") if schema == "local-dir:" else None
            return ModelSpec(kind, rest, spec, local=local)
    arch, _, pretrained = rest.partition(":")
    if not pretrained:
        raise InputError(
            f"model spec {spec!r}: give the weights as openclip:{arch}:PRETRAINED_TAG or "
            f"openclip:{arch}:/path/to/weights (without them the model would be random)"
        )
    if arch.endswith(".json"):
        _local_path(arch, "open_clip model config")
    return ModelSpec(kind, arch, spec, pretrained=pretrained, local=_local_path(pretrained, "weights file"))


def _looks_like_path(name: str) -> bool:
    """Hub names are ``name`` or ``org/name``; anything else with a separator is a path."""
    return (name.startswith(("/", "./", "../", "~", "."))
            or name.count("/") > 1 or "\\" in name or name.endswith("/")
            or Path(name).suffix.lower() in (".safetensors", ".pt", ".pth", ".bin", ".npz", ".json"))


def _local_path(name: str, what: str) -> Path | None:
    path = Path(name).expanduser()
    if path.exists():
        return path.resolve()
    if _looks_like_path(name):
        raise InputError(f"{what} {name} does not exist")
    return None


@contextlib.contextmanager
def offline(active: bool):
    """Forbid hub access while loading a local model (restores the caller's environment after);
    also hides transformers' per-tensor "Loading weights" bar, which is noise on our stderr."""
    bars = _transformers_bars()
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if active else ()
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    was_on = bars.is_progress_bar_enabled() if bars else False
    if was_on:
        bars.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            bars.enable_progress_bar()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _transformers_bars():
    try:
        from transformers.utils import logging as tlog
    except Exception:  # transformers absent (open_clip-only installs)
        return None
    return tlog if hasattr(tlog, "disable_progress_bar") else None


# --------------------------------------------------------------------------- layers
def parse_layers(text: str | int | list | tuple | None):
    """``None``/``"output"`` → the model's own embedding; ``"all"``; ``"-1"``; ``"0,3,6"`` → ints."""
    if text is None:
        return None
    if isinstance(text, int):
        return [text]
    if isinstance(text, (list, tuple)):
        return [int(v) for v in text]
    value = str(text).strip().lower()
    if value == "":  # `--layers ''` is a slip (an unset shell variable), not a request for the default
        raise InputError("layers '': empty; expected all, output, an index like -1, or a list like 0,3,6")
    if value == "output":
        return None
    if value == "all":
        return "all"
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"layers {text}: expected all, output, an index like -1, or a list like 0,3,6") from None


def resolve_layers(selection, n_layers: int, model: str) -> list[int] | None:
    """Turn a parsed selection into sorted, distinct, non-negative indices; range-checked."""
    if selection is None:
        return None
    if selection == "all":
        return list(range(n_layers))
    out = []
    for index in selection:
        if not -n_layers <= index < n_layers:
            raise InputError(
                f"layers {index}: out of range; {model} has {n_layers} hidden-state layers "
                f"(indices 0…{n_layers - 1} or -{n_layers}…-1)"
            )
        out.append(index % n_layers)
    if not out:
        raise InputError("layers: no layer selected")
    return sorted(set(out))


def layer_key(index: int | None) -> str:
    """Array name of one output: ``embeddings`` for the model's own output, else ``layer03``."""
    return "embeddings" if index is None else f"layer{index:02d}"

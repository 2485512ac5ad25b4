"""Hub names without a network: fail in seconds with a hint, never after a minute of retries.

transformers, sentence-transformers and open_clip retry a hub that does not answer (and,
offline, only give up after their timeouts). Before loading a hub name we decide once per
process whether the hub can be used: not when ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``
is set, nor when one short probe of the endpoint gets no answer. Then the model is loaded
from the local cache only, and a miss is one error that says to pass a local folder.
"""
from __future__ import annotations

import functools
import os
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import InputError

PROBE_TIMEOUT_S = 3.0
_TRUE = ("1", "true", "yes", "on")


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def offline_reason(spec) -> str | None:
    """Why a hub spec must be loaded from the local cache only; None when the hub can be used
    (or when ``spec`` names a local folder or file, which never touches the hub)."""
    if spec.local is not None:
        return None
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var} is set"
    if not hub_reachable(endpoint()):
        return f"the model hub ({endpoint()}) could not be reached (one probe, {PROBE_TIMEOUT_S:g} s timeout)"
    return None


@functools.lru_cache(maxsize=None)
def hub_reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """One HEAD request (through the user's proxy settings); any HTTP answer counts as reachable."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
        return True
    except urllib.error.HTTPError:
        return True  # the server answered (403/404/…): the network works
    except (OSError, ValueError):  # URLError, timeouts, DNS failures, a malformed HF_ENDPOINT
        return False


def not_cached(spec, reason: str) -> str:
    """The one-line error for a hub name that is neither reachable nor in the local cache."""
    example = f"openclip:{spec.name}:/path/to/weights" if spec.kind == "openclip" else f"{spec.kind}:./path/to/model"
    return (f"{spec.text}: {reason}, and the model is not in the local cache: pass a local folder or weights "
            f"file instead ({example}; e.g. `huggingface-cli download NAME --local-dir DIR` on a machine with "
            f"network), or run where the hub is reachable")


def require_available(spec) -> None:
    """Raise at once for a hub name that can be neither downloaded nor found in the local cache.

    Cheap (no torch, no model library): the CLI calls it before importing them, so the
    error comes in seconds. open_clip tags are left to the loader (their cache layout is
    open_clip's own); it loads them offline too when the hub is out of reach.
    """
    reason = offline_reason(spec)
    if reason is not None and spec.kind in ("hf", "st") and not in_local_cache(spec):
        raise InputError(not_cached(spec, reason))


def in_local_cache(spec) -> bool:
    """Whether a hub name has a snapshot in the Hugging Face cache (or sentence-transformers' old one)."""
    names = [spec.name]
    if spec.kind == "st" and "/" not in spec.name:  # st resolves bare names in its own organisation
        names.append(f"sentence-transformers/{spec.name}")
    for root in _cache_roots():
        for name in names:
            snapshots = root / f"models--{name.replace('/', '--')}" / "snapshots"
            if snapshots.is_dir() and any(snapshots.iterdir()):
                return True
    legacy = os.environ.get("SENTENCE_TRANSFORMERS_HOME")
    return bool(spec.kind == "st" and legacy and any((Path(legacy) / n.replace("/", "_")).is_dir() for n in names))


def _cache_roots() -> list[Path]:
    env = os.environ
    home = Path(env["HF_HOME"]) if env.get("HF_HOME") else \
        Path(env.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"
    roots = [env.get("HF_HUB_CACHE"), env.get("HUGGINGFACE_HUB_CACHE"), home / "hub"]
    return [Path(r).expanduser() for r in roots if r]

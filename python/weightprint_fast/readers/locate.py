"""From what a user types to a checkpoint on disk: paths, and Hugging Face Hub references.

``org/name``, ``org/name@revision`` and ``org/name[@revision]/file.gguf`` (one file of a
repository holding several) that are not existing paths are looked up in the Hugging Face cache
through huggingface_hub (its cache layout and environment: ``HF_HUB_CACHE``, the legacy
``HUGGINGFACE_HUB_CACHE``, ``HF_HOME``). Nothing is downloaded unless asked for
(``download=True``, the CLI's ``--download``), and then only weights, configuration and
tokenizer files. A model is named as the user typed it: the reference, or the path's name
(a file's stem).

Pickled checkpoints (``*.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``) are never unpickled: loading one
runs arbitrary code. They get an error that says how to convert them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional, Union

from ..errors import CheckpointNotFoundError, MissingExtraError, WeightprintFormatError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_REPO = r"[A-Za-z0-9][\w.-]*/[\w.-]+"
_HUB_REFERENCE = re.compile(
    rf"^(?P<repo>{_REPO})(?:@(?P<revision>[\w.-]+(?:/[\w.-]+)*?))?(?:/(?P<file>[^/@]+\.(?:gguf|safetensors)))?$"
)
# What --download fetches: weights, their index, configuration and tokenizer, nothing else.
DOWNLOAD_PATTERNS = [
    "*.safetensors",
    "*.safetensors.index.json",
    "*.gguf",
    "*.json",
    "vocab.txt",
    "tokenizer*",
]
CONVERT_HINT = (
    "weightprint reads safetensors and GGUF only and never unpickles (a pickle can run code). "
    'Convert it once, where you trust the file: python -c "import torch; '
    "from safetensors.torch import save_file; "
    "save_file(torch.load('IN', weights_only=True), 'model.safetensors')\" "
    "(or save_pretrained(..., safe_serialization=True) in transformers)"
)


def parse_reference(reference: str) -> Optional[tuple[str, Optional[str], Optional[str]]]:
    """(repository, revision or None, file or None) of a Hub reference; None if it is not one."""
    m = _HUB_REFERENCE.match(reference)
    if m is None:
        return None
    return m["repo"], m["revision"], m["file"]


def resolve_hub_reference(reference: str, download: bool = False) -> Path:
    """The snapshot directory (or the one file) of a Hub reference, from the local cache; with
    ``download``, fetched first (weights, configuration and tokenizer files only)."""
    parsed = parse_reference(reference)
    if parsed is None:
        raise CheckpointNotFoundError(f"{reference}: no such file or directory")
    repo, revision, file = parsed
    if revision is not None and (".." in revision.split("/") or revision.startswith("/")):
        raise CheckpointNotFoundError(
            f"{reference}: revision '{revision}' is not a branch, tag or commit name"
        )
    try:
        import huggingface_hub
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as e:  # a base dependency: only a broken install lacks it
        raise MissingExtraError("Hub references need huggingface_hub: pip install huggingface_hub") from e
    patterns = [file] if file else DOWNLOAD_PATTERNS
    try:
        snapshot = Path(
            huggingface_hub.snapshot_download(
                repo,
                revision=revision,
                local_files_only=not download,
                allow_patterns=patterns if download else None,
            )
        )
    except LocalEntryNotFoundError as e:
        raise CheckpointNotFoundError(
            f"{reference}: no such file or directory, and not in the Hugging Face cache "
            f"({huggingface_hub.constants.HF_HUB_CACHE}{_cached_refs(repo)}); "
            f"add --download (download=True) to fetch its weights, config and tokenizer"
        ) from e
    except (HfHubHTTPError, OSError, ValueError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointNotFoundError(
            f"{reference}: cannot fetch from the Hugging Face Hub: {message}"
        ) from e
    if file is None:
        return snapshot
    target = snapshot / file
    if not target.is_file():
        here = sorted(p.name for p in snapshot.glob("*.gguf")) + sorted(
            p.name for p in snapshot.glob("*.safetensors")
        )
        listing = ", ".join(here) or "no weight files"
        raise CheckpointNotFoundError(
            f"{reference}: no file '{file}' in the cached snapshot (it has: {listing})"
        )
    return target


def _cached_refs(repo: str) -> str:
    """ ", cached revisions: ..." for a repository the cache has, else ""."""
    from huggingface_hub import constants

    refs = Path(constants.HF_HUB_CACHE) / ("models--" + repo.replace("/", "--")) / "refs"
    known = sorted(p.name for p in refs.glob("*")) if refs.is_dir() else []
    return f"; cached revisions of {repo}: {', '.join(known)}" if known else ""


def refuse_pickles(path: Path) -> None:
    """Raises WeightprintFormatError for a pickle file, or a directory holding only pickles."""
    if path.is_file() and path.suffix.lower() in PICKLE_SUFFIXES:
        raise WeightprintFormatError(f"{path}: a pickled checkpoint. {CONVERT_HINT}")
    if path.is_dir() and not any(path.glob("*.safetensors")) and not any(path.glob("*.gguf")):
        pickles = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise WeightprintFormatError(
                f"{path}: only pickled checkpoints here ({', '.join(pickles[:4])}). {CONVERT_HINT}"
            )


def locate(path: Union[str, os.PathLike], download: bool = False) -> Path:
    """The checkpoint a user named: an existing path, or a Hugging Face Hub reference."""
    p = Path(path)
    if not p.exists():
        p = resolve_hub_reference(str(path), download)
    refuse_pickles(p)
    return p


def typed_name(path: Union[str, os.PathLike]) -> str:
    """The name a model is shown under: a Hub reference as typed, else the path's name (a
    file's stem, a directory's name)."""
    p = Path(path)
    if not p.exists() and parse_reference(str(path)) is not None:
        return str(path)
    p = p.resolve() if p.name in ("", ".", "..") else p
    return p.stem if p.is_file() else p.name

"""From what a user types to a checkpoint on disk: paths, and Hugging Face cache references.

``org/name`` or ``org/name@revision`` that is not an existing path is looked up offline in the
Hugging Face hub cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
``~/.cache/huggingface/hub``): ``models--org--name/refs/<revision>`` names a snapshot under
``snapshots/``; a revision may also be a commit hash. Nothing is downloaded.

Pickled checkpoints (``*.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``) are never unpickled: loading one
runs arbitrary code. They get an error that says how to convert them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Union

from ..errors import CheckpointNotFoundError, WeightprintFormatError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_HUB_REFERENCE = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")
CONVERT_HINT = (
    "weightprint reads safetensors and GGUF only and never unpickles (a pickle can run code). "
    'Convert it once, where you trust the file: python -c "import torch; '
    "from safetensors.torch import save_file; "
    "save_file(torch.load('IN', weights_only=True), 'model.safetensors')\" "
    "(or save_pretrained(..., safe_serialization=True) in transformers)"
)


def hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    return home / "hub"


def resolve_hub_reference(reference: str) -> Path:
    """The snapshot directory of ``org/name[@revision]`` in the local hub cache."""
    m = _HUB_REFERENCE.match(reference)
    if m is None:
        raise CheckpointNotFoundError(f"{reference}: no such file or directory")
    repo, revision = m["repo"], m["revision"] or "main"
    if ".." in revision.split("/") or revision.startswith("/"):
        raise CheckpointNotFoundError(
            f"{reference}: revision '{revision}' is not a branch, tag or commit name"
        )
    root = hub_cache() / ("models--" + repo.replace("/", "--"))
    if not root.is_dir():
        raise CheckpointNotFoundError(
            f"{reference}: no such file or directory, and not in the Hugging Face cache ({root} is missing; "
            f"weightprint does not download: fetch it with `huggingface-cli download {repo}`)"
        )
    ref = root / "refs" / revision
    commit = ref.read_text(encoding="utf-8").strip() if ref.is_file() else revision
    snapshot = root / "snapshots" / commit
    if not snapshot.is_dir():
        known = sorted(p.name for p in (root / "refs").glob("*")) if (root / "refs").is_dir() else []
        raise CheckpointNotFoundError(
            f"{reference}: revision '{revision}' is not in the Hugging Face cache at {root} "
            f"(cached refs: {', '.join(known) or 'none'})"
        )
    return snapshot


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


def locate(path: Union[str, os.PathLike]) -> Path:
    """The checkpoint a user named: an existing path, or a Hugging Face cache reference."""
    p = Path(path)
    if not p.exists():
        p = resolve_hub_reference(str(path))
    refuse_pickles(p)
    return p

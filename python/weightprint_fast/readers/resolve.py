"""The one checkpoint resolver: from what a user named to every file a fingerprint is computed
from. The readers open what it finds (files.py holds the rules: shards through the index, split
GGUF parts, the GGUF of a directory), and the store stamps exactly these files, so a changed
shard, split part or config is a changed checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from .files import PathLike, gguf_in, safetensors_files, safetensors_index, split_parts
from .locate import locate
from .lora import ADAPTER_CONFIG, ADAPTER_WEIGHTS, is_adapter
from .records import config_source
from .vocabulary import vocabulary_file


def checkpoint_files(path: PathLike) -> list[Path]:
    """Every file of the checkpoint at ``path`` (a path or a Hugging Face cache reference): its
    weight files (all shards, all split parts), the index naming them, and the config.json or
    adapter_config.json and the tokenizer file (tokenizer.json or vocab.txt) that the reader
    consults. Paths are as found (HF cache symlinks are not followed); raises the reader's error
    for a checkpoint it could not open."""
    p = locate(path)
    if is_adapter(p):
        return [p / ADAPTER_CONFIG, p / ADAPTER_WEIGHTS]
    weights = gguf_in(p) or p if p.is_dir() else p
    if weights.suffix.lower() == ".gguf":
        return split_parts(weights)
    index = safetensors_index(weights)
    files = safetensors_files(weights) + ([index] if index is not None else [])
    config = Path(config_source(weights))
    vocabulary = vocabulary_file(weights)
    extra = ([config] if config.is_file() else []) + ([vocabulary] if vocabulary is not None else [])
    return sorted(set(files + extra))

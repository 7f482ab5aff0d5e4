"""Readers: from a path to per-matrix records. Safetensors and GGUF checkpoints go through the
engine (``tensor_files``); PEFT LoRA adapters are measured from their factors (``lora``)."""

from __future__ import annotations

from ..settings import Settings
from .files import PathLike, open_gguf, open_shards, open_tensor_files
from .locate import locate
from .lora import is_adapter, read_adapter
from .records import MatrixRecord, SourceInfo
from .tensor_files import read_tensor_files


def read_checkpoint(path: PathLike, settings: Settings) -> tuple[list[MatrixRecord], SourceInfo]:
    """Records of every projection matrix of a safetensors checkpoint, GGUF file or LoRA adapter."""
    p = locate(path)
    if is_adapter(p):
        return read_adapter(p, settings.top_k, settings.name_patterns)
    return read_tensor_files(p, settings)


__all__ = ["MatrixRecord", "SourceInfo", "open_gguf", "open_shards", "open_tensor_files", "read_checkpoint"]

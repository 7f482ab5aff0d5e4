"""Readers: from a path (or a model in memory) to per-matrix records. Safetensors and GGUF
checkpoints go through the engine (``tensor_files``), in-memory models too, over their own
buffers (``memory``); PEFT LoRA adapters are measured from their factors (``lora``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from ..settings import Settings
from .files import open_gguf, open_shards, open_tensor_files
from .locate import locate, typed_name
from .lora import is_adapter, read_adapter
from .memory import is_in_memory, read_in_memory
from .records import MatrixRecord, SourceInfo
from .tensor_files import read_tensor_files


def read_checkpoint(
    path: Any, settings: Settings, config: Optional[Mapping] = None
) -> tuple[list[MatrixRecord], SourceInfo]:
    """Records of every projection matrix of a safetensors checkpoint, GGUF file, LoRA adapter,
    or in-memory model (readers/memory.py; ``config``: its configuration, if it has none)."""
    if is_in_memory(path):
        return read_in_memory(path, settings, config)
    p = locate(path, settings.download)
    records, info = (
        read_adapter(p, settings.top_k, settings.name_patterns)
        if is_adapter(p)
        else read_tensor_files(p, settings)
    )
    info.extra["name"] = typed_name(path)
    return records, info


__all__ = [
    "MatrixRecord",
    "SourceInfo",
    "is_in_memory",
    "open_gguf",
    "open_shards",
    "open_tensor_files",
    "read_checkpoint",
]

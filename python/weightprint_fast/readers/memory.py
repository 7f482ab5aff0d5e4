"""In-memory models through the same engine and the same verdicts: a mapping of tensor names to
numpy arrays or torch tensors (CPU; float32, float16, bfloat16, float64), a ``torch.nn.Module``
or transformers ``PreTrainedModel`` (configuration from ``model.config``), or a PEFT
``PeftModel`` (its LoRA deltas merged into copies of the adapted weights, the model untouched).

Each tensor becomes a one-tensor engine file over its own buffer (``_core.MemoryTensorFile``),
read in place: contiguous numpy arrays and CPU tensors are not copied (bfloat16 is passed as
its 16-bit patterns); a strided view is made contiguous first, the one copy. torch is never
imported unless a torch object is passed. The vocabulary, for the token probes, is read from
the directory ``config._name_or_path`` names, when it is one on this machine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import _core
from ..architecture import read_architecture
from ..engine.analyse import TensorFileSet
from ..errors import InputError
from ..settings import Settings
from .records import MatrixRecord, SourceInfo
from .tensor_files import plan_tensors, read_planned
from .vocabulary import read_vocabulary

_NUMPY_DTYPES = {
    "float32": "F32",
    "float16": "F16",
    "float64": "F64",
    "bfloat16": "BF16",  # ml_dtypes' bfloat16
    "int8": "I8",
    "uint8": "U8",
    "int16": "I16",
    "int32": "I32",
    "int64": "I64",
    "bool": "BOOL",
}


def is_in_memory(x: Any) -> bool:
    """Whether ``x`` is a model in memory rather than a path."""
    return not isinstance(x, (str, os.PathLike)) and (isinstance(x, Mapping) or hasattr(x, "state_dict"))


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _torch_buffer(name: str, t: Any) -> tuple[str, np.ndarray]:
    import torch

    t = t.detach()
    if t.device.type != "cpu":
        raise InputError(f"tensor '{name}' is on {t.device}: move the model to the CPU first (model.cpu())")
    if not t.is_contiguous():
        t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return "BF16", t.view(torch.int16).numpy()
    array = t.numpy() if t.dtype != torch.bool else t.numpy().view(np.uint8)
    return _numpy_dtype(name, array), array


def _numpy_dtype(name: str, array: np.ndarray) -> str:
    dtype = "BOOL" if array.dtype == np.bool_ else _NUMPY_DTYPES.get(array.dtype.name)
    if dtype is None:
        raise InputError(
            f"tensor '{name}' has dtype {array.dtype}, which no checkpoint stores "
            "(float32, float16, bfloat16, float64 or integers)"
        )
    return dtype


def _buffer(name: str, value: Any) -> tuple[str, tuple[int, ...], np.ndarray]:
    """(engine dtype name, shape, C-contiguous array over the tensor's bytes)."""
    if _is_torch(value):
        dtype, array = _torch_buffer(name, value)
        return dtype, tuple(value.shape), array
    if not isinstance(value, np.ndarray):
        raise InputError(f"tensor '{name}' is a {type(value).__name__}, not a numpy array or torch tensor")
    array = value if value.flags.c_contiguous else np.ascontiguousarray(value)
    dtype = _numpy_dtype(name, array)
    if dtype == "BF16":
        array = array.view(np.uint16)
    elif dtype == "BOOL":
        array = array.view(np.uint8)
    return dtype, tuple(value.shape), array


def _peft_merged(model: Any) -> dict[str, Any]:
    """A PeftModel's state with each adapted weight replaced by a copy with its delta merged
    (``get_delta_weight`` of every LoRA layer of the active adapter); names as the base model's."""
    adapter = getattr(model, "active_adapter", "default")
    adapter = adapter[0] if isinstance(adapter, (list, tuple)) else adapter
    state: dict[str, Any] = {}
    merged: dict[str, Any] = {}
    for module_name, module in model.named_modules():
        base = getattr(module, "base_layer", None)
        adapted = hasattr(module, "get_delta_weight") and adapter in getattr(module, "lora_A", {})
        if base is not None and adapted:
            delta = module.get_delta_weight(adapter)
            merged[module_name + ".base_layer.weight"] = base.weight.detach() + delta
    for key, value in model.state_dict().items():
        if ".lora_" in key:
            continue
        state[key] = merged.get(key, value)
    prefix = "base_model.model."
    return {k.removeprefix(prefix).replace(".base_layer.", "."): v for k, v in state.items()}


def _config(model: Any) -> dict:
    config = getattr(model, "config", None)
    if config is None:
        return {}
    if hasattr(config, "to_dict"):
        return dict(config.to_dict())
    return dict(config) if isinstance(config, Mapping) else {}


def in_memory_tensors(model: Any) -> tuple[dict[str, Any], dict, str]:
    """(name -> tensor, configuration, label) of an in-memory model."""
    if isinstance(model, Mapping):
        return dict(model), {}, "in-memory tensors"
    config = _config(model)
    label = str(config.get("_name_or_path") or type(model).__name__)
    if hasattr(model, "peft_config") and hasattr(model, "get_base_model"):
        base = _config(model.get_base_model())
        return _peft_merged(model), base, str(base.get("_name_or_path") or label) + " (LoRA merged)"
    return dict(model.state_dict()), config, label


def read_in_memory(
    model: Any, settings: Settings, config: Optional[Mapping] = None
) -> tuple[list[MatrixRecord], SourceInfo]:
    """Records of every projection matrix of an in-memory model (``config`` overrides the
    model's own configuration, e.g. for a bare mapping)."""
    tensors, own_config, label = in_memory_tensors(model)
    cfg = dict(config) if config is not None else own_config
    files, paths = [], []
    for name, value in tensors.items():
        dtype, shape, array = _buffer(name, value)
        files.append(_core.MemoryTensorFile(label, name, dtype, list(shape), array))
        paths.append(Path(label) / name)
    if not files:
        raise InputError(f"{label}: no tensors")
    shards = TensorFileSet(paths, files)
    arch = read_architecture(cfg, f"{label} (its config)")
    vocabulary = None
    where = Path(str(cfg.get("_name_or_path", "")))
    if settings.invariants and str(where) not in ("", ".") and where.is_dir():
        vocabulary = read_vocabulary(where, {}, False)
    plan = plan_tensors(shards, cfg, arch, {}, vocabulary, settings)
    records, info = read_planned(plan, label, label, settings)
    info.extra["name"] = label
    return records, info

"""In-memory models through the same engine and the same verdicts: a mapping of tensor names to
numpy arrays or torch tensors (CPU; float32, float16, bfloat16, float64), a ``torch.nn.Module``
or transformers ``PreTrainedModel`` (configuration from ``model.config``), or a PEFT
``PeftModel``: by default its LoRA deltas merged into copies of the adapted weights (the model
untouched); with ``Settings.peft = "adapter"`` the deltas alone, from its factors, as its saved
adapter directory is fingerprinted (readers/lora.py).

Each tensor becomes a one-tensor engine file over its own buffer (``_core.MemoryTensorFile``),
read in place: contiguous numpy arrays and CPU tensors are not copied (bfloat16 is passed as
its 16-bit patterns); a strided view is made contiguous first, the one copy. torch is never
imported unless a torch object is passed. The vocabulary, for the token probes, is read from
the directory ``config._name_or_path`` names, when it is one on this machine.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import _core
from ..architecture import read_architecture
from ..engine.analyse import TensorFileSet
from ..errors import InputError
from ..settings import Settings
from .lora import adapter_records
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


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def _active_adapter(model: Any) -> str:
    adapter = getattr(model, "active_adapter", "default")
    return adapter[0] if isinstance(adapter, (list, tuple)) else adapter


def _lora_modules(model: Any, adapter: str):
    """(name of the adapted weight as the base model's, LoRA layer) for every layer of ``adapter``."""
    for module_name, module in model.named_modules():
        if hasattr(module, "get_delta_weight") and adapter in getattr(module, "lora_A", {}):
            yield module_name.removeprefix("base_model.model.") + ".weight", module


def read_peft_adapter(model: Any, settings: Settings) -> tuple[list[MatrixRecord], SourceInfo]:
    """Records of a PEFT model's LoRA deltas, from its factors and each layer's own scale."""
    adapter = _active_adapter(model)
    config = model.peft_config[adapter]
    base = _config(model.get_base_model())
    label = str(getattr(config, "base_model_name_or_path", None) or base.get("_name_or_path") or "lora")
    factors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    scales: dict[str, float] = {}
    dtypes: Counter[str] = Counter()
    for name, module in _lora_modules(model, adapter):
        if getattr(module, "use_dora", {}).get(adapter):
            raise InputError(
                f"{label}: '{name}' is a DoRA layer, whose delta is not B @ A; "
                "fingerprint it with peft='merged'"
            )
        a, b = module.lora_A[adapter].weight, module.lora_B[adapter].weight
        dtypes.update([str(a.dtype).removeprefix("torch."), str(b.dtype).removeprefix("torch.")])
        factors[name] = (a.detach().cpu().double().numpy(), b.detach().cpu().double().numpy())
        scales[name] = float(module.scaling[adapter])
    if not factors:
        raise InputError(f"{label}: the PEFT model has no LoRA layers of its adapter '{adapter}'")
    records, families = adapter_records(
        factors,
        lambda name, _rank: scales[name],
        bool(getattr(config, "fan_in_fan_out", False)),
        settings.top_k,
        settings.name_patterns,
        base,
        f"{label} (PEFT adapter '{adapter}')",
    )
    info = SourceInfo(
        f"{label} (LoRA adapter '{adapter}')",
        "lora",
        label,
        families,
        sum(a.size + b.size for a, b in factors.values()),
        dict(dtypes),
        {
            "rank": getattr(config, "r", None),
            "lora_alpha": getattr(config, "lora_alpha", None),
            "modules": len(factors),
        },
    )
    info.extra["name"] = info.source
    return records, info


def _peft_merged(model: Any) -> dict[str, Any]:
    """A PeftModel's state with each adapted weight replaced by a copy with its delta merged
    (``get_delta_weight`` of every LoRA layer of the active adapter); names as the base model's."""
    adapter = _active_adapter(model)
    merged = {
        name: module.base_layer.weight.detach() + module.get_delta_weight(adapter)
        for name, module in _lora_modules(model, adapter)
        if getattr(module, "base_layer", None) is not None
    }
    prefix = "base_model.model."
    state = {
        key.removeprefix(prefix).replace(".base_layer.", "."): value
        for key, value in model.state_dict().items()
        if ".lora_" not in key
    }
    return {name: merged.get(name, value) for name, value in state.items()}


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
    if _is_peft(model):
        base = _config(model.get_base_model())
        return _peft_merged(model), base, str(base.get("_name_or_path") or label) + " (LoRA merged)"
    return dict(model.state_dict()), config, label


def read_in_memory(
    model: Any, settings: Settings, config: Optional[Mapping] = None
) -> tuple[list[MatrixRecord], SourceInfo]:
    """Records of every projection matrix of an in-memory model (``config`` overrides the
    model's own configuration, e.g. for a bare mapping)."""
    if settings.peft == "adapter":
        if not _is_peft(model):
            raise InputError(f"peft='adapter' needs a PEFT model, not a {type(model).__name__}")
        return read_peft_adapter(model, settings)
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

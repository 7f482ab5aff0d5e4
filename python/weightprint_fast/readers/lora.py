"""PEFT LoRA adapters, fingerprinted through their deltas dW = scale * B @ A without forming them.

For A (r x n) and B (m x r): sum(dW) = scale (1^T B)(A 1) and sum(dW^2) = scale^2
trace((B^T B)(A A^T)) give the exact mean and std in O((m + n) r^2); the singular values of dW
are those of the r x r matrix R_B R_A^T (QR of B and of A^T), times scale. Skewness, kurtosis,
minimum and maximum would need the dense delta and are reported as NaN.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Optional

import numpy as np
import scipy.linalg

from ..architecture import read_architecture
from ..engine import Moments
from ..errors import ConfigError, WeightprintFormatError
from ..naming import map_tensors, part_indices
from .files import open_shards, read_json
from .records import MatrixRecord, SourceInfo

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_LORA_NAME = re.compile(r"^(?P<module>.+)\.lora_(?P<which>[AB])(?:\.[^.]+)?\.weight$")


def is_adapter(path: Path) -> bool:
    return path.is_dir() and (path / ADAPTER_CONFIG).is_file()


def delta_moments(a: np.ndarray, b: np.ndarray, scale: float) -> Moments:
    """Count, mean and m2 of scale * b @ a, exactly, without forming it; the higher sums and the
    extremes are unknown (NaN)."""
    m, n = b.shape[0], a.shape[1]
    count = m * n
    total = scale * float(b.sum(axis=0) @ a.sum(axis=1))
    sumsq = scale * scale * float(np.sum((b.T @ b) * (a @ a.T)))
    nan = math.nan
    return Moments(
        count=count,
        mean=total / count,
        m2=max(0.0, sumsq - total * total / count),
        m3=nan,
        m4=nan,
        min=nan,
        max=nan,
    )


def delta_singular_values(a: np.ndarray, b: np.ndarray, scale: float, k: int) -> np.ndarray:
    """Top-k singular values of scale * b @ a (descending), exactly, from two thin QRs."""
    # scipy returns the full R; its first min(m, n) rows are the thin one.
    rb = scipy.linalg.qr(b, mode="r")[0][: min(b.shape)]
    ra = scipy.linalg.qr(a.T, mode="r")[0][: min(a.shape)]
    s = np.linalg.svd(rb @ ra.T, compute_uv=False) * abs(scale)
    return s[: min(k, b.shape[0], a.shape[1])]


def _scale(config: Mapping, module: str, rank: int, source: Path) -> float:
    """The adapter's scale for one module: alpha / r (alpha / sqrt(r) with rsLoRA), with
    ``alpha_pattern`` overrides; a value that is not a finite number is a ConfigError."""
    alpha, key = config.get("lora_alpha", rank), "lora_alpha"
    patterns = config.get("alpha_pattern") or {}
    if not isinstance(patterns, Mapping):
        raise ConfigError(f"{source}: 'alpha_pattern' is {patterns!r}; expected an object")
    for pattern, value in patterns.items():
        try:
            if re.search(pattern, module):
                alpha, key = value, f"alpha_pattern[{pattern!r}]"
        except re.error as e:
            raise ConfigError(
                f"{source}: 'alpha_pattern' key {pattern!r} is not a regular expression: {e}"
            ) from e
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise ConfigError(f"{source}: '{key}' is {alpha!r}; expected a finite number")
    return float(alpha) / (math.sqrt(rank) if config.get("use_rslora") else rank)


def read_adapter(
    path: Path,
    top_k: int,
    name_patterns: Optional[Mapping[str, str]] = None,
    base_config: Optional[Mapping] = None,
) -> tuple[list, SourceInfo]:
    """Records of every LoRA-adapted projection of a PEFT adapter directory."""
    config = read_json(path / ADAPTER_CONFIG, "adapter config")
    if not isinstance(config, dict):
        raise ConfigError(f"{path / ADAPTER_CONFIG}: the adapter config is not a JSON object")
    weights = path / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise WeightprintFormatError(
            f"{path}: no adapter_model.safetensors (only safetensors adapters are read)"
        )
    f = open_shards(weights)
    by_name = {t.name: t for t in f.tensors}
    pairs: dict[str, dict[str, str]] = {}
    for t in f.tensors:
        m = _LORA_NAME.match(t.name)
        if m:
            pairs.setdefault(m["module"], {})[m["which"]] = t.name
    incomplete = [mod for mod, ab in pairs.items() if len(ab) != 2]
    if incomplete:
        raise WeightprintFormatError(f"{weights}: module '{incomplete[0]}' has lora_A or lora_B but not both")
    if not pairs:
        raise WeightprintFormatError(f"{weights}: no lora_A/lora_B tensors found")
    transposed = bool(config.get("fan_in_fan_out"))
    factors, modules = {}, {}
    for module, ab in pairs.items():
        name = module.removeprefix("base_model.model.") + ".weight"
        factors[name] = (f.read(by_name[ab["A"]]), f.read(by_name[ab["B"]]))
        modules[name] = module
    records, families = adapter_records(
        factors,
        lambda name, rank: _scale(config, modules[name], rank, path / ADAPTER_CONFIG),
        transposed,
        top_k,
        name_patterns,
        base_config or {},
        str(weights),
    )
    info = SourceInfo(
        str(path),
        "lora",
        str(config.get("base_model_name_or_path") or "lora"),
        families,
        sum(math.prod(t.shape) for t in f.tensors),
        dict(Counter(t.dtype for t in f.tensors)),
        {"rank": config.get("r"), "lora_alpha": config.get("lora_alpha"), "modules": len(pairs)},
    )
    return records, info


def adapter_records(
    factors: Mapping[str, tuple[np.ndarray, np.ndarray]],
    scale_of: Callable[[str, int], float],
    transposed: bool,
    top_k: int,
    name_patterns: Optional[Mapping[str, str]],
    base_config: Mapping,
    where: str,
) -> tuple[list[MatrixRecord], list[str]]:
    """Records of LoRA deltas, one per projection part, and the naming families they matched.
    ``factors``: adapted weight name (as the base model's) -> (A (r x in), B (out x r));
    ``scale_of(name, r)``: the scale of its delta; ``transposed``: the base stores its weights
    (in x out) (PEFT's ``fan_in_fan_out``)."""
    shapes, scales = [], {}
    for name, (a, b) in factors.items():
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise WeightprintFormatError(
                f"{where}: module '{name.removesuffix('.weight')}': lora_A {a.shape} and lora_B {b.shape} "
                "do not chain"
            )
        shapes.append((name, (a.shape[1], b.shape[0]) if transposed else (b.shape[0], a.shape[1])))
        scales[name] = scale_of(name, a.shape[0])
    mapped = map_tensors(shapes, read_architecture(base_config, f"{where} (base config)"), name_patterns)
    records = []
    for mt in mapped:
        (a, b), scale = factors[mt.name], scales[mt.name]
        for part in mt.parts:
            rows, cols = part_indices(part, mt.shape)
            # dW is stored (out x in); a transposed (Conv1D) part's rows are dW's columns.
            out_idx, in_idx = (cols, rows) if part.transposed else (rows, cols)
            bs, as_ = b[out_idx], a[:, in_idx]
            records.append(
                MatrixRecord(
                    part.layer,
                    part.type,
                    mt.name,
                    (len(out_idx), len(in_idx)),
                    delta_moments(as_, bs, scale),
                    delta_singular_values(as_, bs, scale, top_k),
                    None,
                    part.expert,
                )
            )
    return records, sorted({m.family for m in mapped})

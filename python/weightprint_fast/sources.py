"""Reading a checkpoint into per-matrix measurements: safetensors, GGUF and PEFT LoRA adapters.

Whatever the source, the result is a list of :class:`MatrixRecord` (one per projection matrix:
its layer, type, moments and top singular values) plus a description of the source. The
vectors are computed from these records alone (see ``vectors.py``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from . import _core
from ._native import WeightprintFormatError, engine
from .kernels import matrix_stats, top_singular_values
from .locate import locate
from .invariants import (AttentionGeometry, attention_geometry, gram_layout, has_qk_norm, norm_role,
                         norm_tensors)
from .naming import MappedTensor, Part, map_tensors
from .safetensors_files import PathLike, open_shards
from .scan import FLOAT_DTYPES, Window, analyse, progress_bar, usable_cores


@dataclass
class MatrixRecord:
    """Measurements of one projection matrix. ``stats`` as :func:`matrix_stats` returns them."""

    layer: int
    type: str
    tensor: str
    shape: tuple[int, int]
    stats: dict
    singular_values: Optional[np.ndarray]  # descending, up to top_k values
    error: Optional[str] = None  # why singular values are missing
    expert: Optional[int] = None
    gram: Optional[np.ndarray] = None  # diagonal Gram blocks for the lineage invariants (invariants.py)


@dataclass
class SourceInfo:
    source: str
    format: str  # "safetensors", "gguf" or "lora"
    architecture: str
    families: list[str]
    parameters: int  # elements in all tensors of the checkpoint
    dtypes: dict[str, int] = field(default_factory=dict)  # dtype -> number of tensors
    extra: dict = field(default_factory=dict)
    geometry: Optional[AttentionGeometry] = None  # head layout, where the config gives it
    qk_norm: bool = False  # query/key normalization (per-head QK scale is then free)
    norms_folded: bool = False  # norm weights folded into the invariants' Gram blocks


def read_config(path: Path) -> dict:
    """config.json beside the weights (in the directory, or beside a single file), else {}."""
    d = path if path.is_dir() else path.parent
    cfg = d / "config.json"
    if not cfg.is_file():
        return {}
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightprintFormatError(f"{cfg}: cannot read config: {e}") from e
    return data if isinstance(data, dict) else {}


def _architecture(config: Mapping, families: list[str]) -> str:
    arch = config.get("model_type") or config.get("general.architecture")
    if arch:
        return str(arch)
    archs = config.get("architectures")
    if isinstance(archs, list) and archs:
        return str(archs[0])
    return families[0] if families else "unknown"


def part_shape(part: Part, shape: Sequence[int]) -> tuple[int, int]:
    """(rows, columns) of one part's matrix inside a stored tensor of the given (rows, columns)."""
    rows = part.rows if part.rows is not None else shape[0] - part.row_start
    cols = part.cols if part.cols is not None else shape[1] - part.col_start
    return rows, cols


def part_indices(part: Part, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices, in the stored tensor, of one part's matrix."""
    n_rows, n_cols = part_shape(part, shape)
    i = np.arange(n_rows)
    if part.group_rows:
        rows = part.row_start + (i // part.group_rows) * part.group_stride + i % part.group_rows
    else:
        rows = part.row_start + i
    return rows, part.col_start + np.arange(n_cols)


def _window(mt: MappedTensor, part: Part, tensor, top_k: int) -> Window:
    r, c = mt.shape[-2:]
    rows, cols = part_shape(part, (r, c))
    stacked = len(mt.shape) == 3 and part.expert is not None
    offset = (part.expert if stacked else 0) * r * c + part.row_start * c + part.col_start
    return Window(tensor, rows, cols, offset=offset, row_stride=c, k=top_k,
                  group_rows=part.group_rows, group_stride=part.group_stride * c)


@dataclass
class LineagePlan:
    """Which Gram blocks each projection part contributes to the lineage invariants."""

    geometry: Optional[AttentionGeometry]
    norms: dict  # (layer, role) -> norm weights (float64), already offset
    qk_norm: bool
    enabled: bool = True

    def spec(self, part: Part, rows: int, cols: int) -> Optional[_core.BlockGramSpec]:
        """The engine's Gram request for one part stored as rows x cols (None: not wanted)."""
        layout = gram_layout(part.type, self.geometry) if part.expert is None and self.enabled else None
        if layout is None:
            return None
        block, columns = layout
        # Transposed (Conv1D) storage holds the matrix's rows as columns.
        columns = columns != part.transposed
        role = norm_role(part.type)
        weights = self.norms.get((part.layer, role)) if role else None
        summed = rows if columns else cols
        if weights is None or len(weights) != summed:
            weights = []
        if (cols if columns else rows) % block:
            return None
        return _core.BlockGramSpec(block, columns, list(weights))


def plan_lineage(mapped: list[MappedTensor], names: list[str], config: Mapping, read_vector,
                 enabled: bool = True) -> LineagePlan:
    """The invariants' plan: head layout from the config and the q/k shapes, and the norm
    weights (read with ``read_vector(name) -> 1-D array``) to fold. Disabled: nothing wanted."""
    if not enabled:
        return LineagePlan(None, {}, False, enabled=False)
    def logical(kind: str):
        for mt in mapped:
            for p in mt.parts:
                if p.type == kind and p.expert is None:
                    rows, cols = part_shape(p, mt.shape[-2:])
                    return (cols, rows) if p.transposed else (rows, cols)
        return None

    geometry = attention_geometry(config, logical("q"), logical("k"))
    family = mapped[0].family if mapped else ""
    norms = {key: np.asarray(read_vector(name), dtype=np.float64).ravel() + offset
             for key, (name, offset) in norm_tensors(names, family, config).items()}
    return LineagePlan(geometry, norms, has_qk_norm(names))


@dataclass(frozen=True)
class ReadSettings:
    """What a reader measures of each projection matrix, and how."""

    top_k: int  # singular values per matrix
    threads: Optional[int] = None  # engine threads (None: usable cores)
    method: str = "auto"  # singular-value method
    tol: float = 1e-3  # relative error auto certifies
    name_patterns: Optional[Mapping[str, str]] = None  # extra naming rules
    progress: bool = False  # a progress bar on stderr
    invariants: bool = True  # the lineage invariants' Gram blocks (invariants.py)


def read_safetensors(path: Path, settings: ReadSettings) -> tuple[list, SourceInfo]:
    shards = open_shards(path)
    config = read_config(path)
    by_name = {t.name: t for t in shards.tensors}
    mapped = map_tensors([(t.name, t.shape) for t in shards.tensors if t.dtype in FLOAT_DTYPES], config,
                         settings.name_patterns)
    plan = plan_lineage(mapped, list(by_name), config, lambda name: shards.files[by_name[name].shard].read(name),
                        settings.invariants)
    windows, owners = [], []
    for mt in mapped:
        for part in mt.parts:
            w = _window(mt, part, by_name[mt.name], settings.top_k)
            windows.append(replace(w, gram=plan.spec(part, w.rows, w.cols)))
            owners.append((mt, part))
    bar = progress_bar(path.name) if settings.progress else None
    try:
        results = analyse(shards, windows, threads=settings.threads, method=settings.method, tol=settings.tol,
                          progress=bar)
    finally:
        if bar is not None:
            bar.close()
    records = [
        MatrixRecord(part.layer, part.type, mt.name, (w.rows, w.cols), r.stats, r.singular_values, r.error, part.expert,
                     r.gram)
        for (mt, part), w, r in zip(owners, windows, results)
    ]
    families = sorted({mt.family for mt in mapped})
    info = SourceInfo(str(path), "safetensors", _architecture(config, families), families,
                      sum(math.prod(t.shape) for t in shards.tensors), dict(Counter(t.dtype for t in shards.tensors)),
                      {"shards": len(shards.paths)}, plan.geometry, plan.qk_norm, bool(plan.norms))
    return records, info



def _measure_dense(a: np.ndarray, top_k: int, method: str, tol: float,
                   threads: int) -> tuple[dict, Optional[np.ndarray], Optional[str]]:
    stats = matrix_stats(a, threads=threads)
    if stats["nan"] or stats["inf"]:
        return stats, None, "matrix holds NaN or Inf values; singular values are undefined"
    return stats, top_singular_values(a, top_k, method, tol=tol, threads=threads), None


def read_gguf(path: Path, settings: ReadSettings) -> tuple[list, SourceInfo]:
    try:
        import gguf
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading GGUF needs the 'gguf' package: pip install 'weightprint-fast[gguf]'") from e
    try:
        reader = gguf.GGUFReader(str(path))
    except (ValueError, OSError, IndexError, KeyError) as e:
        raise WeightprintFormatError(f"{path}: not a readable GGUF file: {e}") from e
    meta = {}
    for key, f in reader.fields.items():
        if f.types and f.types[0] in (gguf.GGUFValueType.STRING,):
            meta[key] = bytes(f.parts[f.data[0]]).decode("utf-8", "replace")
        elif len(f.data) == 1 and f.types and f.types[0] != gguf.GGUFValueType.ARRAY:
            meta[key] = f.parts[f.data[0]].tolist()[0]
    arch = meta.get("general.architecture", "unknown")
    config = {k[len(arch) + 1:]: v for k, v in meta.items() if k.startswith(arch + ".")}
    config["general.architecture"] = arch
    tensors = {t.name: t for t in reader.tensors}
    # GGUF lists dimensions fastest-first; numpy order is the reverse.
    shapes = [(t.name, tuple(int(x) for x in reversed(t.shape.tolist()))) for t in reader.tensors]
    mapped = map_tensors(shapes, config, settings.name_patterns)
    threads = settings.threads or usable_cores()
    plan = plan_lineage(mapped, list(tensors), config,
                        lambda name: gguf.quants.dequantize(tensors[name].data, tensors[name].tensor_type),
                        settings.invariants)
    records = []
    iterator = mapped
    if settings.progress:
        from tqdm.auto import tqdm

        iterator = tqdm(mapped, desc=path.name, unit="tensor", leave=False, delay=0.5)
    for mt in iterator:
        t = tensors[mt.name]
        try:
            data = gguf.quants.dequantize(t.data, t.tensor_type)
        except NotImplementedError as e:
            raise WeightprintFormatError(
                f"{path}: tensor '{mt.name}': unsupported quantization {t.tensor_type.name}"
            ) from e
        data = np.asarray(data, dtype=np.float32).reshape(mt.shape)
        for part in mt.parts:
            a = data[part.expert] if data.ndim == 3 else data
            rows, cols = part_indices(part, a.shape)
            sub = a[np.ix_(rows, cols)] if (len(rows), len(cols)) != a.shape else a
            stats, sv, err = _measure_dense(sub, settings.top_k, settings.method, settings.tol, threads)
            spec = plan.spec(part, *sub.shape)
            gram = None
            if spec is not None and err is None:
                sub = np.ascontiguousarray(sub)
                gram = engine().block_gram(sub, "F32", sub.shape[0], sub.shape[1], spec, threads)
            records.append(MatrixRecord(part.layer, part.type, mt.name, sub.shape, stats, sv, err, part.expert, gram))
    info = SourceInfo(str(path), "gguf", arch, sorted({m.family for m in mapped}),
                      sum(int(t.n_elements) for t in reader.tensors), dict(Counter(t.tensor_type.name for t in reader.tensors)),
                      {"name": meta.get("general.name")}, plan.geometry, plan.qk_norm, bool(plan.norms))
    return records, info


def read_checkpoint(path: PathLike, settings: ReadSettings) -> tuple[list, SourceInfo]:
    """Records of every projection matrix of a safetensors checkpoint, GGUF file or LoRA adapter."""
    from .lora import is_adapter, read_adapter

    p = locate(path)
    if is_adapter(p):
        return read_adapter(p, settings.top_k, settings.name_patterns)
    if p.suffix.lower() == ".gguf":
        return read_gguf(p, settings)
    return read_safetensors(p, settings)

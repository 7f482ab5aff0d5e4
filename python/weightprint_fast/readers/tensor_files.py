"""Safetensors and GGUF checkpoints: every projection matrix measured in one engine call.

The tensors' names map to (layer, projection type) parts (``naming.py``); each part becomes a
window of its tensor, with the lineage invariants' Gram blocks where they apply
(``invariants.py``); the engine decodes each window tile by tile, whatever its format and dtype.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np

from ..architecture import Architecture, AttentionGeometry, gguf_config, norm_layout, read_architecture
from ..engine import BlockGramSpec, ProbeSpec
from ..engine.analyse import Beside, TensorFileSet, Window, analyse
from ..engine.progress import progress_bar, show_progress
from ..invariants import gram_layout, norm_role, norm_tensors
from ..naming import MappedTensor, Part, embedding_tensor, map_tensors, part_shape
from ..probes import READERS, WRITERS, anchor_ids, unit_rows
from ..settings import Settings
from ..sketches import SKETCH_BUCKETS
from .files import open_tensor_files
from .records import MatrixRecord, SourceInfo, config_source, read_config
from .vocabulary import Vocabulary, read_vocabulary, summarize


def _architecture(arch: Architecture, config: Mapping, families: list[str]) -> str:
    if arch.model_type:
        return arch.model_type
    archs = config.get("architectures")
    if isinstance(archs, list) and archs:
        return str(archs[0])
    return families[0] if families else "unknown"


def _window(mt: MappedTensor, part: Part, tensor, top_k: int) -> Window:
    r, c = mt.shape[-2:]
    rows, cols = part_shape(part, (r, c))
    expert = part.expert if len(mt.shape) == 3 and part.expert is not None else 0  # stacked experts
    offset = expert * r * c + part.row_start * c + part.col_start
    return Window(
        tensor,
        rows,
        cols,
        offset=offset,
        row_stride=c,
        k=top_k,
        group_rows=part.group_rows,
        group_stride=part.group_stride * c,
    )


@dataclass
class LineagePlan:
    """Which Gram blocks each projection part contributes to the lineage invariants."""

    geometry: Optional[AttentionGeometry]
    norms: dict  # (layer, role) -> norm weights (float64), already offset
    qk_norm: bool
    sandwich_norms: bool = False
    enabled: bool = True
    words: tuple[str, ...] = ()  # the anchor words probed (probes.py)
    probes: Optional[np.ndarray] = None  # their unit embedding rows, (words, residual width)

    def spec(self, part: Part, rows: int, cols: int) -> Optional[BlockGramSpec]:
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
        return BlockGramSpec(block, columns, list(weights))

    def probe(self, part: Part) -> Optional[ProbeSpec]:
        """The engine's probe request for one part (None: not wanted). Readers are probed on their
        input side (the probes times the input norm's weights), writers on their output side;
        transposed (Conv1D) storage swaps the sides, and the record transposes the result back."""
        p = self.probes
        if p is None or part.expert is not None or part.type not in READERS + WRITERS:
            return None
        if part.type in READERS:
            weights = self.norms.get((part.layer, norm_role(part.type) or ""))
            if weights is not None and len(weights) == p.shape[1]:
                p = p * weights
        return ProbeSpec(np.ascontiguousarray(p), columns=(part.type in WRITERS) != part.transposed)


def plan_lineage(
    mapped: list[MappedTensor],
    sizes: Mapping[str, int],
    arch: Architecture,
    read_vector,
    enabled: bool = True,
    read_anchors=None,
) -> LineagePlan:
    """The invariants' plan: head layout from the architecture and the q/k shapes, and the norm
    weights to fold: of the tensors (name -> element count in ``sizes``), those that are norms of
    the residual width, read with ``read_vector(name) -> 1-D array``; a "norm" of any other size
    is not read (a file could hold a huge one); ``read_anchors(width) -> (words, rows) | None``
    the anchor words' embedding rows. Disabled: nothing wanted."""
    if not enabled:
        return LineagePlan(None, {}, False, False, enabled=False)

    def logical(kind: str):
        for mt in mapped:
            for p in mt.parts:
                if p.type == kind and p.expert is None:
                    rows, cols = part_shape(p, mt.shape[-2:])
                    return (cols, rows) if p.transposed else (rows, cols)
        return None

    q = logical("q")
    geometry = arch.geometry(q, logical("k"))
    names = list(sizes)
    layout = norm_layout(names, arch, sorted({mt.family for mt in mapped}))
    norms = {
        key: np.asarray(read_vector(name), dtype=np.float64).ravel() + offset
        for key, (name, offset) in norm_tensors(names, arch, layout).items()
        if q is not None and sizes[name] == q[1]
    }
    plan = LineagePlan(geometry, norms, layout.qk_norm, layout.placement == "sandwich")
    found = read_anchors(q[1]) if q is not None and read_anchors is not None else None
    return plan if found is None else replace(plan, words=tuple(found[0]), probes=unit_rows(found[1]))


@dataclass
class CheckpointPlan:
    """A checkpoint opened and planned: its files, config, and one engine window per projection
    part, with the part each window measures."""

    shards: TensorFileSet
    config: dict
    architecture: Architecture
    metadata: Mapping
    lineage: LineagePlan
    windows: list[Window]
    parts: list[tuple[MappedTensor, Part]]
    vocabulary: Optional[Vocabulary] = None


def plan_checkpoint(path: Path, settings: Settings) -> CheckpointPlan:
    """Opens a safetensors or GGUF checkpoint and plans its engine windows."""
    shards = open_tensor_files(path)
    gguf = shards.format == "gguf"
    metadata = shards.files[0].metadata if gguf else {}
    config = gguf_config(metadata) if gguf else read_config(path)
    arch = read_architecture(config, f"{shards.paths[0]} (GGUF metadata)" if gguf else config_source(path))
    vocabulary = read_vocabulary(path, metadata, gguf) if settings.invariants else None
    return plan_tensors(shards, config, arch, metadata, vocabulary, settings)


def plan_tensors(
    shards: TensorFileSet,
    config: dict,
    arch: Architecture,
    metadata: Mapping,
    vocabulary: Optional[Vocabulary],
    settings: Settings,
) -> CheckpointPlan:
    """Plans the engine windows of opened tensors (a checkpoint's files, or an in-memory model's
    buffers) with their configuration and vocabulary."""
    by_name = {t.name: t for t in shards.tensors}
    # Quantized types without a decoder are mapped too, so that the engine names them in its error.
    mapped = map_tensors(
        [(t.name, t.shape) for t in shards.tensors if t.analysed or t.quantized],
        arch,
        settings.name_patterns,
    )

    def read_anchors(width: int) -> Optional[tuple[list[str], np.ndarray]]:
        embedding = embedding_tensor([(t.name, t.shape) for t in shards.tensors if t.analysed], width)
        if embedding is None or vocabulary is None:
            return None
        vocab_rows = by_name[embedding].shape[0]
        ids = {w: i for w, i in anchor_ids(vocabulary.tokens, vocabulary.wordpiece).items() if i < vocab_rows}
        if not ids:
            return None
        rows = shards.read_rows(by_name[embedding], list(ids.values()))
        # An anchor whose row is not finite, or zero, cannot probe anything: it is left out.
        usable = np.isfinite(rows).all(axis=1) & (np.abs(rows).sum(axis=1) > 0)
        return ([w for w, ok in zip(ids, usable) if ok], rows[usable]) if usable.any() else None

    plan = plan_lineage(
        mapped,
        {n: math.prod(t.shape) for n, t in by_name.items()},
        arch,
        lambda name: shards.read(by_name[name]),
        settings.invariants,
        read_anchors,
    )
    windows, parts = [], []
    for mt in mapped:
        for part in mt.parts:
            w = _window(mt, part, by_name[mt.name], settings.top_k)
            sketch = SKETCH_BUCKETS if plan.enabled and part.expert is None else 0
            windows.append(
                replace(w, gram=plan.spec(part, w.rows, w.cols), probe=plan.probe(part), sketch=sketch)
            )
            parts.append((mt, part))
    return CheckpointPlan(shards, config, arch, metadata, plan, windows, parts, vocabulary)


def read_tensor_files(path: Path, settings: Settings) -> tuple[list[MatrixRecord], SourceInfo]:
    """Records of every projection matrix of a safetensors or GGUF checkpoint."""
    return read_planned(plan_checkpoint(path, settings), str(path), path.name, settings)


def read_planned(
    cp: CheckpointPlan, source: str, label: str, settings: Settings
) -> tuple[list[MatrixRecord], SourceInfo]:
    """Runs a plan through the engine: the records of every projection matrix, and what the
    fingerprint records of their source (``source``; ``label`` names the progress bar)."""
    shards, windows, plan, metadata, config = cp.shards, cp.windows, cp.lineage, cp.metadata, cp.config
    mapped = [mt for mt, _ in cp.parts]
    bar = progress_bar(label) if show_progress(settings.progress) else None
    # The vocabulary's summary (a hash of every token: 0.16 s for 49k tokens) needs no weights:
    # it runs beside the engine instead of after it.
    summary = None if cp.vocabulary is None else Beside(summarize, cp.vocabulary)
    try:
        results = analyse(
            shards, windows, threads=settings.threads, method=settings.method, tol=settings.tol, progress=bar
        )
    finally:
        if bar is not None:
            bar.close()
    records = []
    for (mt, part), w, r in zip(cp.parts, windows, results):
        assert r.moments is not None  # every window asks for moments
        svd = None if r.svd is None else r.svd.values
        probe = None if r.probe is None else (r.probe.T if part.transposed else r.probe)
        records.append(
            MatrixRecord(
                part.layer,
                part.type,
                mt.name,
                (w.rows, w.cols),
                r.moments,
                svd,
                r.error,
                part.expert,
                r.gram,
                probe,
                r.sketch,
            )
        )
    families = sorted({mt.family for mt in mapped})
    extra: dict = (
        {"gguf_name": metadata.get("general.name"), "files": len(shards.paths)}
        if shards.format == "gguf"
        else {"shards": len(shards.paths)}
    )
    if summary is not None:
        extra["vocabulary"] = summary.result()
    info = SourceInfo(
        source,
        shards.format,
        _architecture(cp.architecture, config, families),
        families,
        sum(math.prod(t.shape) for t in shards.tensors),
        dict(Counter(t.dtype for t in shards.tensors)),
        extra,
        plan.geometry,
        plan.qk_norm,
        bool(plan.norms),
        plan.sandwich_norms,
        list(plan.words),
    )
    return records, info

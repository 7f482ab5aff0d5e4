"""The Fingerprint of a checkpoint: both vectors, their companions, and how they were made."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ._version import __version__
from .arrays import decode_array, encode_array
from .engine.analyse import Beside
from .engine.progress import show_progress
from .errors import FingerprintFileError, InputError
from .invariants import Invariants, build_invariants
from .naming import TYPE_ORDER
from .probes import TokenForms, build_token_forms
from .readers import MatrixRecord, read_checkpoint
from .settings import Settings, resolve
from .sketches import build_sketches, sketches_from_dict, sketches_to_dict
from .vectors import clustering, normalize, pool_moments, summary

# 2: matrix shapes and lineage invariants; schema 1 files load without them. Token probes are
# optional in 2 (files written before them load without).
SCHEMA = 2
FORMAT = "weightprint-fast/fingerprint"


@dataclass
class Fingerprint:
    """Fingerprint of one checkpoint. Arrays follow ``types`` order (a subset of q, k, v, o, gate,
    up, down, those the model has).

    - ``std_vector`` (T,): pooled population std per type, normalized (``meta["settings"]["normalize"]``).
    - ``type_stats``: per type, the pooled count, mean, std (unnormalized), min, max, skewness,
      excess kurtosis.
    - ``layer_std`` (L, T): std of each type in each layer; NaN where absent.
    - ``singular_values`` (L, T, top_k): top singular values per matrix (zero past a matrix's
      rank, NaN where the type is absent or undefined).
    - ``clustering_vector`` (T,): mean canonical K-Means label per type / (K - 1), in [0, 1].
    - ``cluster_labels`` (L, T): canonical labels, -1 where absent.
    - ``coclustering`` (T, T): fraction of layers in which two types share a cluster.
    - ``meta``: source, format, architecture, layers, parameters, dtypes, settings, version,
      elapsed seconds, and per-matrix problems (``issues``).
    - ``matrix_shapes``: per type, the (out, in) shape of its matrices (the first layer's);
      empty in schema-1 files.
    - ``invariants``: the lineage invariants (:class:`Invariants`); None for LoRA adapters and
      schema-1 files.
    - ``token_forms``: the token probes (:class:`probes.TokenForms`); None where the checkpoint
      has no vocabulary this package reads, or no token embedding.
    - ``weight_sketches`` (L, T, 256): each matrix's count sketch (sketches.py), NaN where absent;
      None for LoRA adapters and files written before them.
    """

    types: list[str]
    std_vector: np.ndarray
    type_stats: dict[str, dict]
    layer_std: np.ndarray
    singular_values: np.ndarray
    clustering_vector: np.ndarray
    cluster_labels: np.ndarray
    coclustering: np.ndarray
    meta: dict = field(default_factory=dict)
    matrix_shapes: dict[str, list[int]] = field(default_factory=dict)
    invariants: Optional[Invariants] = None
    token_forms: Optional[TokenForms] = None
    weight_sketches: Optional[np.ndarray] = None

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or Path(str(self.meta.get("source", "?"))).name)

    def renamed(self, name: str) -> Fingerprint:
        """A copy shown under another name (the arrays are shared; this one is unchanged)."""
        return dataclasses.replace(self, meta={**self.meta, "name": name})

    @property
    def layers(self) -> int:
        return int(self.layer_std.shape[0])

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "schema": SCHEMA,
            "types": list(self.types),
            "std_vector": encode_array(self.std_vector),
            "type_stats": {t: {k: encode_array(v) for k, v in s.items()} for t, s in self.type_stats.items()},
            "layer_std": encode_array(self.layer_std),
            "singular_values": encode_array(self.singular_values),
            "clustering_vector": encode_array(self.clustering_vector),
            "cluster_labels": self.cluster_labels.tolist(),
            "coclustering": encode_array(self.coclustering),
            "matrix_shapes": self.matrix_shapes,
            "invariants": None if self.invariants is None else self.invariants.to_dict(),
            "token_forms": None if self.token_forms is None else self.token_forms.to_dict(),
            "weight_sketches": None
            if self.weight_sketches is None
            else sketches_to_dict(self.weight_sketches),
            "meta": self.meta,
        }

    def to_frame(self) -> Any:
        """One row per matrix (pandas DataFrame): ``layer``, ``type``, ``rows`` and ``cols`` of
        its type's shape, ``std`` (of its weights), ``cluster`` (canonical K-Means label, -1 if
        absent) and ``sv_1`` ... ``sv_k`` (top singular values, largest first). Needs pandas."""
        from .display import pandas

        records = []
        for layer in range(self.layers):
            for t_index, t in enumerate(self.types):
                std = float(self.layer_std[layer, t_index])
                if math.isnan(std):
                    continue
                shape = self.matrix_shapes.get(t)  # absent in schema-1 files
                row: dict[str, Any] = {"layer": layer, "type": t, "rows": None, "cols": None, "std": std}
                if shape:
                    row.update(rows=shape[0], cols=shape[1])
                row["cluster"] = int(self.cluster_labels[layer, t_index])
                for i, v in enumerate(self.singular_values[layer, t_index]):
                    row[f"sv_{i + 1}"] = float(v)
                records.append(row)
        return pandas().DataFrame.from_records(records)

    def _repr_html_(self) -> str:
        """What a notebook shows: the model, then per type its SD-vector entry, Clustering-Vector
        entry, pooled std and excess kurtosis."""
        from .display import html_table

        meta = self.meta
        title = (
            f"{self.name}: {meta.get('architecture', '?')}, {meta.get('format', '?')}, {self.layers} layers, "
            f"{int(meta.get('parameters', 0)):,} parameters"
        )
        rows = [
            [
                t,
                "x".join(str(d) for d in self.matrix_shapes.get(t, [])),
                float(self.std_vector[i]),
                float(self.clustering_vector[i]),
                float(np.asarray(self.type_stats[t]["std"])),
                float(np.asarray(self.type_stats[t]["kurtosis"])),
            ]
            for i, t in enumerate(self.types)
        ]
        legend = [
            (
                "SD vector",
                "the type's weight std over all layers, normalized (the paper's Standard-Deviation Vector)",
            ),
            (
                "CV",
                "mean canonical K-Means label of its matrices / (K - 1): the paper's Clustering Vector",
            ),
            ("std", "the type's pooled weight std, unnormalized"),
            ("kurtosis", "excess kurtosis of the type's weights"),
        ]
        return html_table(["type", "shape", "SD vector", "CV", "std", "kurtosis"], rows, title, legend)

    def save(self, path: Union[str, Path]) -> None:
        """Writes one versioned JSON file; floats are written exactly (round-trip)."""
        Path(path).write_text(json.dumps(self.to_dict(), allow_nan=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Union[str, Path]) -> Fingerprint:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise InputError(f"{path}: cannot read fingerprint: {e.strerror or e}") from e
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FingerprintFileError(f"{path}: not a fingerprint file (damaged JSON: {e})") from e
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: Mapping, where: str = "fingerprint") -> Fingerprint:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise FingerprintFileError(f"{where}: not a weightprint-fast fingerprint")
        schema = data.get("schema")
        if not isinstance(schema, int) or schema > SCHEMA:
            raise FingerprintFileError(
                f"{where}: fingerprint schema {schema} is newer than this version reads ({SCHEMA}); "
                "upgrade weightprint-fast"
            )
        try:
            types = [str(t) for t in data["types"]]
            fp = cls(
                types=types,
                std_vector=decode_array(data["std_vector"]),
                type_stats={
                    t: {k: (v if v is not None else math.nan) for k, v in s.items()}
                    for t, s in data["type_stats"].items()
                },
                layer_std=decode_array(data["layer_std"]).reshape(-1, len(types)),
                singular_values=decode_array(data["singular_values"]).reshape(
                    -1, len(types), data["meta"]["settings"]["top_k"]
                ),
                clustering_vector=decode_array(data["clustering_vector"]),
                cluster_labels=np.asarray(data["cluster_labels"], dtype=np.int64).reshape(-1, len(types)),
                coclustering=decode_array(data["coclustering"]).reshape(len(types), len(types)),
                meta=dict(data["meta"]),
                matrix_shapes={
                    str(t): [int(x) for x in s] for t, s in (data.get("matrix_shapes") or {}).items()
                },
                invariants=Invariants.from_dict(data["invariants"]) if data.get("invariants") else None,
                token_forms=TokenForms.from_dict(data["token_forms"]) if data.get("token_forms") else None,
                weight_sketches=sketches_from_dict(data["weight_sketches"], len(types))
                if data.get("weight_sketches")
                else None,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise FingerprintFileError(f"{where}: damaged fingerprint ({type(e).__name__}: {e})") from e
        if fp.std_vector.shape != (len(types),) or fp.clustering_vector.shape != (len(types),):
            raise FingerprintFileError(f"{where}: damaged fingerprint (vector lengths do not match types)")
        return fp


def build(records: list[MatrixRecord], settings: Settings) -> dict:
    """The fingerprint's arrays from per-matrix records."""
    top_k = settings.top_k
    types = [t for t in TYPE_ORDER if any(r.type == t for r in records)]
    layers = max(r.layer for r in records) + 1
    col = {t: i for i, t in enumerate(types)}
    by_cell: dict[tuple[int, int], list[MatrixRecord]] = {}
    for r in records:
        by_cell.setdefault((r.layer, col[r.type]), []).append(r)
    layer_std = np.full((layers, len(types)), np.nan)
    sv = np.full((layers, len(types), top_k), np.nan)
    for (layer, t), rs in by_cell.items():
        layer_std[layer, t] = pool_moments([r.moments for r in rs]).std
        vals = [r.singular_values for r in rs if r.singular_values is not None]
        if len(vals) == len(rs):
            # A matrix smaller than top_k has exactly that many non-zero singular values; MoE
            # experts of one (layer, type) are averaged into one sample.
            padded = np.zeros((len(vals), top_k))
            for i, v in enumerate(vals):
                padded[i, : len(v)] = v[:top_k]
            sv[layer, t] = padded.mean(axis=0)
    type_stats = {t: summary(pool_moments([r.moments for r in records if r.type == t])) for t in types}
    std = np.array([type_stats[t]["std"] for t in types])
    cv, labels, co, k_used = clustering(sv, settings.n_clusters, settings.feature)
    shapes: dict[str, list[int]] = {}
    for r in sorted(records, key=lambda r: r.layer):
        shapes.setdefault(r.type, list(r.shape))
    return dict(
        types=types,
        std_vector=normalize(std, settings.normalize),
        type_stats=type_stats,
        layer_std=layer_std,
        singular_values=sv,
        clustering_vector=cv,
        cluster_labels=labels,
        coclustering=co,
        k_used=k_used,
        matrix_shapes={t: shapes[t] for t in types},
    )


def _preimport_kmeans() -> None:
    # clustering() imports it again where it is needed, and raises there what went wrong here.
    with contextlib.suppress(Exception):
        import sklearn.cluster  # noqa: F401


def fingerprint(
    path: Any, settings: Optional[Settings] = None, *, config: Optional[Mapping] = None, **overrides: Any
) -> Fingerprint:
    """Fingerprint a checkpoint: a safetensors file or directory (sharded or not), a GGUF file or
    split set, or a PEFT LoRA adapter directory; or a model in memory: a mapping of names to
    numpy arrays or torch tensors, a torch module or transformers model, a PEFT model
    (readers/memory.py; ``config``: the configuration of a bare mapping, as config.json holds it).

    ``settings``: a :class:`Settings` (default: its defaults); keyword arguments override single
    settings by name (``fingerprint(p, top_k=32, method="exact")``).
    """
    settings = resolve(settings, overrides)
    start = time.perf_counter()
    # scikit-learn takes about a second to import: the import overlaps the weights' pass
    # instead of following it.
    sklearn_import = Beside(_preimport_kmeans)
    records, info = read_checkpoint(path, settings, config)
    sklearn_import.result()
    if records and all(r.moments.count == 0 for r in records):
        raise InputError(
            f"{info.source}: no finite value in any of its {len(records)} projection matrices "
            "(all NaN or Inf)"
        )
    issues = [
        {"tensor": r.tensor, "layer": r.layer, "type": r.type, "nan": r.moments.nan, "inf": r.moments.inf}
        for r in records
        if r.moments.nan or r.moments.inf
    ]
    if issues and settings.nonfinite == "refuse":
        first = issues[0]
        raise InputError(
            f"{info.source}: tensor '{first['tensor']}' holds {first['nan']} NaN and {first['inf']} Inf "
            f"values ({len(issues)} matrices affected); use nonfinite='exclude' to fingerprint the rest"
        )
    arrays = build(records, settings)
    k_used = arrays.pop("k_used")
    arrays["invariants"] = build_invariants(
        records,
        arrays["layer_std"].shape[0],
        info.geometry,
        settings.top_k,
        info.qk_norm,
        info.norms_folded,
        info.sandwich_norms,
        show_progress(settings.progress),
    )
    arrays["weight_sketches"] = build_sketches(records, arrays["layer_std"].shape[0], arrays["types"])
    arrays["token_forms"] = build_token_forms(
        records, arrays["layer_std"].shape[0], info.geometry, info.anchor_words
    )
    meta = {
        "source": info.source,
        "format": info.format,
        "architecture": info.architecture,
        "naming": info.families,
        "layers": int(arrays["layer_std"].shape[0]),
        "matrices": len(records),
        "parameters": info.parameters,
        "dtypes": info.dtypes,
        "settings": {**settings.recorded(), "clusters_used": k_used},
        "issues": issues,
        "version": __version__,
        "elapsed_seconds": time.perf_counter() - start,
        **info.extra,
    }
    return Fingerprint(meta=meta, **arrays)

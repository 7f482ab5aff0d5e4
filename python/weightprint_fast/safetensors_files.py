"""Finding the safetensors shards of a checkpoint and checking them against their index."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from . import _core
from ._native import WeightprintFormatError

PathLike = Union[str, os.PathLike]

INDEX_SUFFIX = ".safetensors.index.json"


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as its shard's header describes it."""

    name: str
    dtype: str  # safetensors dtype name, e.g. "BF16"
    shape: tuple[int, ...]
    shard: int  # index into ShardSet.paths


class ShardSet:
    """The validated safetensors files of one checkpoint, memory-mapped.

    Every header is checked against the format before any tensor byte is read; with an index
    file, every entry is cross-checked against the shard headers.
    """

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self.files = [_core.SafetensorsFile(str(p)) for p in paths]
        self.tensors: list[TensorEntry] = []
        seen: dict[str, Path] = {}
        for i, f in enumerate(self.files):
            for t in f.tensors:
                if t["name"] in seen:
                    raise WeightprintFormatError(
                        f"{paths[i]}: tensor '{t['name']}' also appears in {seen[t['name']]}"
                    )
                seen[t["name"]] = paths[i]
                self.tensors.append(TensorEntry(t["name"], t["dtype"], tuple(t["shape"]), i))

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.paths)


def _index_shards(index_path: Path) -> tuple[list[Path], dict]:
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightprintFormatError(f"{index_path}: cannot read index: {e}") from e
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise WeightprintFormatError(f"{index_path}: index has no 'weight_map' object")
    root = index_path.parent.resolve()
    shards: dict[str, Path] = {}
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or not shard:
            raise WeightprintFormatError(f"{index_path}: tensor '{name}': shard name is not a string")
        if os.path.isabs(shard) or ".." in Path(shard).parts:
            raise WeightprintFormatError(
                f"{index_path}: tensor '{name}': shard '{shard}' points outside the checkpoint directory"
            )
        resolved = (root / shard).resolve()
        if root not in resolved.parents:
            raise WeightprintFormatError(
                f"{index_path}: tensor '{name}': shard '{shard}' points outside the checkpoint directory"
            )
        if not resolved.is_file():
            raise WeightprintFormatError(f"{index_path}: tensor '{name}': missing shard '{shard}'")
        shards.setdefault(shard, resolved)
    return [shards[s] for s in sorted(shards)], weight_map


def open_shards(path: PathLike) -> ShardSet:
    """The shards of a checkpoint given as a ``.safetensors`` file, an index JSON, or a directory.

    A directory is read through ``model.safetensors.index.json`` (or another single
    ``*.safetensors.index.json``) when present, else ``model.safetensors``, else its
    ``*.safetensors`` files. Raises WeightprintFormatError for anything malformed or missing.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    if p.is_dir():
        indexes = sorted(p.glob("*" + INDEX_SUFFIX))
        if (p / ("model" + INDEX_SUFFIX)).is_file():
            return _open_index(p / ("model" + INDEX_SUFFIX))
        if len(indexes) == 1:
            return _open_index(indexes[0])
        if (p / "model.safetensors").is_file():
            return ShardSet([p / "model.safetensors"])
        files = sorted(p.glob("*.safetensors"))
        if not files:
            raise WeightprintFormatError(f"{p}: no .safetensors files in this directory")
        return ShardSet(files)
    if p.name.endswith(INDEX_SUFFIX) or p.suffix == ".json":
        return _open_index(p)
    return ShardSet([p])


def _open_index(index_path: Path) -> ShardSet:
    paths, weight_map = _index_shards(index_path)
    shards = ShardSet(paths)
    for t in shards.tensors:
        listed = weight_map.get(t.name)
        if listed is None:
            raise WeightprintFormatError(
                f"{index_path}: tensor '{t.name}' of shard '{shards.paths[t.shard].name}' is not in the index"
            )
        if (index_path.parent / listed).resolve() != shards.paths[t.shard]:
            raise WeightprintFormatError(
                f"{index_path}: tensor '{t.name}' is listed in shard '{listed}' but stored in "
                f"'{shards.paths[t.shard].name}'"
            )
    present = {t.name for t in shards.tensors}
    for name, shard in weight_map.items():
        if name not in present:
            raise WeightprintFormatError(f"{index_path}: tensor '{name}' is listed in '{shard}' but not stored there")
    return shards

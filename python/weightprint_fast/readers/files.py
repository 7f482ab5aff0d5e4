"""Opening a checkpoint's files: safetensors shards checked against their index, GGUF split sets
checked for completeness. Each file is parsed and validated by the engine (``cpp/safetensors.cpp``,
``cpp/gguf.cpp``); this module finds the files and checks what spans several of them."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

from ..engine import GgufFile, SafetensorsFile
from ..engine.analyse import TensorFileSet
from ..errors import CheckpointNotFoundError, InputError, WeightprintFormatError

PathLike = Union[str, os.PathLike]

INDEX_SUFFIX = ".safetensors.index.json"


def read_json(path: Path, what: str) -> Any:
    """The value of a JSON file the reader consults (``what`` names it in errors): InputError
    where the system refuses the file, WeightprintFormatError where it is not JSON text."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"{path}: cannot read {what}: {e.strerror or e}") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightprintFormatError(f"{path}: cannot read {what}: {e}") from e


def _index_shards(index_path: Path) -> tuple[list[Path], dict]:
    index = read_json(index_path, "index")
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise WeightprintFormatError(f"{index_path}: index has no 'weight_map' object")
    # Containment is judged on the names, not on where symlinks lead: a Hugging Face cache
    # snapshot holds every file as a symlink into ../../blobs.
    root = index_path.parent
    shards: dict[str, Path] = {}
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or not shard:
            raise WeightprintFormatError(f"{index_path}: tensor '{name}': shard name is not a string")
        if os.path.isabs(shard) or ".." in Path(shard).parts or "\\" in shard:
            raise WeightprintFormatError(
                f"{index_path}: tensor '{name}': shard '{shard}' points outside the checkpoint directory"
            )
        path = root / shard
        if not path.is_file():
            raise WeightprintFormatError(f"{index_path}: tensor '{name}': missing shard '{shard}'")
        shards.setdefault(shard, path)
    return [shards[s] for s in sorted(shards)], weight_map


def open_shards(path: PathLike) -> TensorFileSet:
    """The shards of a checkpoint given as a ``.safetensors`` file, an index JSON, or a directory.

    A directory is read through ``model.safetensors.index.json`` (or another single
    ``*.safetensors.index.json``) when present, else ``model.safetensors``, else its
    ``*.safetensors`` files. Raises WeightprintFormatError for anything malformed or missing.
    """
    p = Path(path)
    index = safetensors_index(p)
    if index is not None:
        return _open_index(index)
    return _safetensors_set(safetensors_files(p))


def safetensors_index(path: Path) -> Optional[Path]:
    """The index JSON that names a checkpoint's shards: the path itself, or in a directory
    ``model.safetensors.index.json`` (else its one ``*.safetensors.index.json``); None if none."""
    if not path.exists():
        raise CheckpointNotFoundError(f"{path}: no such file or directory")
    if not path.is_dir():
        return path if path.name.endswith(INDEX_SUFFIX) or path.suffix == ".json" else None
    if (path / ("model" + INDEX_SUFFIX)).is_file():
        return path / ("model" + INDEX_SUFFIX)
    indexes = sorted(path.glob("*" + INDEX_SUFFIX))
    return indexes[0] if len(indexes) == 1 else None


def safetensors_files(path: Path) -> list[Path]:
    """The weight files of a safetensors checkpoint (through its index when it has one)."""
    index = safetensors_index(path)
    if index is not None:
        return _index_shards(index)[0]
    if not path.is_dir():
        return [path]
    if (path / "model.safetensors").is_file():
        return [path / "model.safetensors"]
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise WeightprintFormatError(f"{path}: no .safetensors files in this directory")
    return files


def _safetensors_set(paths: list[Path]) -> TensorFileSet:
    return TensorFileSet(paths, [SafetensorsFile(str(p)) for p in paths])


def _open_index(index_path: Path) -> TensorFileSet:
    paths, weight_map = _index_shards(index_path)
    shards = _safetensors_set(paths)
    for t in shards.tensors:
        listed = weight_map.get(t.name)
        if listed is None:
            raise WeightprintFormatError(
                f"{index_path}: tensor '{t.name}' of shard '{shards.paths[t.shard].name}' is not in the index"
            )
        if index_path.parent / listed != shards.paths[t.shard]:
            raise WeightprintFormatError(
                f"{index_path}: tensor '{t.name}' is listed in shard '{listed}' but stored in "
                f"'{shards.paths[t.shard].name}'"
            )
    present = {t.name for t in shards.tensors}
    for name, shard in weight_map.items():
        if name not in present:
            raise WeightprintFormatError(
                f"{index_path}: tensor '{name}' is listed in '{shard}' but not stored there"
            )
    return shards


_SPLIT_NAME = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


def _split_value(path: str, metadata: Mapping, key: str) -> int:
    value = metadata.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise WeightprintFormatError(f"{path}: GGUF split file without an integer '{key}'")
    return value


def open_gguf(path: PathLike) -> TensorFileSet:
    """A GGUF checkpoint: one file, or a split set named ``NAME-00001-of-0000N.gguf`` (any of its
    files may be given). A split set must be complete and consistent: every file present, each
    one's ``split.no`` / ``split.count`` matching its name, every tensor in exactly one file and
    the total equal to ``split.tensors.count``."""
    p = Path(path)
    m = _SPLIT_NAME.match(p.name)
    if m is None:
        f = GgufFile(str(p))
        parts = f.metadata.get("split.count")
        if isinstance(parts, int) and parts > 1:
            raise WeightprintFormatError(
                f"{p}: part of a {parts}-file split GGUF, but its name does not say which "
                "(expected NAME-0000K-of-0000N.gguf)"
            )
        return TensorFileSet([p], [f])
    paths = split_parts(p)
    count = len(paths)
    files = [GgufFile(str(q)) for q in paths]
    declared = 0
    for i, f in enumerate(files):
        meta = f.metadata  # converted to Python once per file
        if (n := _split_value(f.path, meta, "split.count")) != count:
            raise WeightprintFormatError(f"{f.path}: split.count is {n}, its name says {count}")
        if (n := _split_value(f.path, meta, "split.no")) != i:
            raise WeightprintFormatError(f"{f.path}: split.no is {n}, its name says {i}")
        if i == 0:
            declared = _split_value(f.path, meta, "split.tensors.count")
    shards = TensorFileSet(paths, files)
    if len(shards.tensors) != declared:
        raise WeightprintFormatError(
            f"{paths[0]}: split.tensors.count is {declared} but the {count} files hold "
            f"{len(shards.tensors)} tensors"
        )
    return shards


def split_parts(path: Path) -> list[Path]:
    """Every file of the split GGUF set that ``path`` (named NAME-0000K-of-0000N.gguf) belongs
    to, in order; [path] for a file not named as a split part. Missing parts are an error."""
    m = _SPLIT_NAME.match(path.name)
    if m is None:
        return [path]
    count = int(m["count"])
    if count < 1 or int(m["no"]) > count or int(m["no"]) < 1:
        raise WeightprintFormatError(f"{path}: split number {m['no']} of {m['count']} is out of range")
    paths = [path.with_name(f"{m['stem']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]
    missing = [q.name for q in paths if not q.is_file()]
    if missing:
        raise WeightprintFormatError(f"{path}: split GGUF is incomplete: missing {', '.join(missing)}")
    return paths


def gguf_in(directory: Path) -> Optional[Path]:
    """The GGUF checkpoint in a directory without safetensors: its only file or split set, else None."""
    if any(directory.glob("*.safetensors")):
        return None
    found = sorted(directory.glob("*.gguf"))
    stems = {(_SPLIT_NAME.match(q.name) or {"stem": q.stem})["stem"] for q in found}
    if len(stems) > 1:
        raise WeightprintFormatError(
            f"{directory}: {len(stems)} GGUF checkpoints here "
            f"({', '.join(sorted(q.name for q in found)[:4])}); "
            "name the file"
        )
    return found[0] if found else None


def open_tensor_files(path: PathLike) -> TensorFileSet:
    """The files of a safetensors or GGUF checkpoint (see :func:`open_shards`, :func:`open_gguf`)."""
    p = Path(path)
    if p.is_dir():
        p = gguf_in(p) or p
    if p.suffix.lower() == ".gguf":
        if not p.exists():
            raise CheckpointNotFoundError(f"{p}: no such file or directory")
        return open_gguf(p)
    if p.is_file() and p.suffix.lower() not in (".safetensors", ".json"):
        # Neither suffix: the bytes say which format, or that it is neither (a PNG, a tarball).
        with open(p, "rb") as f:
            if f.read(4) == b"GGUF":
                return open_gguf(p)
        try:
            return open_shards(p)
        except WeightprintFormatError as e:
            reason = str(e).removeprefix(f"{p}: ").removeprefix("not a safetensors file: ")
            raise WeightprintFormatError(f"{p}: not a safetensors or GGUF file ({reason})") from e
    return open_shards(p)

"""Fixtures: small checkpoints written in the test, with the safetensors package or by hand."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest


def f32_to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even float32 -> bfloat16 bits (uint16)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_bits_to_f64(b: np.ndarray) -> np.ndarray:
    return (b.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def write_raw(path: Path, header, data: bytes = b"", header_len: int | None = None) -> Path:
    """A safetensors file from a header (dict, or raw bytes) and a data section, no checks at all."""
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(h) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", n) + h + data)
    return path


def write_tensors(path: Path, tensors: dict[str, tuple[str, tuple[int, ...], bytes]], metadata=None) -> Path:
    """A valid safetensors file for dtypes numpy lacks (BF16, F8): name -> (dtype, shape, raw bytes)."""
    header: dict = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    blobs = []
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    return write_raw(path, header, b"".join(blobs))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def use_hub_cache(monkeypatch):
    """use(path): make ``path`` the Hugging Face cache for this test (huggingface_hub reads the
    environment at import, so its constant is set too)."""
    import huggingface_hub.constants

    def use(path: Path) -> Path:
        monkeypatch.setenv("HF_HUB_CACHE", str(path))
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(path))
        return path

    return use


@pytest.fixture(scope="module")
def demo_zoo(tmp_path_factory):
    """The demo's checkpoints and a byte copy of its first model: name -> path (str)."""
    import shutil

    from weightprint_fast.apps import demo

    root = tmp_path_factory.mktemp("zoo")
    paths = demo.build(root)
    shutil.copytree(paths["family-a"], root / "family-a-copy")
    paths["family-a-copy"] = root / "family-a-copy"
    return {k: str(v) for k, v in paths.items()}

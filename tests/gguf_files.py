"""GGUF fixtures: valid files through gguf's writer (the oracle), and byte-level files by hand for
the format rules the writer would never break."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

# ggml type ids and block geometry (elements, bytes), as llama.cpp defines them.
GGML = {
    "F32": (0, 1, 4),
    "F16": (1, 1, 2),
    "Q4_0": (2, 32, 18),
    "Q4_1": (3, 32, 20),
    "Q5_0": (6, 32, 22),
    "Q5_1": (7, 32, 24),
    "Q8_0": (8, 32, 34),
    "Q8_1": (9, 32, 40),
    "Q2_K": (10, 256, 84),
    "Q3_K": (11, 256, 110),
    "Q4_K": (12, 256, 144),
    "Q5_K": (13, 256, 176),
    "Q6_K": (14, 256, 210),
    "IQ4_NL": (20, 32, 18),
    "IQ4_XS": (23, 256, 136),
    "BF16": (30, 1, 2),
}
DECODED = [t for t in GGML if t != "Q8_1"]

# Byte offsets of the f16 scales inside each block type: random scale bytes could be NaN or huge.
_SCALES = {
    "Q4_0": [0],
    "Q4_1": [0, 2],
    "Q5_0": [0],
    "Q5_1": [0, 2],
    "Q8_0": [0],
    "Q2_K": [80, 82],
    "Q3_K": [108],
    "Q4_K": [0, 2],
    "Q5_K": [0, 2],
    "Q6_K": [208],
    "IQ4_NL": [0],
    "IQ4_XS": [0],
}


def llama_projection_shapes(hidden: int, ffn: int, heads: int, kv_heads: int) -> dict[str, tuple[int, int]]:
    """GGUF projection name (``blk.N.{name}.weight``) -> numpy shape, for one Llama layer."""
    head_dim = hidden // heads
    return {
        "attn_q": (hidden, hidden),
        "attn_k": (kv_heads * head_dim, hidden),
        "attn_v": (kv_heads * head_dim, hidden),
        "attn_output": (hidden, hidden),
        "ffn_gate": (ffn, hidden),
        "ffn_up": (ffn, hidden),
        "ffn_down": (hidden, ffn),
    }


def random_blocks(dtype: str, n_values: int, rng: np.random.Generator, scale: float = 0.01) -> np.ndarray:
    """Raw bytes of n_values elements of a ggml type: random codes with finite, small f16 scales."""
    _, elements, size = GGML[dtype]
    if elements == 1:
        values = rng.standard_normal(n_values).astype(np.float32) * scale
        if dtype == "F16":
            return values.astype(np.float16).view(np.uint8)
        if dtype == "BF16":
            return (values.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
        return values.view(np.uint8)
    raw = rng.integers(0, 256, size=(n_values // elements, size), dtype=np.uint8)
    for off in _SCALES[dtype]:
        d = (rng.uniform(0.5, 1.5, len(raw)) * scale).astype(np.float16)
        raw[:, off : off + 2] = d.view(np.uint8).reshape(-1, 2)
    return raw.reshape(-1)


def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key: str, vtype: int, payload: bytes) -> bytes:
    """One metadata entry: key, value type, encoded value."""
    return _string(key) + struct.pack("<I", vtype) + payload


def kv_u32(key: str, v: int) -> bytes:
    return kv(key, 4, struct.pack("<I", v))


def kv_str(key: str, v: str) -> bytes:
    return kv(key, 8, _string(v))


def tensor_info(name: str, shape_fastest_first, type_id: int, offset: int) -> bytes:
    return (
        _string(name)
        + struct.pack("<I", len(shape_fastest_first))
        + b"".join(struct.pack("<Q", d) for d in shape_fastest_first)
        + struct.pack("<I", type_id)
        + struct.pack("<Q", offset)
    )


def gguf_bytes(
    kvs: list[bytes],
    infos: list[bytes],
    data: bytes,
    *,
    version: int = 3,
    tensor_count: int | None = None,
    kv_count: int | None = None,
    alignment: int = 32,
) -> bytes:
    """A GGUF file from raw parts; counts may lie."""
    head = b"GGUF" + struct.pack(
        "<IQQ",
        version,
        len(infos) if tensor_count is None else tensor_count,
        len(kvs) if kv_count is None else kv_count,
    )
    body = head + b"".join(kvs) + b"".join(infos)
    pad = (alignment - len(body) % alignment) % alignment
    return body + b"\0" * pad + data


def write_gguf(
    path: Path,
    tensors: dict,
    arch: str = "llama",
    heads: int = 4,
    kv_heads: int = 2,
    blocks: int = 2,
    extra=None,
) -> Path:
    """A valid GGUF through gguf's writer: name -> float array, or (raw bytes, type name, numpy shape)."""
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(blocks)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    if extra:
        extra(w)
    for name, value in tensors.items():
        if isinstance(value, tuple):
            raw, dtype, shape = value
            qtype = gguf.GGMLQuantizationType[dtype]
            _, elements, size = GGML[dtype]
            byte_shape = (*shape[:-1], shape[-1] // elements * size)
            w.add_tensor(
                name,
                np.asarray(raw, dtype=np.uint8).reshape(byte_shape),
                raw_shape=byte_shape,
                raw_dtype=qtype,
            )
        else:
            w.add_tensor(name, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def dequantize(raw: np.ndarray, dtype: str, shape) -> np.ndarray:
    """gguf's reference dequantization, as float64 of the given numpy shape."""
    import gguf

    _, elements, size = GGML[dtype]
    q = gguf.GGMLQuantizationType[dtype]
    blocks = (
        np.asarray(raw, dtype=np.uint8).reshape(-1, size) if elements > 1 else np.asarray(raw, dtype=np.uint8)
    )
    if dtype in ("F32", "F16"):
        return (
            np.frombuffer(blocks.tobytes(), dtype=np.float32 if dtype == "F32" else np.float16)
            .astype(np.float64)
            .reshape(shape)
        )
    return np.asarray(gguf.quants.dequantize(blocks, q), dtype=np.float64).reshape(shape)

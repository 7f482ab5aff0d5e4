"""The fault-injection suite that stays: 3,000 mutants of a valid safetensors file and 3,000 of a
valid GGUF file (bytes flipped, inserted, deleted, the file truncated), each scanned by the
engine in this process. Every mutant must scan, or raise the one format error: a crash, a hang
or any other exception fails the run. Marked slow: `.ci/run` runs it with `-m slow`."""

import collections

import numpy as np
import pytest

import weightprint_fast as wf
from test_corruption_fuzz import valid_bytes, valid_gguf_bytes

MUTANTS = 3000


def mutate(data: bytes, rng: np.random.Generator, front: int) -> bytes:
    """1-6 random edits, biased to the first ``front`` bytes (header, metadata, tensor table)."""
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 7))):
        limit = front if rng.random() < 0.8 else len(out) + 1
        pos = int(rng.integers(0, max(1, min(limit, len(out) + 1))))
        kind = rng.integers(0, 4)
        if kind == 0 and pos < len(out):
            out[pos] = int(rng.integers(0, 256))
        elif kind == 1:
            del out[pos:]
        elif kind == 2:
            out.insert(pos, int(rng.integers(0, 256)))
        elif pos < len(out):
            del out[pos]
    return bytes(out)


def outcomes(tmp_path, name: str, data: bytes, front: int, seed: int) -> collections.Counter:
    rng = np.random.default_rng(seed)
    counts: collections.Counter = collections.Counter()
    path = tmp_path / name
    for _ in range(MUTANTS):
        path.write_bytes(mutate(data, rng, front))
        try:
            records = wf.scan(path, k=2, threads=2)
        except wf.WeightprintFormatError:
            counts["format error"] += 1
        else:
            assert all(r.name and r.dtype for r in records)
            counts["scanned"] += 1
    return counts


@pytest.mark.slow
def test_3000_safetensors_mutants_scan_or_raise_the_format_error(tmp_path, tmp_path_factory):
    counts = outcomes(tmp_path, "m.safetensors", valid_bytes(tmp_path_factory), 400, 1)
    print(f"safetensors mutants: {dict(counts)}")
    assert sum(counts.values()) == MUTANTS and counts["format error"] > MUTANTS // 2


@pytest.mark.slow
def test_3000_gguf_mutants_scan_or_raise_the_format_error(tmp_path, tmp_path_factory):
    pytest.importorskip("gguf")
    counts = outcomes(tmp_path, "m.gguf", valid_gguf_bytes(tmp_path_factory), 600, 2)
    print(f"gguf mutants: {dict(counts)}")
    assert sum(counts.values()) == MUTANTS and counts["format error"] > MUTANTS // 2

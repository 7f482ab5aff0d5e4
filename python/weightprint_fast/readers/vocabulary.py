"""A checkpoint's vocabulary: the token string of each embedding row, from the GGUF metadata
(``tokenizer.ggml.tokens``), a Hugging Face ``tokenizer.json`` or a WordPiece ``vocab.txt`` beside
the weights. The lineage probes (probes.py) read the rows of a few anchor words through it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError, WeightprintFormatError
from .files import read_json

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")


@dataclass(frozen=True)
class Vocabulary:
    """Token strings by id, as the tokenizer writes them; ``wordpiece``: word-initial tokens carry
    no marker and continuations start with ``##`` (BERT), instead of a marked leading space (``Ġ``
    in byte-level BPE, ``▁`` in SentencePiece and in GGUF's WordPiece)."""

    tokens: list[str]
    wordpiece: bool
    source: str


def vocabulary_file(weights: Path) -> Optional[Path]:
    """The tokenizer file the reader consults beside a safetensors checkpoint (None: none)."""
    folder = weights if weights.is_dir() else weights.parent
    return next((folder / n for n in TOKENIZER_FILES if (folder / n).is_file()), None)


def _from_tokenizer_json(path: Path) -> Optional[Vocabulary]:
    data = read_json(path, "the tokenizer")
    model = data.get("model") if isinstance(data, dict) else None
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if isinstance(vocab, list):  # Unigram: [piece, score] by id
        tokens = [p[0] if isinstance(p, list) and p and isinstance(p[0], str) else "" for p in vocab]
    elif isinstance(vocab, dict) and vocab:
        ids = [i for i in vocab.values() if isinstance(i, int) and 0 <= i < (1 << 24)]
        if not ids:
            return None
        tokens = [""] * (max(ids) + 1)
        for token, i in vocab.items():
            if isinstance(i, int) and 0 <= i < len(tokens):
                tokens[i] = token
    else:
        return None  # a tokenizer this reader does not know: no vocabulary, no token probes
    return Vocabulary(tokens, isinstance(model, dict) and model.get("type") == "WordPiece", str(path))


def read_vocabulary(weights: Path, metadata: Mapping, gguf: bool) -> Optional[Vocabulary]:
    """The vocabulary of a checkpoint (its GGUF metadata, or the tokenizer file beside it); None
    where there is none that this reader knows."""
    if gguf:
        tokens = metadata.get("tokenizer.ggml.tokens")
        if isinstance(tokens, list) and tokens:
            return Vocabulary([str(t) for t in tokens], False, f"{weights} (GGUF metadata)")
        return None
    path = vocabulary_file(weights)
    if path is None:
        return None
    if path.name == "tokenizer.json":
        return _from_tokenizer_json(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"{path}: cannot read the vocabulary: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise WeightprintFormatError(f"{path}: cannot read the vocabulary: {e}") from e
    return Vocabulary(lines, True, str(path))


SKETCH = 256  # bottom-k sketch size: the overlap of two vocabularies to about +-0.03


def _hashes(tokens: list[str]) -> np.ndarray:
    """52-bit hashes of the distinct token strings (exact in JSON numbers and in doubles): the
    first 8 bytes of each one's BLAKE2b digest, little-endian, shifted right by 12."""
    digests = b"".join(
        hashlib.blake2b(t.encode("utf-8", "replace"), digest_size=8).digest() for t in set(tokens)
    )
    return np.unique(np.frombuffer(digests, dtype="<u8") >> np.uint64(12))


def summarize(vocabulary: Vocabulary) -> dict:
    """What a fingerprint keeps of a vocabulary: its size, a digest of the tokens in id order
    (equal digests: the same tokenizer), and a bottom-k sketch of the token strings (their
    overlap with another vocabulary's, as a Jaccard index: :func:`overlap`)."""
    digest = hashlib.sha256("\n".join(vocabulary.tokens).encode("utf-8", "replace")).hexdigest()
    return {
        "size": len(vocabulary.tokens),
        "sha256": digest,
        "wordpiece": vocabulary.wordpiece,
        "sketch": [int(h) for h in _hashes(vocabulary.tokens)[:SKETCH]],
    }


def overlap(a: Mapping, b: Mapping) -> float:
    """The Jaccard index of two vocabularies' token strings, estimated from their sketches (exact
    where both sketches hold every token). WordPiece and marked-space vocabularies spell
    word-initial tokens differently and are compared as they are written."""
    sa, sb = set(a["sketch"]), set(b["sketch"])
    k = min(len(sa), len(sb), SKETCH)
    if k == 0:
        return 0.0
    union = sorted(sa | sb)[:k]
    return sum(1 for h in union if h in sa and h in sb) / k

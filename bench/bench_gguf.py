"""GGUF through the engine: decode rate per ggml type, and a GGUF fingerprint next to the same
weights written as float32 safetensors, same machine, same threads, one run.

Decode rate: values per second on one core, `_core.decode` of 64K values (256 KB out, so cache
and allocator are warm, as for the engine's tiles) of random blocks with finite scales, 200 calls
per timing, median of 5.

Fingerprints: a GGUF checkpoint (a real one with --gguf, else a Llama-shaped Q4_K_M mix written
here: Q4_K, with attn_v and ffn_down in Q6_K every other layer as llama.cpp's Q4_K_M does), and the
same tensors decoded by the engine and written as float32 safetensors with the same names and a
config.json holding the GGUF's architecture keys. Each fingerprint runs in a fresh process
(page cache warm for both), reported as the median wall time and the peak RSS of that process;
the SD vectors are compared.

Usage: python bench/bench_gguf.py [--gguf FILE] [--layers 4] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import cores, median_time
from gguf_files import llama_projection_shapes, random_blocks, write_gguf
from weightprint_fast import _core
from weightprint_fast.architecture import gguf_config

RATE_TYPES = [
    "F32",
    "F16",
    "BF16",
    "Q8_0",
    "Q4_0",
    "Q4_1",
    "Q5_0",
    "Q5_1",
    "Q2_K",
    "Q3_K",
    "Q4_K",
    "Q5_K",
    "Q6_K",
    "IQ4_NL",
    "IQ4_XS",
]

CHILD = """
import json, sys, time
import weightprint_fast as wf
t = time.perf_counter()
fp = wf.fingerprint(sys.argv[1], threads=int(sys.argv[2]), progress=False)
dt = time.perf_counter() - t
# VmHWM, not ru_maxrss: the latter survives exec and would report the parent's peak.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"seconds": dt, "rss_mb": int(hwm) / 1024,
                  "std": fp.std_vector.tolist(), "layer_std": fp.layer_std.tolist()}))
"""


def decode_rates(n: int = 1 << 16, calls: int = 200) -> list[tuple[str, float]]:
    rng = np.random.default_rng(0)
    out = []
    for t in RATE_TYPES:
        raw = random_blocks(t, n, rng)

        def run(raw=raw, t=t):
            for _ in range(calls):
                _core.decode(raw, t, n)

        out.append((t, n * calls / median_time(run, repeat=5)))
    return out


def llama_q4_k_m(
    path: Path, layers: int, hidden: int = 2048, ffn: int = 5632, heads: int = 16, kv: int = 4
) -> Path:
    rng = np.random.default_rng(1)
    shapes = llama_projection_shapes(hidden, ffn, heads, kv)
    tensors: dict = {}
    for i in range(layers):
        tensors[f"blk.{i}.attn_norm.weight"] = (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)
        tensors[f"blk.{i}.ffn_norm.weight"] = (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)
        for name, shape in shapes.items():
            dtype = "Q6_K" if name in ("attn_v", "ffn_down") and i % 2 == 0 else "Q4_K"
            tensors[f"blk.{i}.{name}.weight"] = (random_blocks(dtype, shape[0] * shape[1], rng), dtype, shape)
    return write_gguf(
        path,
        tensors,
        heads=heads,
        kv_heads=kv,
        blocks=layers,
        extra=lambda w: (w.add_embedding_length(hidden), w.add_feed_forward_length(ffn)),
    )


def as_f32_safetensors(gguf_path: Path, out: Path) -> Path:
    """The GGUF's projection and norm tensors decoded by the engine, as float32 safetensors."""
    from safetensors.numpy import save_file

    f = _core.GgufFile(str(gguf_path))
    out.mkdir(parents=True, exist_ok=True)
    tensors = {
        t.name: f.read(t.name).astype(np.float32)
        for t in f.tensors
        if t.analysed and t.name.startswith("blk.")
    }
    save_file(tensors, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(gguf_config(f.metadata)))
    return out


def fingerprint_in_child(path: Path, threads: int) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(threads)], capture_output=True, text=True, check=True
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", type=Path, help="a real GGUF file (default: a Llama-shaped Q4_K_M mix)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=cores())
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/wpf-bench-gguf"))
    ap.add_argument("--skip-rates", action="store_true")
    args = ap.parse_args()

    if not args.skip_rates:
        print("| type | values/s per core |\n|---|---|")
        for t, rate in decode_rates():
            print(f"| {t} | {rate / 1e9:.2f} G |")
        print()

    args.dir.mkdir(parents=True, exist_ok=True)
    g = args.gguf or llama_q4_k_m(args.dir / f"llama-q4_k_m-{args.layers}l.gguf", args.layers)
    s = as_f32_safetensors(g, args.dir / (g.stem + "-f32"))
    runs: dict[str, list[dict]] = {"gguf": [], "f32": []}
    for _ in range(args.repeat):
        for kind, path in (("gguf", g), ("f32", s)):
            runs[kind].append(fingerprint_in_child(path, args.threads))
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    rss = {k: max(r["rss_mb"] for r in v) for k, v in runs.items()}
    sd_diff = float(np.max(np.abs(np.array(runs["gguf"][0]["std"]) - np.array(runs["f32"][0]["std"]))))
    ls_diff = float(
        np.nanmax(
            np.abs(np.array(runs["gguf"][0]["layer_std"]) - np.array(runs["f32"][0]["layer_std"]))
            / np.array(runs["f32"][0]["layer_std"])
        )
    )
    size = {
        k: sum(p.stat().st_size for p in ([g] if k == "gguf" else list(s.glob("*.safetensors")))) / 1e6
        for k in ("gguf", "f32")
    }
    print(
        f"{g.name}: {args.threads} threads, median of {args.repeat} fresh processes, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print("| checkpoint | size | fingerprint | peak RSS |\n|---|---|---|---|")
    for k in ("gguf", "f32"):
        print(f"| {k} | {size[k]:.0f} MB | {med[k]:.2f} s | {rss[k]:.0f} MB |")
    print(
        f"\nGGUF / f32 safetensors: {med['gguf'] / med['f32']:.2f}x; SD vector max |diff| {sd_diff:.1e}, "
        f"per-matrix std max rel diff {ls_diff:.1e}"
    )


if __name__ == "__main__":
    main()

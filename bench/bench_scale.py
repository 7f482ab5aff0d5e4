"""Scale benchmark: Llama-3-70B layer shapes in bf16, 1, 2 and 4 layers.

Reports seconds per layer, the projection to 80 layers, and each run's peak resident memory (it
must not grow with the number of layers), then fingerprints the 4-layer checkpoint inside a
memory cgroup whose limit is below the checkpoint's size (Linux cgroup v1 or v2, as root; skipped
with the reason otherwise).

Usage: python bench/bench_scale.py [--dir /tmp/wpf-70b] [--layers 1,2,4] [--threads N] [--method auto]
The checkpoint (1.7 GB per layer) is generated once into --dir and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import cores
from make_checkpoint import write_checkpoint

CHILD = """
import json, sys, time, weightprint_fast as wf
t = time.perf_counter()
fp = wf.fingerprint(sys.argv[1], threads=int(sys.argv[2]), method=sys.argv[3], progress=False)
print(json.dumps({"seconds": time.perf_counter() - t, "layers": fp.layers,
                  "std_vector": fp.std_vector.tolist()}))
"""


def shard_files(root: Path) -> list[str]:
    """The checkpoint's shards, one per layer, in order (named after the layer count the
    checkpoint was generated with, which may exceed this run's)."""
    return sorted(set(json.loads((root / "model.safetensors.index.json").read_text())["weight_map"].values()))


def subset_index(root: Path, layers: int) -> Path:
    """An index naming only the first `layers` shards: a smaller checkpoint over the same files."""
    full = json.loads((root / "model.safetensors.index.json").read_text())
    keep = set(shard_files(root)[:layers])
    wm = {k: v for k, v in full["weight_map"].items() if v in keep}
    path = root / f"first-{layers}-layers.safetensors.index.json"
    path.write_text(json.dumps({"metadata": {}, "weight_map": wm}))
    return path


def peak_rss_run(
    target: Path, threads: int, method: str, cgroup_procs: Path | None = None
) -> tuple[dict, float]:
    """Runs the child and returns its result and peak RSS in GB (from wait4's rusage)."""

    def enter_cgroup():
        if cgroup_procs is not None:
            cgroup_procs.write_text(str(os.getpid()))

    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target), str(threads), method],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=enter_cgroup,
    )
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"fingerprint failed (status {status}): {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1e6


def memory_cgroup(limit_bytes: int) -> tuple[Path, Path] | None:
    """A memory cgroup with the given limit: (its directory, its procs file), or None if unavailable."""
    v1 = Path("/sys/fs/cgroup/memory")
    v2 = Path("/sys/fs/cgroup")
    name = f"weightprint-bench-{os.getpid()}"
    try:
        if (v1 / "memory.limit_in_bytes").exists():
            d = v1 / name
            d.mkdir()
            (d / "memory.limit_in_bytes").write_text(str(limit_bytes))
            return d, d / "cgroup.procs"
        if (v2 / "cgroup.controllers").exists():
            d = v2 / name
            d.mkdir()
            (d / "memory.max").write_text(str(limit_bytes))
            return d, d / "cgroup.procs"
    except OSError as e:
        print(f"memory cgroup unavailable: {e}")
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/wpf-70b"))
    ap.add_argument("--layers", default="1,2,4")
    ap.add_argument("--threads", type=int, default=cores())
    ap.add_argument("--method", default="auto")
    ap.add_argument("--limit-gb", type=float, default=1.5, help="memory limit for the cgroup run")
    args = ap.parse_args()
    counts = [int(x) for x in args.layers.split(",")]
    most = max(counts)
    if (
        not (args.dir / "model.safetensors.index.json").exists()
        or json.loads((args.dir / "config.json").read_text())["num_hidden_layers"] < most
    ):
        t = time.perf_counter()
        write_checkpoint(args.dir, most)
        print(f"generated {most} Llama-3-70B layers in {time.perf_counter() - t:.0f} s")
    print(f"threads={args.threads} method={args.method}, {cores()} usable cores\n")
    print("| layers | checkpoint | seconds | seconds/layer | projected 80 layers | peak RSS |")
    print("|---|---|---|---|---|---|")
    for n in counts:
        target = subset_index(args.dir, n)
        size = sum((args.dir / f).stat().st_size for f in shard_files(args.dir)[:n])
        res, rss = peak_rss_run(target, args.threads, args.method)
        per = res["seconds"] / n
        print(
            f"| {n} | {size / 1e9:.1f} GB | {res['seconds']:.1f} | {per:.1f} | {80 * per / 60:.1f} min "
            f"| {rss:.2f} GB |"
        )
    target = subset_index(args.dir, most)
    size = sum((args.dir / f).stat().st_size for f in shard_files(args.dir)[:most])
    limit = int(args.limit_gb * 1e9)
    cg = memory_cgroup(limit)
    if cg is None:
        print("\nmemory-limited run skipped: no writable memory cgroup (needs root and cgroup v1/v2)")
        return
    d, procs = cg
    try:
        res, rss = peak_rss_run(target, args.threads, args.method, procs)
        print(
            f"\nunder a {limit / 1e9:.1f} GB memory cgroup, the {size / 1e9:.1f} GB checkpoint finished in "
            f"{res['seconds']:.1f} s, peak RSS {rss:.2f} GB"
        )
    finally:
        d.rmdir()


if __name__ == "__main__":
    main()

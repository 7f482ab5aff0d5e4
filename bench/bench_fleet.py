"""Fleet throughput: checkpoints per minute with the local executor and with a local Dask cluster.

Usage: python bench/bench_fleet.py [--count 8] [--layers 2] [--workers 2]
Generates `count` small Llama-style bf16 checkpoints (the "small" preset of make_checkpoint.py)
and fingerprints them into fresh stores, once per executor.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import weightprint_fast as wf
from make_checkpoint import write_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = [write_checkpoint(root / f"ck{i}", args.layers, "small", seed=i) for i in range(args.count)]
        size = sum(f.stat().st_size for p in paths for f in p.glob("*.safetensors")) / 1e6
        print(f"{args.count} checkpoints, {size:.0f} MB in all, {args.workers} workers\n")
        print("| executor | seconds | checkpoints per minute |")
        print("|---|---|---|")
        t = time.perf_counter()
        wf.batch(paths, root / "local.db", workers=args.workers, progress=False)
        dt = time.perf_counter() - t
        print(f"| local processes | {dt:.1f} | {60 * args.count / dt:.1f} |")
        with (
            LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as c,
            Client(c) as client,
        ):
            t = time.perf_counter()
            wf.batch(paths, root / "dask.db", cluster=client, progress=False, threads=1)
            dt = time.perf_counter() - t
        print(f"| Dask LocalCluster | {dt:.1f} | {60 * args.count / dt:.1f} |")


if __name__ == "__main__":
    main()

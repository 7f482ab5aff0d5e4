"""What the lineage evidence costs: fingerprint time with the invariants, token probes and
sketches (``invariants=True``, the default) over the time without them, per checkpoint size,
on a quiet machine and with a competing load on every core.

Usage: python bench/bench_invariants.py [--sizes smollm2-135m:30 qwen2.5-1.5b:28 llama3-70b:1]
                                        [--repeat 2] [--threads N] [--checkpoint PATH ...]
Each size is a synthetic bf16 Llama-style checkpoint (make_checkpoint.py: preset:layers). The
load is one process per core multiplying 1024x1024 float32 matrices (numpy, one BLAS thread
each) for as long as the measurement runs. Prints one line per size and condition:
  invariants: <size> <quiet|loaded> without=<s> with=<s> ratio=<r>
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import weightprint_fast as wf
from make_checkpoint import write_checkpoint


def _burn(stop, parent: int) -> None:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import numpy as np

    a = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    # Also ends when the benchmark does (killed: the burner is reparented), never orphaned.
    while not stop.is_set() and os.getppid() == parent:
        a = a @ a
        a /= np.abs(a).max()


def timed(path: Path, repeat: int, threads) -> tuple[float, float]:
    """Best fingerprint times without and with the invariants, the two runs alternating so that
    a drift in the machine's speed (another tenant, the page cache) reaches both alike."""
    best = {False: float("inf"), True: float("inf")}
    for _ in range(repeat):
        for invariants in (False, True):
            t = time.perf_counter()
            wf.fingerprint(path, invariants=invariants, threads=threads, progress=False)
            best[invariants] = min(best[invariants], time.perf_counter() - t)
    return best[False], best[True]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="*", default=["smollm2-135m:30", "qwen2.5-1.5b:28", "llama3-70b:1"])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="also a real checkpoint (with a vocabulary: token probes too)",
    )
    args = ap.parse_args()
    print(
        f"# {os.cpu_count()} cores; best of {args.repeat}, runs alternating; "
        "load: one 1024x1024 matmul loop per core"
    )
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(size, None) for size in args.sizes] + [(Path(c).name, Path(c)) for c in args.checkpoint]
        for size, given in jobs:
            if given is None:
                preset, _, layers = size.partition(":")
                path = write_checkpoint(Path(tmp) / preset, int(layers or 1), preset)
            else:
                path = given
            for condition in ("quiet", "loaded"):
                stop = ctx.Event()
                burners = []
                if condition == "loaded":
                    burners = [
                        ctx.Process(target=_burn, args=(stop, os.getpid()), daemon=True)
                        for _ in range(os.cpu_count() or 1)
                    ]
                    for p in burners:
                        p.start()
                    time.sleep(1.0)
                try:
                    without, with_ = timed(path, args.repeat, args.threads)
                finally:
                    stop.set()
                    for p in burners:
                        p.join()
                print(
                    f"invariants: {size} {condition} without={without:.2f}s with={with_:.2f}s "
                    f"ratio={with_ / without:.2f}"
                )
            if given is None:
                for f in path.iterdir():
                    f.unlink()


if __name__ == "__main__":
    main()
